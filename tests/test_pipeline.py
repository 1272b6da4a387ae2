"""Saved artifacts that let each lesson run alone, and the end-to-end job on synthetic faces."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from agecourse import pipeline
from agecourse.config import get_settings


def test_get_split_saves_then_reloads(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path))
    settings = get_settings("ci", synthetic_count=200)
    first = pipeline.get_split(settings)
    assert "Built and saved" in capsys.readouterr().out
    again = pipeline.get_split(settings)
    assert "Loaded the saved split" in capsys.readouterr().out
    pd.testing.assert_frame_equal(first.test, again.test)
    assert sum(first.sizes().values()) == 200


def test_get_split_rebuilds_when_files_vanish(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path / "art"))
    settings = get_settings("ci", synthetic_count=200)
    split = pipeline.get_split(settings)
    broken = split.train.copy()
    broken.loc[0, "path"] = str(tmp_path / "gone.jpg")
    pipeline.Split(broken, split.val, split.test).save(settings.artifacts_dir / "split.csv")
    pipeline.get_split(settings)
    assert "points at missing files" in capsys.readouterr().out


def test_run_main_writes_metrics_plots_and_model(tmp_path, monkeypatch):
    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path / "art"))
    settings = get_settings("ci", synthetic_count=300, epochs=2)
    metrics = pipeline.run_main(settings, out_dir=tmp_path / "out", verbose=0)
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert written["data"]["synthetic"] is True and "synthetic" in written["data"]["source"]
    assert written["count"] == written["data"]["split"]["test"]
    assert np.isfinite(written["age"]["mae"]) and 0 <= written["gender"]["accuracy"] <= 1
    assert metrics["age"]["mae"] == written["age"]["mae"]
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
