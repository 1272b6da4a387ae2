"""Metrics and plots of lesson 09 on hand-made prediction tables (known answers)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agecourse import evaluate as ev


@pytest.fixture
def four_faces(table_maker):
    return table_maker([10, 20, 30, 40], [0, 0, 1, 1], [12.0, 18.0, 30.0, 50.0], [0.2, 0.7, 0.9, 0.4])


def test_age_metrics_known_values(four_faces):
    m = ev.age_metrics(four_faces)
    assert m["mae"] == pytest.approx((2 + 2 + 0 + 10) / 4)
    assert m["rmse"] == pytest.approx(np.sqrt((4 + 4 + 0 + 100) / 4))
    assert m["mean_signed_error"] == pytest.approx((2 - 2 + 0 + 10) / 4)


def test_gender_metrics_known_values(four_faces):
    m = ev.gender_metrics(four_faces)
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["confusion_matrix"] == [[1, 1], [1, 1]]
    assert m["female"]["recall"] == pytest.approx(0.5)
    assert m["male"]["true_negative_rate"] == pytest.approx(0.5)
    assert m["auc"] == pytest.approx(0.75)


def test_per_band_and_json_ready(four_faces):
    result = ev.evaluate_table(four_faces)
    assert result["count"] == 4
    assert result["per_age_band"]["40-49"]["age_mae"] == pytest.approx(10.0)
    assert sum(row["count"] for row in result["per_age_band"].values()) == 4
    assert "female" in ev.classification_report(four_faces)


def test_predict_table_checks_length():
    class Fake:
        def predict(self, dataset, verbose=0):
            return [np.array([[30.0], [40.0]]), np.array([[0.1], [0.8]])]

    images = pd.DataFrame({"path": ["a", "b"], "age": [31, 45], "gender": [0, 1]})
    table = ev.predict_table(Fake(), None, images)
    assert table["age_error"].tolist() == [-1.0, -5.0] and table["gender_pred"].tolist() == [0, 1]
    with pytest.raises(ValueError, match="2 predictions for 3 images"):
        ev.predict_table(Fake(), None, pd.concat([images, images.head(1)]))


def test_comparison_and_plots(four_faces, tmp_path):
    table = four_faces
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


def test_bootstrap_intervals_reject_an_empty_table(four_faces):
    with pytest.raises(ValueError, match="non-empty"):
        ev.bootstrap_intervals(four_faces.head(0))


def test_paired_mae_difference_pairs_faces_by_path(four_faces):
    a = four_faces.assign(path=["w", "x", "y", "z"])
    b = a.assign(age_pred=a["age"] + 1.0).iloc[::-1]  # same faces, other order, error 1 year each
    result = ev.paired_mae_difference(a, b)
    assert result["difference"] == pytest.approx((2 + 2 + 0 + 10) / 4 - 1)
    assert result["low"] <= result["difference"] <= result["high"]
    with pytest.raises(ValueError, match="same faces"):
        ev.paired_mae_difference(a, b.head(3))
    with pytest.raises(ValueError, match="path"):
        ev.paired_mae_difference(four_faces, b)


# --- lesson 09's summary tables ------------------------------------------------------------------


@pytest.fixture
def five_faces(table_maker):
    return table_maker([10, 12, 20, 30, 40], [0, 0, 0, 1, 1], [12.0, 11.0, 18.0, 30.0, 50.0], [0.2, 0.1, 0.7, 0.9, 0.4])


def test_gender_metrics_table_known_values(five_faces):
    table = ev.gender_metrics_table(five_faces)
    assert list(table.index) == ["male", "female"]
    # males: 3 true, 2 predicted male (correct) -> recall 2/3; predicted male also includes 1 female.
    assert table.loc["male", "recall"] == pytest.approx(2 / 3)
    assert table.loc["male", "precision"] == pytest.approx(2 / 3)
    assert table.loc["female", "recall"] == pytest.approx(1 / 2)
    assert table.loc["female", "true_negative_rate"] == pytest.approx(table.loc["male", "recall"])
    assert table["support"].tolist() == [3, 2]


def test_age_summary_table_bands_and_overall(five_faces):
    summary = ev.age_summary_table(five_faces)
    assert summary.index[-1] == "all ages"
    assert summary.loc["10-19", "count"] == 2
    assert summary.loc["10-19", "MAE"] == pytest.approx(1.5)
    assert summary.loc["10-19", "mean signed error"] == pytest.approx(0.5)
    assert summary.loc["all ages", "MAE"] == pytest.approx((2 + 1 + 2 + 0 + 10) / 5)
    assert summary.loc["all ages", "RMSE"] == pytest.approx(((4 + 1 + 4 + 0 + 100) / 5) ** 0.5)
    assert summary["count"].iloc[:-1].sum() == 5


class _LeftHalfModel:
    """Predicts from the mean of the left half of each image, so mirroring changes its answer."""

    def predict(self, dataset, verbose=0):
        left = np.concatenate([x.numpy()[:, :, :2].mean(axis=(1, 2, 3)) for x, _ in dataset])
        return [left.reshape(-1, 1), (left / 255).reshape(-1, 1)]


def test_flip_average_mirrors_and_averages():
    import tensorflow as tf

    images = np.zeros((2, 4, 4, 3), dtype="float32")
    images[:, :, :2] = [[[[10.0]]], [[[40.0]]]]  # left half bright, right half 0
    labels = {"age": np.array([5.0, 20.0], dtype="float32"), "gender": np.array([0.0, 1.0], dtype="float32")}
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(2)
    rows = pd.DataFrame({"path": ["a", "b"], "age": [5, 20], "gender": [0, 1]})
    plain = ev.predict_table(_LeftHalfModel(), dataset, rows)
    averaged = ev.predict_table(_LeftHalfModel(), dataset, rows, flip_average=True)
    assert plain["age_pred"].tolist() == pytest.approx([10.0, 40.0])
    assert averaged["age_pred"].tolist() == pytest.approx([5.0, 20.0]), "mean of left half and (mirrored) right half"
    assert averaged["age_error"].tolist() == pytest.approx([0.0, 0.0])


def test_comparison_table_labels_the_data(five_faces):
    table = ev.comparison_table({"Model A": ev.evaluate_table(five_faces)}, data="5 faces, synthetic")
    ours = table[table["source"] == "this course"]
    assert ours["data"].tolist() == ["5 faces, synthetic"]
    assert (table.loc[table["source"] != "this course", "data"] == "UTKFace, their own split").all()
    published = table[table["source"] != "this course"]
    assert {7.56, 6.88, 7.55, 6.84, 5.4} <= set(published["age_mae"])


class _CountingModel(_LeftHalfModel):
    """:class:`_LeftHalfModel` that counts its forward passes over a dataset."""

    def __init__(self):
        self.passes = 0

    def predict(self, dataset, verbose=0):
        self.passes += 1
        return super().predict(dataset, verbose)


def _mirror_case():
    import tensorflow as tf

    images = np.zeros((2, 4, 4, 3), dtype="float32")
    images[:, :, :2] = [[[[10.0]]], [[[40.0]]]]
    labels = {"age": np.array([5.0, 20.0], dtype="float32"), "gender": np.array([0.0, 1.0], dtype="float32")}
    rows = pd.DataFrame({"path": ["a", "b"], "age": [5, 20], "gender": [0, 1]})
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(2), rows


def test_predict_both_runs_each_forward_pass_once_and_matches_predict_table():
    dataset, rows = _mirror_case()
    model = _CountingModel()
    plain, flipped = ev.predict_both(model, dataset, rows)
    assert model.passes == 2, "the images once, their mirror images once"
    pd.testing.assert_frame_equal(plain, ev.predict_table(_LeftHalfModel(), dataset, rows))
    pd.testing.assert_frame_equal(flipped, ev.predict_table(_LeftHalfModel(), dataset, rows, flip_average=True))


def test_the_scoring_recipe_follows_flip_tta_and_says_so():
    from agecourse.config import get_settings

    dataset, rows = _mirror_case()
    for flip_tta, ages in ((False, [10.0, 40.0]), (True, [5.0, 20.0])):
        settings = get_settings("ci", flip_tta=flip_tta)
        table, metrics = ev.score(_LeftHalfModel(), dataset, rows, settings)
        assert table["age_pred"].tolist() == pytest.approx(ages)
        assert metrics["predictions"] == ev.predictions_name(flip_tta) == ("flip-averaged" if flip_tta else "plain")
        assert metrics["age"]["mae"] == pytest.approx(np.mean(np.abs(np.array(ages) - [5, 20])))
        assert ev.score_line(metrics).endswith(f"on 2 images ({metrics['predictions']} predictions)")
        pd.testing.assert_frame_equal(table, ev.recipe_table(_LeftHalfModel(), dataset, rows, settings))


def test_evaluate_folder_scores_a_split_part_and_names_what_is_missing(tmp_path):
    from agecourse.config import get_settings
    from agecourse.models import build_model_a
    from agecourse.synthetic import make_synthetic_faces

    folder = make_synthetic_faces(tmp_path / "faces", n=12, size=32, seed=2)
    names = sorted(p.name for p in folder.glob("*.jpg"))
    split_csv = tmp_path / "split.csv"
    parts = ["test"] * 4 + ["train"] * (len(names) - 4)
    pd.DataFrame({"path": names, "part": parts}).to_csv(split_csv, index=False)
    model = build_model_a(32, filters=(4,), dense_units=4)
    settings = get_settings("ci", flip_tta=True)
    metrics = ev.evaluate_folder(model, settings, folder, split=split_csv, rows="test")
    assert metrics["count"] == 4 and metrics["predictions"] == "flip-averaged"
    assert "the 4 'test' rows" in metrics["data"]["source"] and metrics["recipe"] == "the 'ci' profile's scoring recipe"
    assert ev.split_rows(split_csv, "all") == set(names)
    pd.DataFrame({"path": ["nowhere.jpg"], "part": ["test"]}).to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(ValueError, match="1 of the 1 'test' files of .*other.csv are not there"):
        ev.evaluate_folder(model, settings, folder, split=tmp_path / "other.csv")
    with pytest.raises(ValueError, match="has no 'val' rows"):
        ev.split_rows(split_csv, "val")
    with pytest.raises(FileNotFoundError, match="no such split file"):
        ev.split_rows(tmp_path / "none.csv", "test")
