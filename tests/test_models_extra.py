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


def test_activation_and_loss_plots_draw(tmp_path):
    from agecourse.loss_demos import plot_age_losses

    for fig in (models.plot_output_activations(), plot_age_losses()):
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


class _FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class _FakeModel:
    stop_training = False


def test_time_budget_stops_before_an_epoch_would_overrun():
    clock = _FakeClock()
    budget = training.TimeBudget(100, clock=clock)
    budget.set_model(_FakeModel())
    budget.on_train_begin()
    for epoch, seconds in enumerate([30, 40]):
        budget.on_epoch_begin(epoch)
        clock.now += seconds
        budget.on_train_batch_end(0)
        budget.on_epoch_end(epoch)
        if budget.model.stop_training:
            break
    # 30 s + 40 s spent; the slowest epoch (40 s) would end at 110 s > 100 s: stop after epoch 2.
    assert budget.model.stop_training and epoch == 1
    assert "after epoch 2" in budget.stopped_reason and budget.last_epoch == 40


def test_time_budget_stops_inside_an_epoch_and_rejects_nonsense():
    clock = _FakeClock()
    budget = training.TimeBudget(10, clock=clock)
    budget.set_model(_FakeModel())
    budget.on_train_begin()
    budget.on_epoch_begin(0)
    clock.now = 5
    budget.on_train_batch_end(0)
    assert not budget.model.stop_training
    clock.now = 11
    budget.on_train_batch_end(1)
    assert budget.model.stop_training and "during an epoch" in budget.stopped_reason
    with pytest.raises(ValueError, match="must be positive"):
        training.TimeBudget(0)
    kinds = [type(c).__name__ for c in training.make_callbacks(time_budget_s=60)]
    assert kinds[-1] == "TimeBudget"


def tiny_model_and_data():
    """A one-block Model A compiled at learning rate 0.01 and 16 random 16 px faces in batches of 8."""
    import tensorflow as tf

    training.set_seed(0)
    model = models.compile_model(models.build_model_a(16, filters=(4,), dense_units=4), learning_rate=1e-2)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (16, 16, 16, 3)).astype("float32")
    y = {"age": rng.uniform(1, 80, (16, 1)).astype("float32"), "gender": rng.integers(0, 2, (16, 1)).astype("float32")}
    return model, tf.data.Dataset.from_tensor_slices((x, y)).batch(8)


def test_train_model_respects_a_time_budget_and_restores_the_best_epoch():
    model, ds = tiny_model_and_data()
    history = training.train_model(model, ds, ds, epochs=50, verbose=0, time_budget_s=1e-6)
    assert len(history["loss"]) == 1, "a spent budget ends training after the first batch's epoch"
    assert {"val_age_mae", "val_gender_accuracy", "learning_rate"} <= set(history)


def test_history_dict_and_learning_rate_panel(tmp_path):
    raw = {"loss": [np.float32(2.0), 1.5], "learning_rate": [np.float32(1e-3), np.float32(3e-4)]}
    history = training.history_dict(raw)
    assert history == {"loss": [2.0, 1.5], "learning_rate": [pytest.approx(1e-3), pytest.approx(3e-4)]}
    assert all(type(v) is float for values in history.values() for v in values)
    training.save_history(history, tmp_path / "h.json")  # plain floats: JSON can store them
    fig = training.plot_history(history)
    assert [ax.get_title() for ax in fig.axes] == ["total loss", "learning rate"]
    assert fig.axes[1].get_yscale() == "log"


def test_describe_callbacks_shows_their_settings(tmp_path):
    table = training.describe_callbacks(
        training.make_callbacks(checkpoint=tmp_path / "best.keras", patience=4, lr_patience=1, time_budget_s=90)
    )
    assert list(table.index) == ["EarlyStopping", "ReduceLROnPlateau", "ModelCheckpoint", "TimeBudget"]
    assert table.loc["EarlyStopping", "patience (epochs)"] == 4
    assert table.loc["ReduceLROnPlateau", "patience (epochs)"] == 1
    assert table.loc["ReduceLROnPlateau", "learning-rate factor"] == pytest.approx(0.3)
    assert table.loc["ModelCheckpoint", "file"].endswith("best.keras")
    assert table.loc["TimeBudget", "budget (s)"] == 90


