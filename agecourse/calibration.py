"""Lesson 09: does the gender probability mean what it says? Reliability, ECE and temperature scaling.

A model is *calibrated* when, of the faces it calls female with 80 % confidence, about 80 % are. The
reliability table bins the faces by the confidence of the predicted gender and sets each bin's
accuracy beside its mean confidence; the expected calibration error (ECE) is the gap averaged over
the bins, weighted by their share of faces (Guo et al., 2017). *Temperature scaling* divides the
gender logit by one number ``T`` fitted on the validation split by maximum likelihood: ``T > 1``
softens an over-confident model, ``T < 1`` sharpens an under-confident one, and no prediction changes
side (accuracy stays the same). Lesson 09 shows this code on the page; the shipped models carry their
temperature (``course_models`` registry), which ``agecourse predict``, lesson 13 and the demo apply.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import expit, logit

# Bins of the predicted gender's confidence (0.5 to 1) for the reliability table and the ECE.
CONFIDENCE_BINS = 10
# Probabilities are clipped this far from 0 and 1 before taking logits: a float32 sigmoid that reads
# exactly 1.0 would otherwise have an infinite logit.
PROBABILITY_EPSILON = 1e-6


def reliability_table(table: pd.DataFrame, n_bins: int = CONFIDENCE_BINS) -> pd.DataFrame:
    """Per bin of confidence (the probability of the predicted gender, 0.5-1): ``count``,
    ``confidence`` (mean) and ``accuracy`` (share right), from ``gender`` and ``gender_prob``
    (the probability of female). Empty bins are left out."""
    p_female = table["gender_prob"].to_numpy(np.float64)
    confidence = np.maximum(p_female, 1 - p_female)
    correct = (p_female >= 0.5).astype(int) == table["gender"].to_numpy().astype(int)
    edges = np.linspace(0.5, 1.0, n_bins + 1)
    labels = [f"{low:.2f}-{high:.2f}" for low, high in zip(edges[:-1], edges[1:])]
    bins = pd.cut(confidence, edges, labels=labels, include_lowest=True)
    rows = pd.DataFrame({"bin": bins, "confidence": confidence, "correct": correct})
    grouped = rows.groupby("bin", observed=True)
    return pd.DataFrame(
        {"count": grouped.size(), "confidence": grouped["confidence"].mean(), "accuracy": grouped["correct"].mean()}
    ).reset_index()


def expected_calibration_error(table: pd.DataFrame, n_bins: int = CONFIDENCE_BINS) -> float:
    """The ECE: ``|accuracy - confidence|`` of each bin of :func:`reliability_table`, weighted by its
    share of faces (0 is perfectly calibrated)."""
    bins = reliability_table(table, n_bins)
    return float((bins["count"] * (bins["accuracy"] - bins["confidence"]).abs()).sum() / bins["count"].sum())


def gender_logits(p_female) -> np.ndarray:
    """The logits of probabilities of female, clipped :data:`PROBABILITY_EPSILON` from 0 and 1."""
    return logit(np.clip(np.asarray(p_female, np.float64), PROBABILITY_EPSILON, 1 - PROBABILITY_EPSILON))


def fit_temperature(table: pd.DataFrame) -> float:
    """The temperature ``T`` (0.05-20) that minimises the cross-entropy of ``gender`` under
    ``sigmoid(logit / T)`` on a calibration table (``gender``, ``gender_prob``): the validation split."""
    logits = gender_logits(table["gender_prob"])
    sign = np.where(table["gender"].to_numpy().astype(int) == 1, 1.0, -1.0)

    def cross_entropy(temperature: float) -> float:
        return float(np.logaddexp(0.0, -sign * logits / temperature).mean())

    return float(minimize_scalar(cross_entropy, bounds=(0.05, 20.0), method="bounded").x)


def apply_temperature(p_female, temperature: float) -> np.ndarray:
    """Probabilities of female after temperature scaling: ``sigmoid(logit(p) / temperature)``."""
    return expit(gender_logits(p_female) / temperature)


def plot_reliability(tables: dict[str, pd.DataFrame], title: str = "Reliability of the gender probability"):
    """Reliability diagram: accuracy against mean confidence per bin, one line per named table
    (``gender``, ``gender_prob``), with the diagonal of a calibrated model. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0.5, 1.0], [0.5, 1.0], "k--", linewidth=1, label="calibrated")
    for name, table in tables.items():
        bins = reliability_table(table)
        ece = expected_calibration_error(table)
        ax.plot(bins["confidence"], bins["accuracy"], "o-", label=f"{name} (ECE {ece:.3f})")
    ax.set(xlabel="confidence of the predicted gender", ylabel="accuracy", xlim=(0.5, 1.0), ylim=(0.0, 1.02))
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig
