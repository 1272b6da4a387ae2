"""Lesson 09 additions: per-gender and per-band summary tables (hand-made predictions)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agecourse import evaluate as ev
from agecourse.data import age_band


def _table():
    table = pd.DataFrame(
        {
            "age": [10, 12, 20, 30, 40],
            "gender": [0, 0, 0, 1, 1],
            "age_pred": [12.0, 11.0, 18.0, 30.0, 50.0],
            "gender_prob": [0.2, 0.1, 0.7, 0.9, 0.4],
        }
    )
    table["gender_pred"] = (table["gender_prob"] >= 0.5).astype(int)
    table["age_error"] = table["age_pred"] - table["age"]
    table["age_band"] = age_band(table["age"])
    return table


def test_gender_metrics_table_known_values():
    table = ev.gender_metrics_table(_table())
    assert list(table.index) == ["male", "female"]
    # males: 3 true, 2 predicted male (correct) -> recall 2/3; predicted male also includes 1 female.
    assert table.loc["male", "recall"] == pytest.approx(2 / 3)
    assert table.loc["male", "precision"] == pytest.approx(2 / 3)
    assert table.loc["female", "recall"] == pytest.approx(1 / 2)
    assert table.loc["female", "true_negative_rate"] == pytest.approx(table.loc["male", "recall"])
    assert table["support"].tolist() == [3, 2]


def test_age_summary_table_bands_and_overall():
    summary = ev.age_summary_table(_table())
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


def test_comparison_table_labels_the_data():
    table = ev.comparison_table({"Model A": ev.evaluate_table(_table())}, data="5 faces, synthetic")
    ours = table[table["source"] == "this course"]
    assert ours["data"].tolist() == ["5 faces, synthetic"]
    assert (table.loc[table["source"] != "this course", "data"] == "UTKFace, their own split").all()
    published = table[table["source"] != "this course"]
    assert {7.56, 6.88, 7.55, 6.84, 5.4} <= set(published["age_mae"])
