"""Training: seeds, Keras callbacks, learning curves, saving.

Introduced in lesson 08 (train).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import pandas as pd


def set_seed(seed: int = 42) -> None:
    """Seed Python, NumPy and the backend so a run can be repeated (lesson 01's setup cell).

    Op-level determinism on a GPU also needs ``tf.config.experimental.enable_op_determinism()``,
    which slows training; the course leaves it off and accepts tiny run-to-run differences there.
    """
    keras.utils.set_random_seed(seed)


def enable_mixed_precision(enabled: bool) -> str:
    """Use float16 compute on a GPU (the ``gpu`` profile); returns the policy name in force.

    Output layers of the course's models are float32 already, so losses stay stable.
    """
    policy = "mixed_float16" if enabled else "float32"
    keras.mixed_precision.set_global_policy(policy)
    return policy


class TimeBudget(keras.callbacks.Callback):
    """Stop training before a wall-clock budget runs out (Keras has no built-in callback for this).

    At the end of each epoch it expects the next epoch to take as long as the last one (on a
    shared machine the latest epoch says most about the current load) and stops if that would
    overrun ``seconds``; inside an epoch it stops after the current batch once the budget is spent,
    so a run never overshoots by more than one batch (plus that epoch's validation).
    Combine it with :class:`keras.callbacks.EarlyStopping` (``restore_best_weights=True``), which
    still restores the best epoch when this callback ends the run. ``stopped_reason`` says why it
    stopped (empty when it did not).
    """

    def __init__(self, seconds: float, clock=None):
        super().__init__()
        if seconds <= 0:
            raise ValueError(f"a time budget must be positive, got {seconds} seconds")
        self.seconds = float(seconds)
        self._clock = clock or time.monotonic
        self.start: float | None = None
        self.last_epoch = 0.0
        self.stopped_reason = ""

    def elapsed(self) -> float:
        """Seconds since training started (0 before it starts)."""
        return 0.0 if self.start is None else self._clock() - self.start

    def on_train_begin(self, logs=None):
        self.start = self._clock()
        self._epoch_start = self.start

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self._clock()

    def on_train_batch_end(self, batch, logs=None):
        if self.elapsed() >= self.seconds:
            self.stopped_reason = f"time budget of {self.seconds:.0f} s spent during an epoch"
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.last_epoch = self._clock() - self._epoch_start
        if not self.stopped_reason and self.elapsed() + self.last_epoch > self.seconds:
            self.stopped_reason = (
                f"stopped after epoch {epoch + 1}: another epoch (~{self.last_epoch:.0f} s) "
                f"would overrun the {self.seconds:.0f} s budget"
            )
            self.model.stop_training = True


LR_SCHEDULES = ("plateau", "cosine")


def cosine_schedule(learning_rate: float, epochs: int, warmup_epochs: int = 1, final_fraction: float = 0.02):
    """A per-epoch learning-rate plan for :class:`keras.callbacks.LearningRateScheduler`.

    ``warmup_epochs`` epochs climb to ``learning_rate`` (large steps on freshly initialised weights,
    batch-norm statistics not yet settled, can throw training off at the start), then the rate
    follows half a cosine down to ``final_fraction`` of it at the last epoch. Unlike
    ReduceLROnPlateau it does not wait for the validation loss to stall: when a time budget fixes the
    number of epochs, planning the whole decay uses every epoch, and the small steps at the end
    settle the weights.

    Returns ``schedule(epoch, current_lr) -> learning rate`` (``epoch`` counts from 0).
    """
    import math  # as lesson 08 shows it (one source: tests/test_one_source.py)

    if epochs < 1:
        raise ValueError(f"a schedule needs at least one epoch, got {epochs}")
    warmup_epochs = max(0, min(warmup_epochs, epochs - 1))

    def schedule(epoch: int, current_lr: float | None = None) -> float:
        if epoch < warmup_epochs:
            return learning_rate * (epoch + 1) / (warmup_epochs + 1)
        progress = (epoch - warmup_epochs) / max(1, epochs - warmup_epochs - 1)
        progress = min(progress, 1.0)
        return learning_rate * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))

    return schedule


def make_callbacks(
    checkpoint: str | os.PathLike | None = None,
    patience: int = 5,
    lr_patience: int = 2,
    monitor: str = "val_loss",
    log_csv: str | os.PathLike | None = None,
    lr_factor: float = 0.3,
    time_budget_s: float | None = None,
    lr_schedule: str = "plateau",
    epochs: int | None = None,
    learning_rate: float | None = None,
    restore_best_weights: bool = True,
) -> list[keras.callbacks.Callback]:
    """The standard callbacks of lesson 08.

    * :class:`keras.callbacks.EarlyStopping` -- stop when ``monitor`` has not improved for
      ``patience`` epochs and restore the best epoch's weights (``restore_best_weights=False``
      keeps the last epoch's instead: with a cosine decay the last epoch, trained at the smallest
      rate, can be the better model even when its validation loss is not the lowest);
    * how the learning rate changes, by ``lr_schedule``:

      - ``"plateau"``: :class:`keras.callbacks.ReduceLROnPlateau` multiplies it by ``lr_factor``
        after ``lr_patience`` epochs without improvement (so it acts before early stopping does);
      - ``"cosine"``: :class:`keras.callbacks.LearningRateScheduler` with :func:`cosine_schedule`
        over ``epochs`` epochs from ``learning_rate`` (both required);

    * optionally :class:`keras.callbacks.ModelCheckpoint` (the best model so far, as ``.keras``),
      :class:`keras.callbacks.CSVLogger` (one row per epoch) and :class:`TimeBudget`.
    """
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=restore_best_weights)
    ]
    if lr_schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=lr_factor, patience=lr_patience, min_lr=1e-6)
        )
    elif lr_schedule == "cosine":
        if not epochs or not learning_rate:
            raise ValueError("a cosine schedule needs the number of epochs and the starting learning rate")
        callbacks.append(keras.callbacks.LearningRateScheduler(cosine_schedule(learning_rate, epochs)))
    else:
        raise ValueError(f"unknown learning-rate schedule {lr_schedule!r}; choose from {', '.join(LR_SCHEDULES)}")
    if checkpoint is not None:
        Path(checkpoint).parent.mkdir(parents=True, exist_ok=True)
        callbacks.append(keras.callbacks.ModelCheckpoint(str(checkpoint), monitor=monitor, save_best_only=True))
    if log_csv is not None:
        Path(log_csv).parent.mkdir(parents=True, exist_ok=True)
        callbacks.append(keras.callbacks.CSVLogger(str(log_csv)))
    if time_budget_s is not None:
        callbacks.append(TimeBudget(time_budget_s))
    return callbacks


def train_model(
    model: keras.Model,
    train_ds,
    val_ds,
    epochs: int,
    checkpoint: str | os.PathLike | None = None,
    patience: int = 5,
    verbose: int | str = "auto",
    extra_callbacks=(),
    lr_patience: int = 2,
    time_budget_s: float | None = None,
    log_csv: str | os.PathLike | None = None,
    lr_schedule: str = "plateau",
    learning_rate: float | None = None,
    restore_best_weights: bool = True,
) -> dict[str, list[float]]:
    """Fit a compiled model with :func:`make_callbacks`; returns the history as a plain dict.

    ``lr_schedule="cosine"`` plans the learning rate over ``epochs`` from ``learning_rate``
    (default: the optimizer's current rate) instead of reducing it on a plateau.
    ``restore_best_weights=False`` keeps the last epoch's weights instead of the lowest-loss one's.

    The history has one list per metric (``loss``, ``age_mae``, ``val_gender_accuracy``, ...,
    and ``learning_rate``), one value per epoch run; early stopping or ``time_budget_s`` may end
    training before ``epochs``.
    """
    if lr_schedule == "cosine" and learning_rate is None:
        learning_rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    callbacks = make_callbacks(
        checkpoint=checkpoint,
        patience=patience,
        lr_patience=lr_patience,
        log_csv=log_csv,
        time_budget_s=time_budget_s,
        lr_schedule=lr_schedule,
        epochs=epochs,
        learning_rate=learning_rate,
        restore_best_weights=restore_best_weights,
    ) + list(extra_callbacks)
    # The datasets shuffle themselves (agecourse.recipes.datasets); fit's own shuffle does not apply.
    history = model.fit(
        train_ds, validation_data=val_ds, epochs=epochs, callbacks=callbacks, verbose=verbose, shuffle=False
    )
    return history_dict(history)


def history_dict(history) -> dict[str, list[float]]:
    """A :class:`keras.callbacks.History` (what ``model.fit`` returns) or its ``.history`` dict as
    plain ``{metric: [float per epoch]}``, ready for :func:`save_history` (JSON cannot store the
    NumPy numbers Keras sometimes records, such as the learning rate)."""
    values = getattr(history, "history", history)
    return {key: [float(v) for v in per_epoch] for key, per_epoch in values.items()}


def describe_callbacks(callbacks) -> pd.DataFrame:
    """One row per callback with the settings that matter in lesson 08 (what it watches, its
    patience, factor, file, budget), so a notebook can show what :func:`make_callbacks` built."""
    fields = {
        "monitor": "watches",
        "patience": "patience (epochs)",
        "factor": "learning-rate factor",
        "min_lr": "lowest learning rate",
        "restore_best_weights": "restores best weights",
        "save_best_only": "best only",
        "filepath": "file",
        "filename": "file",
        "seconds": "budget (s)",
    }
    rows = []
    for callback in callbacks:
        row = {"callback": type(callback).__name__}
        for attr, label in fields.items():
            value = getattr(callback, attr, None)
            if value is not None and label not in row:
                row[label] = str(value) if attr in ("filepath", "filename") else value
        rows.append(row)
    table = pd.DataFrame(rows).set_index("callback")
    return table.astype(object).where(table.notna(), "")


def save_history(history: dict[str, list[float]], path: str | os.PathLike) -> Path:
    """Write a history dict to JSON so a later lesson can plot it without retraining."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(history, indent=1))
    return path


def plot_history(history: dict[str, list[float]], title: str = "Learning curves"):
    """Learning curves for both heads: total loss, age MAE and gender accuracy, training vs
    validation, plus the learning rate (log scale) when the history recorded it."""
    panels = [
        ("loss", "total loss"),
        ("age_mae", "age MAE (years)"),
        ("gender_accuracy", "gender accuracy"),
        ("learning_rate", "learning rate"),
    ]
    panels = [(key, label) for key, label in panels if key in history]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.4), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels):
        epochs = range(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], marker="o", label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(label)
        if key == "learning_rate":
            ax.set_yscale("log")
        else:
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def load_history(path: str | os.PathLike) -> dict[str, list[float]]:
    """Read a history written by :func:`save_history`; a clear error names a missing or bad file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no saved training history (train Model A in lesson 08 first)")
    try:
        history = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not a JSON training history ({err})") from err
    if not isinstance(history, dict) or not all(isinstance(v, list) for v in history.values()):
        raise ValueError(f"{path}: expected a JSON object of per-epoch lists, like Keras's History.history")
    return history


def history_table(history: dict[str, list[float]]) -> pd.DataFrame:
    """One row per epoch with every metric of the history (and the learning rate when
    ``ReduceLROnPlateau`` or a schedule recorded it), plus a ``best`` marker on the epoch with the lowest
    ``val_loss``: the one :class:`keras.callbacks.EarlyStopping` restores."""
    frame = pd.DataFrame(history)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="epoch")
    if "val_loss" in frame:
        frame["best"] = ""
        frame.loc[frame["val_loss"].idxmin(), "best"] = "<- restored"
    return frame
