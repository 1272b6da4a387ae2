"""Lesson 09 additions: per-gender and per-band summary tables (hand-made predictions)."""

from __future__ import annotations

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
