"""Metrics and plots of lesson 09 on hand-made prediction tables (known answers)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agecourse import evaluate as ev
from agecourse.data import age_band


def _table():
    table = pd.DataFrame(
        {
            "age": [10, 20, 30, 40],
            "gender": [0, 0, 1, 1],
            "age_pred": [12.0, 18.0, 30.0, 50.0],
            "gender_prob": [0.2, 0.7, 0.9, 0.4],
        }
    )
    table["gender_pred"] = (table["gender_prob"] >= 0.5).astype(int)
    table["age_error"] = table["age_pred"] - table["age"]
    table["age_band"] = age_band(table["age"])
    return table


def test_age_metrics_known_values():
    m = ev.age_metrics(_table())
    assert m["mae"] == pytest.approx((2 + 2 + 0 + 10) / 4)
    assert m["rmse"] == pytest.approx(np.sqrt((4 + 4 + 0 + 100) / 4))
    assert m["mean_signed_error"] == pytest.approx((2 - 2 + 0 + 10) / 4)


def test_gender_metrics_known_values():
    m = ev.gender_metrics(_table())
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["confusion_matrix"] == [[1, 1], [1, 1]]
    assert m["female"]["recall"] == pytest.approx(0.5)
    assert m["male"]["true_negative_rate"] == pytest.approx(0.5)
    assert m["auc"] == pytest.approx(0.75)


def test_per_band_and_json_ready():
    result = ev.evaluate_table(_table())
    assert result["count"] == 4
    assert result["per_age_band"]["40-49"]["age_mae"] == pytest.approx(10.0)
    assert sum(row["count"] for row in result["per_age_band"].values()) == 4
    assert "female" in ev.classification_report(_table())


def test_predict_table_checks_length():
    class Fake:
        def predict(self, dataset, verbose=0):
            return [np.array([[30.0], [40.0]]), np.array([[0.1], [0.8]])]

    images = pd.DataFrame({"path": ["a", "b"], "age": [31, 45], "gender": [0, 1]})
    table = ev.predict_table(Fake(), None, images)
    assert table["age_error"].tolist() == [-1.0, -5.0] and table["gender_pred"].tolist() == [0, 1]
    with pytest.raises(ValueError, match="2 predictions for 3 images"):
        ev.predict_table(Fake(), None, pd.concat([images, images.head(1)]))


def test_comparison_and_plots(tmp_path):
    table = _table()
    comparison = ev.comparison_table({"Model A": ev.evaluate_table(table)})
    assert comparison.iloc[0]["model"] == "Model A" and len(comparison) == 1 + len(ev.PUBLISHED_RESULTS)
    for fig in (
        ev.plot_predicted_vs_actual(table),
        ev.plot_error_histogram(table),
        ev.plot_band_mae({"A": table, "B": table}),
        ev.plot_confusion_matrix(table),
    ):
        fig.savefig(tmp_path / "plot.png")
        assert (tmp_path / "plot.png").stat().st_size > 1000
    assert ev.save_metrics({"x": np.float32(1.5)}, tmp_path / "m.json").read_text().strip().endswith("}")


def test_bootstrap_intervals_bracket_the_metric_and_shrink_with_more_faces():
    rng = np.random.default_rng(1)
    ages = rng.integers(1, 90, 4000)
    big = pd.DataFrame(
        {"age": ages, "age_pred": ages + rng.normal(0, 7, len(ages)), "gender": rng.integers(0, 2, 4000)}
    )
    big["gender_pred"] = np.where(rng.random(len(big)) < 0.85, big["gender"], 1 - big["gender"])
    small = big.head(400)
    wide, narrow = ev.bootstrap_intervals(small), ev.bootstrap_intervals(big)
    for table, intervals in ((small, wide), (big, narrow)):
        mae = (table["age_pred"] - table["age"]).abs().mean()
        accuracy = (table["gender_pred"] == table["gender"]).mean()
        assert intervals["age_mae"][0] < mae < intervals["age_mae"][1]
        assert intervals["gender_accuracy"][0] < accuracy < intervals["gender_accuracy"][1]
    width = {name: (hi - lo) for name, (lo, hi) in narrow.items()}
    assert all(width[name] < (wide[name][1] - wide[name][0]) / 2 for name in width)  # ~1/sqrt(10) as wide
    assert ev.bootstrap_intervals(small, seed=3) == ev.bootstrap_intervals(small, seed=3)


def test_bootstrap_intervals_reject_an_empty_table():
    with pytest.raises(ValueError, match="non-empty"):
        ev.bootstrap_intervals(_table().head(0))


def test_paired_mae_difference_pairs_faces_by_path():
    a = _table().assign(path=["w", "x", "y", "z"])
    b = a.assign(age_pred=a["age"] + 1.0).iloc[::-1]  # same faces, other order, error 1 year each
    result = ev.paired_mae_difference(a, b)
    assert result["difference"] == pytest.approx((2 + 2 + 0 + 10) / 4 - 1)
    assert result["low"] <= result["difference"] <= result["high"]
    with pytest.raises(ValueError, match="same faces"):
        ev.paired_mae_difference(a, b.head(3))
    with pytest.raises(ValueError, match="path"):
        ev.paired_mae_difference(_table(), b)
