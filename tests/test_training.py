"""agecourse.training: histories, the time budget, callbacks, the cosine schedule, tiny real trainings."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from agecourse import models, training


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


class WeightsEachEpoch(keras.callbacks.Callback):
    """Records the model's weights at the end of every epoch."""

    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([w.copy() for w in self.model.get_weights()])


@pytest.mark.parametrize("restore", [True, False])
def test_train_model_keeps_the_restored_or_the_last_epoch(restore):
    keras.utils.set_random_seed(0)
    model, ds = tiny_model_and_data()
    recorder = WeightsEachEpoch()
    history = training.train_model(
        model, ds, ds, epochs=4, patience=10, verbose=0, extra_callbacks=[recorder], restore_best_weights=restore
    )
    best = int(np.argmin(history["val_loss"]))
    kept = best if restore else len(history["loss"]) - 1
    for final, recorded in zip(model.get_weights(), recorder.weights[kept]):
        np.testing.assert_array_equal(final, recorded)
    stopper = training.make_callbacks(restore_best_weights=restore)[0]
    assert type(stopper).__name__ == "EarlyStopping" and stopper.restore_best_weights is restore
