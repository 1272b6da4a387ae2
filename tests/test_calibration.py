"""Lesson 09's calibration of the gender probability: reliability table, ECE, temperature scaling."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from agecourse import calibration


def faces(p_female, gender) -> pd.DataFrame:
    return pd.DataFrame({"gender_prob": np.asarray(p_female, float), "gender": np.asarray(gender, int)})


def honest_and_overconfident(n: int = 20_000, temperature: float = 2.0, seed: int = 0):
    """Labels drawn from sigmoid(z / temperature); a calibrated model reports exactly that, an
    over-confident one reports sigmoid(z)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, n)
    truth = expit(z / temperature)
    gender = (rng.random(n) < truth).astype(int)
    return faces(truth, gender), faces(expit(z), gender)


def test_reliability_table_bins_faces_by_the_confidence_of_the_predicted_gender():
    # Confidence 0.9 right (female), 0.9 wrong (said male, is female), 0.65 right, 0.52 wrong;
    # bins are closed on the right (0.9 is in 0.80-0.90).
    table = faces([0.9, 0.1, 0.35, 0.52], [1, 1, 0, 0])
    bins = calibration.reliability_table(table, n_bins=5).set_index("bin")
    assert list(bins.index) == ["0.50-0.60", "0.60-0.70", "0.80-0.90"]
    assert bins.loc["0.80-0.90", "count"] == 2 and bins.loc["0.80-0.90", "accuracy"] == 0.5
    assert bins.loc["0.80-0.90", "confidence"] == pytest.approx(0.9)
    assert bins.loc["0.50-0.60", "accuracy"] == 0.0 and bins.loc["0.60-0.70", "accuracy"] == 1.0
    # ECE by hand: (2 * |0.5 - 0.9| + 1 * |1 - 0.65| + 1 * |0 - 0.52|) / 4
    expected = (2 * 0.4 + 0.35 + 0.52) / 4
    assert calibration.expected_calibration_error(table, n_bins=5) == pytest.approx(expected)


def test_a_calibrated_model_has_a_small_ece_and_an_overconfident_one_a_large_one():
    honest, overconfident = honest_and_overconfident()
    assert calibration.expected_calibration_error(honest) < 0.015
    assert calibration.expected_calibration_error(overconfident) > 0.05


def test_fit_temperature_recovers_the_temperature_that_made_the_labels():
    honest, overconfident = honest_and_overconfident(temperature=2.0)
    assert calibration.fit_temperature(overconfident) == pytest.approx(2.0, abs=0.15)
    assert calibration.fit_temperature(honest) == pytest.approx(1.0, abs=0.1)
    scaled = overconfident.assign(gender_prob=calibration.apply_temperature(overconfident["gender_prob"], 2.0))
    assert calibration.expected_calibration_error(scaled) < 0.015


def test_temperature_scaling_never_changes_the_predicted_gender_and_softens_above_one():
    p = np.array([0.0, 0.01, 0.3, 0.5, 0.7, 0.99, 1.0])
    softened = calibration.apply_temperature(p, 3.0)
    assert np.all(np.isfinite(softened))  # 0 and 1 are clipped before the logit
    assert np.array_equal(softened >= 0.5, p >= 0.5)
    assert np.all(np.abs(softened - 0.5) <= np.abs(p - 0.5) + 1e-12)
    sharpened = calibration.apply_temperature(p, 0.5)
    assert np.all(np.abs(sharpened - 0.5) >= np.abs(np.clip(p, 1e-6, 1 - 1e-6) - 0.5) - 1e-12)
    assert calibration.apply_temperature(p, 1.0) == pytest.approx(p, abs=2e-6)  # only the clipping


def test_gender_logits_are_finite_at_zero_and_one():
    logits = calibration.gender_logits([0.0, 0.5, 1.0])
    assert np.all(np.isfinite(logits)) and logits[1] == 0 and logits[0] == pytest.approx(-logits[2])


def test_plot_reliability_draws_one_line_per_table_and_the_diagonal():
    honest, overconfident = honest_and_overconfident(n=2000)
    fig = calibration.plot_reliability({"honest": honest, "over-confident": overconfident})
    lines = fig.axes[0].get_lines()
    assert len(lines) == 3
    labels = [line.get_label() for line in lines]
    assert labels[0] == "calibrated" and labels[1].startswith("honest (ECE ")
