"""Saved artifacts: the split and both models, saved and reloaded with a compatibility check.

Model trainings here are real and tiny (see the ``tiny_settings`` and ``tiny_split`` fixtures).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agecourse import artifacts
from agecourse.config import get_settings
from agecourse.data import Split
from agecourse.models import build_model_a
from agecourse.transfer import build_model_b


def test_get_split_saves_then_reloads(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path))
    settings = get_settings("ci", synthetic_count=200)
    first = artifacts.get_split(settings)
    assert "Built and saved" in capsys.readouterr().out
    again = artifacts.get_split(settings)
    assert "Loaded the saved split" in capsys.readouterr().out
    pd.testing.assert_frame_equal(first.test, again.test)
    assert sum(first.sizes().values()) == 200


def test_get_split_rebuilds_when_files_vanish(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path / "art"))
    settings = get_settings("ci", synthetic_count=200)
    split = artifacts.get_split(settings)
    broken = split.train.copy()
    broken.loc[0, "path"] = str(tmp_path / "gone.jpg")
    Split(broken, split.val, split.test).save(settings.artifacts_dir / "split.csv")
    artifacts.get_split(settings)
    assert "points at missing files" in capsys.readouterr().out


def test_model_paths_are_one_per_model_and_profile(tiny_settings):
    a, b = artifacts.model_path(tiny_settings, "model-a"), artifacts.model_path(tiny_settings, "model-b")
    assert a != b and a.parent == b.parent == tiny_settings.artifacts_dir
    assert artifacts.history_path(tiny_settings, "model-b").parent == b.parent
    assert artifacts.model_path(tiny_settings.replace(profile="cpu"), "model-a").parent != a.parent
    with pytest.raises(ValueError, match="use 'model-a'"):
        artifacts.model_path(tiny_settings, "a")


@pytest.mark.parametrize("which", ["model-a", "model-b"])
def test_get_model_trains_saves_and_reloads(which, tiny_settings, tiny_split, capsys):
    """A real tiny training the first time, the saved file the second; same predictions."""
    model = artifacts.get_model(tiny_settings, which, split=tiny_split)
    assert "training Model" in capsys.readouterr().out
    loaded = artifacts.get_model(tiny_settings, which, split=tiny_split)
    assert "Loaded the saved Model" in capsys.readouterr().out
    size = artifacts.input_size(tiny_settings, which)
    x = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype("float32")
    for before, after in zip(model.predict(x, verbose=0), loaded.predict(x, verbose=0)):
        np.testing.assert_allclose(before, after, rtol=1e-5, atol=1e-5)
    _, history = artifacts.load_model(tiny_settings, which)
    assert history is not None and len(history["loss"]) >= 1


def test_a_model_saved_for_other_settings_is_not_reused(tiny_settings, tiny_split, capsys):
    """A stale file (a model built for another input size) must be retrained, not reused."""
    old_b = build_model_b(image_size=48, alpha=0.35, weights=None, verbose=False)
    artifacts.save_model(tiny_settings.replace(transfer_image_size=48), "model-b", old_b)
    model, problem = artifacts.load_saved(tiny_settings, "model-b")
    assert model is None and "takes 48 px images" in problem and "uses 32 px" in problem
    with pytest.raises(ValueError, match="takes 48 px images"):
        artifacts.load_model(tiny_settings, "model-b")
    with pytest.raises(ValueError, match="not saving"):
        artifacts.save_model(tiny_settings, "model-b", old_b)
    other = tiny_settings.replace(transfer_image_size=48, transfer_backbone="EfficientNetB0")
    assert "uses EfficientNetB0" in artifacts.compatibility_problem(other, "model-b", old_b)
    # The same check sends get_model to a real (tiny) training; Model A here, as it trains fastest.
    small_a = build_model_a(16, filters=(4,), dense_units=4)
    artifacts.save_model(tiny_settings.replace(image_size=16), "model-a", small_a)
    model = artifacts.get_model(tiny_settings, "model-a", split=tiny_split)
    assert model.input_shape[1] == 24 and "takes 16 px images" in capsys.readouterr().out
    reloaded, reason = artifacts.load_saved(tiny_settings, "model-a")
    assert reloaded is not None and reason.startswith("saved in ")


def test_a_saved_model_and_its_history_are_read_back(tmp_path, monkeypatch):
    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path))
    cpu = get_settings("cpu", data_dir=tmp_path, image_size=24)
    model, reason = artifacts.load_saved(cpu, "model-a")
    assert model is None and "no saved Model A" in reason
    history = {"loss": [2.0, 1.0], "val_loss": [2.5, 1.5]}
    artifacts.save_model(cpu, "model-a", build_model_a(24, filters=(4,), dense_units=4), history)
    model, loaded_history = artifacts.load_model(cpu, "model-a")
    assert loaded_history == history and model.input_shape[1] == 24
    model, reason = artifacts.load_saved(cpu.replace(image_size=32), "model-a")
    assert model is None and "takes 24 px images" in reason
    artifacts.model_path(cpu, "model-a").write_bytes(b"not a keras file")
    model, reason = artifacts.load_saved(cpu, "model-a")
    assert model is None and "could not be loaded" in reason and "model_a.keras" in reason


def test_load_model_names_the_missing_file(tmp_path, monkeypatch):
    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="model_a.keras: no saved Model A"):
        artifacts.load_model(get_settings("ci"), "model-a")
    with pytest.raises(FileNotFoundError, match="model_b.keras: no saved Model B .*lesson 10"):
        artifacts.load_model(get_settings("ci"), "model-b")
