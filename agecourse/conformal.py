"""Lesson 09: an age that comes with an interval, by split conformal prediction.

Calibrate on faces the model was not trained on (the validation split): the absolute errors
``|predicted - true|`` there give a half-width ``q`` such that ``predicted ± q`` holds the true age
for at least ``level`` of new faces drawn like them (Vovk et al., 2005; Angelopoulos and Bates,
2021). The guarantee is *marginal*: over all faces together, not per age band. Calibrating one ``q``
per band of the *predicted* age (known at prediction time) gives the band-conditional version.
Lesson 09 shows this code on the page; the shipped models carry their calibration
(``course_models`` registry) for ``agecourse predict``, lesson 13 and the demo.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from agecourse.data import AGE_BANDS, age_band

# The share of faces the course's age intervals are calibrated to hold (lesson 09, the shipped models).
INTERVAL_LEVEL = 0.9


def conformal_half_width(table: pd.DataFrame, level: float = INTERVAL_LEVEL) -> float:
    """The split-conformal half-width from a calibration table (``age``, ``age_pred``): the
    ``ceil((n + 1) * level)``-th smallest absolute error. ``inf`` when the table has too few faces
    for ``level`` (no finite interval is then guaranteed)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    errors = np.sort((table["age_pred"] - table["age"]).abs().to_numpy(np.float64))
    rank = math.ceil((len(errors) + 1) * level)
    return float(errors[rank - 1]) if rank <= len(errors) else math.inf


def predicted_band(ages) -> pd.Series:
    """The age band of each *predicted* age (clipped to the bands' range), as strings."""
    clipped = np.clip(np.asarray(ages, np.float64), AGE_BANDS[0], AGE_BANDS[-1] - 1)
    return pd.Series(age_band(clipped).astype(str), index=ages.index if isinstance(ages, pd.Series) else None)


def band_half_widths(table: pd.DataFrame, level: float = INTERVAL_LEVEL) -> dict[str, float]:
    """One half-width per band of the predicted age (band-conditional conformal prediction); a band
    with too few calibration faces gets ``inf``."""
    bands = predicted_band(table["age_pred"])
    return {band: conformal_half_width(group, level) for band, group in table.groupby(bands.to_numpy())}


def interval_bounds(predicted, half_width) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)``: each predicted age (taken as 0 when below 0) ± ``half_width`` (one number or one
    per face), the low end never below 0; what :func:`with_intervals` and ``agecourse predict`` print."""
    centre = np.clip(np.asarray(predicted, np.float64), 0, None)  # no age is below 0: never a worse centre
    return np.clip(centre - half_width, 0, None), centre + half_width


def half_widths_for(predicted, calibration: dict) -> np.ndarray:
    """The half-width of each predicted age under a calibration (``half_width``, and optionally
    ``band_half_widths`` per band of the predicted age, as the shipped models carry it): the band's
    width where it is finite, else the single ``half_width``. What ``predict_faces`` uses."""
    ages = np.asarray(predicted, np.float64).reshape(-1)
    widths = np.full(len(ages), float(calibration["half_width"]))
    by_band = calibration.get("band_half_widths") or {}
    if by_band:
        band_width = predicted_band(ages).map(by_band).to_numpy(np.float64)
        finite = np.isfinite(band_width)
        widths[finite] = band_width[finite]
    return widths


def with_intervals(table: pd.DataFrame, half_width: float | dict[str, float]) -> pd.DataFrame:
    """``table`` with ``age_low``, ``age_high`` (never below 0) and ``covered`` (the true age is inside):
    one half-width for every face, or a dict of them per predicted-age band (missing band: ``inf``)."""
    if isinstance(half_width, dict):
        width = predicted_band(table["age_pred"]).map(half_width).fillna(math.inf).to_numpy(np.float64)
    else:
        width = np.full(len(table), float(half_width))
    low, high = interval_bounds(table["age_pred"], width)
    out = table.assign(age_low=low, age_high=high)
    out["covered"] = (out["age"] >= out["age_low"]) & (out["age"] <= out["age_high"])
    return out


def coverage_table(table: pd.DataFrame) -> pd.DataFrame:
    """Coverage (share of true ages inside their interval) and mean interval width, overall and per
    band of the *true* age, from a table made by :func:`with_intervals`."""
    width = table["age_high"] - table["age_low"]
    rows = [{"age_band": "all", "count": len(table), "coverage": table["covered"].mean(), "width": width.mean()}]
    for band, group in table.groupby(age_band(table["age"]), observed=True):
        widths = group["age_high"] - group["age_low"]
        rows.append(
            {"age_band": str(band), "count": len(group), "coverage": group["covered"].mean(), "width": widths.mean()}
        )
    return pd.DataFrame(rows)
