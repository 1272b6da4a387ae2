"""The command line's end-to-end job (``agecourse run``) on synthetic faces."""

from __future__ import annotations

import json

import numpy as np

from agecourse.config import get_settings
from agecourse.job import run_main


def test_run_main_writes_metrics_plots_and_model(tmp_path, monkeypatch):
    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path / "art"))
    settings = get_settings("ci", synthetic_count=300, epochs=2)
    metrics = run_main(settings, out_dir=tmp_path / "out", verbose=0)
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert written["data"]["synthetic"] is True and "synthetic" in written["data"]["source"]
    assert written["count"] == written["data"]["split"]["test"]
    assert np.isfinite(written["age"]["mae"]) and 0 <= written["gender"]["accuracy"] <= 1
    assert metrics["age"]["mae"] == written["age"]["mae"] and written["settings"]["epochs_run"] == 2
    # Scored with the profile's recipe, as the benchmarks score it, and the file says how.
    assert written["predictions"] == ("flip-averaged" if settings.flip_tta else "plain")
    assert written["settings"]["flip_tta"] is settings.flip_tta
    for name in (
        "model_a.keras",
        "history.json",
        "split.csv",
        "learning_curves.png",
        "predicted_vs_actual.png",
        "age_error_histogram.png",
        "age_mae_per_band.png",
        "gender_confusion_matrix.png",
    ):
        assert (tmp_path / "out" / name).stat().st_size > 0, name