def test_batch_norm_momentum_is_configurable():
    def momenta(model):
        return {layer.momentum for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)}

    assert momenta(models.build_model_a(16, filters=(4, 8))) == {models.BN_MOMENTUM}
    assert momenta(models.build_model_a(16, filters=(4,), bn_momentum=0.99)) == {0.99}


def test_cosine_schedule_warms_up_then_decays_to_its_floor():
    schedule = training.cosine_schedule(1e-3, epochs=10, warmup_epochs=1, final_fraction=0.02)
    rates = [schedule(epoch) for epoch in range(10)]
    assert rates[0] == pytest.approx(5e-4)  # warm-up: half the rate in the first epoch
    assert rates[1] == pytest.approx(1e-3)  # then the full rate
    assert all(a > b for a, b in zip(rates[1:], rates[2:])), "strictly decreasing after the warm-up"
    assert rates[-1] == pytest.approx(2e-5)  # 2 % of the rate at the last epoch
    assert schedule(25) == pytest.approx(2e-5), "epochs beyond the plan stay at the floor"
    assert training.cosine_schedule(1e-3, epochs=1)(0) == pytest.approx(1e-3), "one epoch: no room to warm up"
    with pytest.raises(ValueError, match="at least one epoch"):
        training.cosine_schedule(1e-3, epochs=0)


def test_make_callbacks_cosine_replaces_reduce_on_plateau():
    kinds = [type(c).__name__ for c in training.make_callbacks(lr_schedule="cosine", epochs=5, learning_rate=1e-3)]
    assert kinds == ["EarlyStopping", "LearningRateScheduler"]
    with pytest.raises(ValueError, match="needs the number of epochs"):
        training.make_callbacks(lr_schedule="cosine")
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'step'"):
        training.make_callbacks(lr_schedule="step")


def test_train_model_with_cosine_schedule_records_the_planned_rates():
    model, ds = tiny_model_and_data()
    history = training.train_model(model, ds, ds, epochs=4, patience=10, verbose=0, lr_schedule="cosine")
    planned = [training.cosine_schedule(1e-2, 4)(epoch) for epoch in range(4)]
    assert history["learning_rate"] == pytest.approx(planned, rel=1e-5)


def test_model_a_hypermodel_opens_learning_rate_and_width(tmp_path, image_writer):
    keras_tuner = pytest.importorskip("keras_tuner")
    from agecourse import tuning
    from agecourse.config import get_settings
    from agecourse.recipes import datasets

    settings = get_settings("ci", image_size=16, batch_size=8, model_filters=(4, 8))
    build = tuning.model_a_hypermodel(settings, age_init=30.0)
    hp = keras_tuner.HyperParameters()
    hp.Fixed("learning_rate", 2e-3)
    hp.Fixed("width", 2.0)
    model = build(hp)
    convs = [layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs == [8, 8, 16, 16], "width 2 doubles every filter count"
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(2e-3)

    split = _tiny_split(tmp_path, image_writer)
    train, val, _ = datasets(settings, split)
    tuner = keras_tuner.RandomSearch(
        build, objective="val_loss", max_trials=2, seed=1, directory=tmp_path / "tuner", overwrite=True
    )
    timer = tuning.EpochTimes()
    tuner.search(train, validation_data=val, epochs=2, callbacks=[timer], verbose=0)
    table = tuning.tuner_table(tuner)
    assert [epoch for epoch, _ in timer.seconds] == [0, 1, 0, 1], "one list for every trial's epochs"
    assert timer.steady_epoch_seconds() > 0
    assert len(table) == 2 and {"learning_rate", "width", "score"} <= set(table.columns)
    assert table["score"].is_monotonic_increasing, "best (lowest validation loss) first"
    assert table["width"].isin(tuning.WIDTHS).all() and table["learning_rate"].between(3e-4, 1e-2).all()
