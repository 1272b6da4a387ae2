"""Lesson 06-08 additions: the AlexNet-like design, size tables, loss demos, history helpers."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from agecourse import models, training


@pytest.mark.parametrize("size", [48, 64, 96, 128])
def test_alexnet_like_stays_near_half_a_million_parameters(size):
    model = models.build_alexnet_like(size)
    assert 350_000 < model.count_params() < 750_000
    x = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype("float32")
    age, gender = model.predict(x, verbose=0)
    assert age.shape == gender.shape == (2, 1)
    assert (age >= 0).all() and ((gender > 0) & (gender < 1)).all()


def test_alexnet_like_needs_five_filters_and_flatten_grows_with_the_map():
    with pytest.raises(ValueError, match="5 filter counts"):
        models.build_alexnet_like(64, filters=(8, 16))
    small = models.build_alexnet_like(64, first_stride=2)
    large = models.build_alexnet_like(128, first_stride=2)  # same stride, 4x the final map area
    assert large.count_params() > small.count_params()
    assert any(
        isinstance(layer, keras.layers.BatchNormalization)
        for layer in models.build_alexnet_like(64, batch_norm=True).layers
    )


def test_describe_and_compare_configurations():
    row = models.describe_model(models.build_model_a(32, filters=(8, 16)))
    assert row["conv layers"] == 4 and row["last feature map"] == "8x8x16"
    assert row["trainable"] < row["parameters"], "batch norm keeps moving statistics as non-trainable weights"
    table = models.compare_configurations(
        {"narrow": {"filters": (8, 16)}, "wide": {"filters": (16, 32)}, "alex": models.build_alexnet_like}, 32
    )
    assert list(table.index) == ["narrow", "wide", "alex"]
    assert table.loc["wide", "parameters"] > table.loc["narrow", "parameters"]
    assert table.loc["alex", "conv layers"] == 5


def test_age_loss_curves_match_known_values():
    curves = models.age_loss_curves([-10.0, 0.0, 2.0], delta=5.0)
    assert curves["MSE"].tolist() == pytest.approx([100.0, 0.0, 4.0])
    assert curves["MAE"].tolist() == pytest.approx([10.0, 0.0, 2.0])
    # Huber: 0.5 e^2 inside delta, delta (|e| - delta / 2) outside.
    assert curves["Huber (delta=5)"].tolist() == pytest.approx([37.5, 0.0, 2.0])


def test_outlier_pulls_hardest_on_mse():
    table = models.outlier_influence([1.0, -2.0, 1.0, -1.0, 60.0], delta=5.0)
    share = table["share of gradient from the outlier"]
    assert share["MSE"] > share["Huber (delta=5)"] > share["MAE"]
    assert share["MAE"] == pytest.approx(1 / 5)  # every MAE gradient has size 1/n
    assert table.loc["MSE", "batch loss"] == pytest.approx((1 + 4 + 1 + 1 + 3600) / 5)


def test_initial_loss_magnitudes_show_the_scale_gap():
    model = models.build_model_a(24, filters=(4,), dense_units=4, age_init=30.0)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (16, 24, 24, 3)).astype("float32")
    labels = {"age": rng.uniform(1, 90, 16).astype("float32"), "gender": (np.arange(16) % 2).astype("float32")}
    table = models.initial_loss_magnitudes(model, x, labels)
    bce = table.loc[("gender", "binary cross-entropy"), "value"]
    assert 0.3 < bce < 1.5, "an untrained sigmoid head starts near ln 2"
    assert table.loc[("age", "MSE"), "times the gender loss"] > 25
    assert table.loc[("age", "MSE"), "value"] > table.loc[("age", "MAE"), "value"]


def test_activation_and_loss_plots_draw(tmp_path):
    for fig in (models.plot_output_activations(), models.plot_age_losses()):
        assert len(fig.axes) == 2 and all(ax.lines for ax in fig.axes)
        fig.savefig(tmp_path / "plot.png")
        assert (tmp_path / "plot.png").stat().st_size > 1000


def test_history_round_trip_and_table(tmp_path):
    history = {"loss": [3.0, 2.0, 2.5], "val_loss": [3.5, 2.4, 2.6], "learning_rate": [1e-3, 1e-3, 3e-4]}
    path = training.save_history(history, tmp_path / "h.json")
    assert training.load_history(path) == history
    table = training.history_table(history)
    assert list(table.index) == [1, 2, 3]
    assert table.loc[2, "best"] == "<- restored" and table["best"].tolist().count("<- restored") == 1


def test_load_history_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json"):
        training.load_history(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not a JSON"):
        training.load_history(bad)
    bad.write_text(json.dumps({"loss": 3}))
    with pytest.raises(ValueError, match="per-epoch lists"):
        training.load_history(bad)


def test_epochs_from_env(monkeypatch):
    monkeypatch.delenv("AGECOURSE_EPOCHS", raising=False)
    assert training.epochs_from_env(15) == 15
    monkeypatch.setenv("AGECOURSE_EPOCHS", "6")
    assert training.epochs_from_env(15) == 6
    monkeypatch.setenv("AGECOURSE_EPOCHS", "zero")
    with pytest.raises(ValueError, match="AGECOURSE_EPOCHS='zero'"):
        training.epochs_from_env(15)


def _tiny_split(tmp_path, image_writer, n=30):
    import pandas as pd

    from agecourse.data import Split

    rows = []
    for i in range(n):
        age, gender = 5 + 3 * i, i % 2
        path = image_writer(tmp_path / f"{age}_{gender}_0_2017010100000{i:04d}.jpg", size=(32, 32), seed=i)
        rows.append({"path": str(path), "age": age, "gender": gender, "race": 0})
    images = pd.DataFrame(rows)
    return Split(
        images.iloc[:20].reset_index(drop=True),
        images.iloc[20:25].reset_index(drop=True),
        images.iloc[25:].reset_index(drop=True),
    )


def test_compare_age_losses_trains_one_model_per_loss(tmp_path, image_writer):
    from agecourse.config import get_settings

    settings = get_settings("ci", image_size=16, batch_size=8, model_filters=(4,))
    split = _tiny_split(tmp_path, image_writer)
    table = training.compare_age_losses(settings, split, losses=("mse", "huber"), epochs=1, max_train=12)
    assert list(table.index) == ["mse", "huber"]
    assert table["train images"].tolist() == [12, 12]
    assert table.loc["mse", "loss weights (age:gender)"] == "1:100"
    assert (table["val age MAE"] > 0).all() and table["val gender accuracy"].between(0, 1).all()


def test_get_model_a_loads_what_lesson_08_saves(tmp_path, monkeypatch, capsys):
    """Lesson 08 saves to ``settings.artifacts_dir / "model_a.keras"``; lessons 09-13 must find it there."""
    from agecourse.config import get_settings
    from agecourse.pipeline import get_model_a

    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path))
    settings = get_settings("ci")
    saved = models.build_model_a(16, filters=(4,), dense_units=4, name="saved_by_lesson_08")
    path = settings.artifacts_dir / "model_a.keras"
    path.parent.mkdir(parents=True)
    saved.save(path)
    loaded = get_model_a(settings)
    assert "Loaded the saved Model A" in capsys.readouterr().out
    assert loaded.name == "saved_by_lesson_08"
