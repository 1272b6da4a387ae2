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
