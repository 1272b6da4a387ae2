"""Training: seeds, Keras callbacks, learning curves, saving.

Introduced in lesson 08 (train).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras


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


def make_callbacks(checkpoint: str | os.PathLike | None = None, patience: int = 5,
                   lr_patience: int = 2, monitor: str = "val_loss",
                   log_csv: str | os.PathLike | None = None) -> list[keras.callbacks.Callback]:
    """The standard callbacks: early stopping (best weights restored), learning-rate reduction on
    plateaus, and optionally a best-model checkpoint and a CSV log of every epoch."""
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.3, patience=lr_patience, min_lr=1e-6),
    ]
    if checkpoint is not None:
        Path(checkpoint).parent.mkdir(parents=True, exist_ok=True)
        callbacks.append(keras.callbacks.ModelCheckpoint(str(checkpoint), monitor=monitor, save_best_only=True))
    if log_csv is not None:
        Path(log_csv).parent.mkdir(parents=True, exist_ok=True)
        callbacks.append(keras.callbacks.CSVLogger(str(log_csv)))
    return callbacks


def train_model(model: keras.Model, train_ds, val_ds, epochs: int, checkpoint: str | os.PathLike | None = None,
                patience: int = 5, verbose: int | str = "auto", extra_callbacks=()) -> dict[str, list[float]]:
    """Fit a compiled model with :func:`make_callbacks`; returns the history as a plain dict."""
    callbacks = make_callbacks(checkpoint=checkpoint, patience=patience) + list(extra_callbacks)
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=callbacks, verbose=verbose)
    return {key: [float(v) for v in values] for key, values in history.history.items()}


def save_history(history: dict[str, list[float]], path: str | os.PathLike) -> Path:
    """Write a history dict to JSON so a later lesson can plot it without retraining."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(history, indent=1))
    return path


def plot_history(history: dict[str, list[float]], title: str = "Learning curves"):
    """Learning curves for both heads: age MAE and gender accuracy, training vs validation."""
    import matplotlib.pyplot as plt

    panels = [("loss", "total loss"), ("age_mae", "age MAE (years)"), ("gender_accuracy", "gender accuracy")]
    panels = [(key, label) for key, label in panels if key in history]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.4), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels):
        epochs = range(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], marker="o", label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(label)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig
