"""agecourse.conformal: split conformal age intervals (lesson 09), on tables made here where the
coverage a correct implementation must reach is known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from agecourse import conformal


def noisy_table(n: int, seed: int) -> pd.DataFrame:
    """Ages 1-89 and predictions whose error grows with age (like a real model's)."""
    rng = np.random.default_rng(seed)
    age = rng.integers(1, 90, n).astype(float)
    return pd.DataFrame({"age": age, "age_pred": age + rng.normal(0, 1 + age / 8)})


def test_the_half_width_is_the_conformal_rank_of_the_absolute_errors():
    table = pd.DataFrame({"age": np.zeros(9), "age_pred": -np.arange(1.0, 10.0)})  # errors 1..9
    assert conformal.conformal_half_width(table, 0.9) == 9.0  # rank ceil(10 * 0.9) = 9
    assert conformal.conformal_half_width(table, 0.5) == 5.0  # rank ceil(10 * 0.5) = 5
    assert conformal.conformal_half_width(table.iloc[:5], 0.9) == math.inf  # rank 6 of 5 errors
    with pytest.raises(ValueError, match="between 0 and 1"):
        conformal.conformal_half_width(table, 1.0)


def test_intervals_hold_their_share_of_new_faces_on_average():
    """Exchangeable calibration and test faces: coverage is at least the level, on average over
    splits, and not much above it (at most 1 / (n + 1) more)."""
    coverages = []
    for seed in range(200):
        calibration, new = noisy_table(99, seed), noisy_table(400, seed + 1000)
        half_width = conformal.conformal_half_width(calibration, 0.9)
        coverages.append(conformal.with_intervals(new, half_width)["covered"].mean())
    assert 0.9 - 0.005 <= np.mean(coverages) <= 0.9 + 1 / 100 + 0.005


def test_band_conditional_widths_fit_each_band():
    calibration, new = noisy_table(6000, 1), noisy_table(6000, 2)
    marginal = conformal.coverage_table(conformal.with_intervals(new, conformal.conformal_half_width(calibration)))
    widths = conformal.band_half_widths(calibration)
    by_band = conformal.coverage_table(conformal.with_intervals(new, widths))
    assert list(widths) == sorted(widths) and widths["70+"] > widths["0-2"]
    bands = marginal["age_band"] != "all"
    # One width for all: 90 % overall, but far above it for babies and below it for the old.
    assert marginal.loc[0, "count"] == len(new) and abs(marginal.loc[0, "coverage"] - 0.9) < 0.02
    assert marginal[bands]["coverage"].max() > 0.99 and marginal[bands]["coverage"].min() < 0.8
    # Per band of the predicted age: each band's faces get (at least) their 90 %, and the true-age
    # bands come closer to it than with one width for all.
    tested = conformal.with_intervals(new, widths)
    per_predicted_band = tested.groupby(conformal.predicted_band(new["age_pred"]).to_numpy())["covered"].mean()
    assert per_predicted_band.min() > 0.87
    assert (by_band[bands]["coverage"] - 0.9).abs().mean() < (marginal[bands]["coverage"] - 0.9).abs().mean()


def test_intervals_stay_above_zero_and_a_band_without_calibration_gets_no_finite_interval():
    table = pd.DataFrame({"age": [1.0, 40.0, 2.0, 80.0], "age_pred": [2.0, 30.0, -5.0, 120.0]})
    out = conformal.with_intervals(table, {"0-2": 3.0, "30-39": 5.0})
    assert out["age_low"].tolist()[:3] == [0.0, 25.0, 0.0]  # a prediction below 0 is centred on 0
    assert out["age_high"].tolist()[:3] == [5.0, 35.0, 3.0] and math.isinf(out["age_high"].iloc[3])
    assert out["covered"].tolist() == [True, False, True, True]
    assert conformal.predicted_band(pd.Series([-5.0, 200.0, 34.5])).tolist() == ["0-2", "70+", "30-39"]
    low, high = conformal.interval_bounds([-5.0, 30.0], 3.0)  # what agecourse predict prints
    assert low.tolist() == [0.0, 27.0] and high.tolist() == [3.0, 33.0]
    assert conformal.band_half_widths(table.iloc[:1], 0.9) == {"0-2": math.inf}  # rank 2 of 1 error


def test_half_widths_for_uses_the_band_of_each_predicted_age_and_falls_back_where_infinite():
    calibration = {"half_width": 10.0, "band_half_widths": {"0-2": 2.0, "20-29": 8.0, "70+": math.inf}}
    widths = conformal.half_widths_for([1.0, -3.0, 25.0, 80.0, 45.0], calibration)
    # 0-2 (and below 0, clipped into 0-2), 20-29, 70+ has no finite width, 40-49 has none at all.
    assert widths.tolist() == [2.0, 2.0, 8.0, 10.0, 10.0]
    assert conformal.half_widths_for([5.0, 50.0], {"half_width": 7.0}).tolist() == [7.0, 7.0]


def test_predicted_band_takes_a_list_an_array_or_a_series():
    assert conformal.predicted_band([1.0, 150.0]).tolist() == ["0-2", "70+"]
    assert conformal.predicted_band(np.array([25.0])).tolist() == ["20-29"]
    assert conformal.predicted_band(pd.Series([5.0], index=[7])).index.tolist() == [7]
