"""Saved artifacts that let each lesson run alone, and the end-to-end job on synthetic faces."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

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


def _tiny_split(tmp_path, image_writer, n=24):
    rows = []
    for i in range(n):
        age, gender = 5 + 3 * i, i % 2
        path = image_writer(tmp_path / f"{age}_{gender}_0_2017010100000{i:04d}.jpg", size=(24, 24), seed=i)
        rows.append({"path": str(path), "age": age, "gender": gender, "race": 0})
    images = pd.DataFrame(rows)
    return pipeline.Split(
        images.iloc[:16].reset_index(drop=True),
        images.iloc[16:20].reset_index(drop=True),
        images.iloc[20:].reset_index(drop=True),
    )


def test_cached_training_set_is_reshuffled_every_epoch(tmp_path, image_writer):
    split = _tiny_split(tmp_path, image_writer)
    settings = get_settings("ci", image_size=16, batch_size=4, cache="memory")
    train, val, test = pipeline.datasets(settings, split)
    epochs = [np.concatenate([labels["age"].numpy() for _, labels in train]) for _ in range(3)]
    assert all(sorted(e) == sorted(split.train["age"]) for e in epochs), "every image once per epoch"
    assert len({tuple(e) for e in epochs}) > 1, "caching must not freeze the first epoch's order"
    assert np.concatenate([lab["age"].numpy() for _, lab in test]).tolist() == split.test["age"].tolist()


def test_build_model_a_for_follows_the_settings():
    settings = get_settings(
        "ci", image_size=24, model_filters=(4, 8), augment=False, age_loss="mae", gender_loss_weight=7.0, dense_units=8
    )
    model = pipeline.build_model_a_for(settings, age_init=40.0)
    assert model.input_shape == (None, 24, 24, 3)
    assert "augment" not in [layer.name for layer in model.layers]
    assert model.get_compile_config()["loss_weights"] == {"age": 1.0, "gender": 7.0}
    assert model.get_layer("age_dense").units == 8
    assert pipeline.build_model_a_for(settings.replace(augment=True)).get_layer("augment") is not None


def test_augmentation_for_reads_the_settings():
    settings = get_settings("ci")
    full = pipeline.augmentation_for(settings.replace(augment=True))
    flips = pipeline.augmentation_for(settings.replace(augment="flip"))
    assert [type(layer).__name__ for layer in flips.layers] == ["RandomFlip"]
    assert len(full.layers) > 1 and type(full.layers[0]).__name__ == "RandomFlip"
    assert pipeline.augmentation_for(settings.replace(augment=False)) is None
    with pytest.raises(ValueError, match="'flip' or False"):
        pipeline.augmentation_for(settings.replace(augment="heavy"))


def test_should_train_reuses_only_a_compatible_saved_model(tmp_path, monkeypatch):
    from agecourse.models import build_model_a

    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path))
    monkeypatch.delenv("AGECOURSE_RETRAIN", raising=False)
    assert pipeline.should_train_model_a(get_settings("ci"))[0], "ci always trains"
    cpu = get_settings("cpu", data_dir=tmp_path, image_size=24)
    train, reason = pipeline.should_train_model_a(cpu)
    assert train and "no saved Model A" in reason
    history = {"loss": [2.0, 1.0], "val_loss": [2.5, 1.5]}
    pipeline.save_model_a(cpu, build_model_a(24, filters=(4,), dense_units=4), history)
    assert pipeline.should_train_model_a(cpu) == (
        False,
        f"reusing the saved {pipeline.model_a_path(cpu)} (set AGECOURSE_RETRAIN=1 to train again)",
    )
    model, loaded_history = pipeline.load_model_a(cpu)
    assert loaded_history == history and model.input_shape[1] == 24
    train, reason = pipeline.should_train_model_a(cpu.replace(image_size=32))
    assert train and "takes 24 px images" in reason
    monkeypatch.setenv("AGECOURSE_RETRAIN", "1")
    assert pipeline.should_train_model_a(cpu) == (True, "retraining was requested (AGECOURSE_RETRAIN=1)")
    monkeypatch.setenv("AGECOURSE_RETRAIN", "please")
    with pytest.raises(ValueError, match="AGECOURSE_RETRAIN='please'"):
        pipeline.retrain_requested()


def test_load_model_a_names_the_missing_file(tmp_path, monkeypatch):
    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="model_a.keras: no saved Model A"):
        pipeline.load_model_a(get_settings("ci"))


def test_get_model_a_retrains_when_the_saved_model_has_another_size(tmp_path, monkeypatch, capsys):
    from agecourse.models import build_model_a

    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path))
    settings = get_settings("ci", image_size=24)
    pipeline.save_model_a(settings, build_model_a(16, filters=(4,), dense_units=4))
    trained = build_model_a(24, filters=(4,), dense_units=4, name="fresh")
    monkeypatch.setattr(pipeline, "get_split", lambda s, verbose=True: None)
    monkeypatch.setattr(pipeline, "train_model_a", lambda s, split, verbose=0: (trained, {"loss": [1.0]}))
    assert pipeline.get_model_a(settings).name == "fresh"
    assert "takes 16 px images" in capsys.readouterr().out
    assert pipeline.load_model_a(settings)[1] == {"loss": [1.0]}
