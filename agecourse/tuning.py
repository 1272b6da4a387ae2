"""Hyperparameter search for Model A with Keras Tuner (lesson 08).

:func:`model_a_hypermodel` is the recipe of :func:`agecourse.recipes.build_model_a_for` with the
learning rate and the width left open; ``keras_tuner.RandomSearch`` draws combinations and keeps the
one with the lowest validation loss. :func:`tuner_table` lists the finished trials.
"""

from __future__ import annotations

import time

import keras
import numpy as np
import pandas as pd

from agecourse.recipes import build_model_a_for

WIDTHS = (0.5, 1.0, 2.0)

# Lesson 08's search per profile: (trials, epochs per trial, training faces sampled; None: all). Tiny on
# purpose: it shows the mechanics within the lesson's time, and its ranking is a hint at best.
SEARCH_BUDGETS: dict[str, tuple[int, int, int | None]] = {"ci": (2, 2, None), "cpu": (3, 2, 1500), "gpu": (8, 3, None)}


def search_budget(settings) -> tuple[int, int, int | None]:
    """``(trials, epochs per trial, training faces to sample or None for all)`` of lesson 08's
    Keras Tuner search in ``settings.profile`` (:data:`SEARCH_BUDGETS`)."""
    return SEARCH_BUDGETS[settings.profile]


def model_a_hypermodel(settings, age_init: float):
    """A Keras Tuner build function for Model A: the recipe in ``settings`` with two choices left
    open, the learning rate (log-uniform, 3e-4 to 1e-2) and the width (every filter count of
    ``settings.model_filters`` times 0.5, 1 or 2). Everything else is lesson 06-07's Model A."""

    def build(hp):
        learning_rate = hp.Float("learning_rate", 3e-4, 1e-2, sampling="log")
        width = hp.Choice("width", list(WIDTHS))
        filters = tuple(max(4, round(f * width)) for f in settings.model_filters)
        recipe = settings.replace(model_filters=filters, learning_rate=learning_rate)
        return build_model_a_for(recipe, age_init=age_init)

    return build


def tuner_table(tuner) -> pd.DataFrame:
    """One row per finished Keras Tuner trial, best first: its hyperparameters and its score
    (the tuner's objective, e.g. the lowest validation loss of the trial)."""
    trials = tuner.oracle.get_best_trials(num_trials=len(tuner.oracle.trials))
    rows = [{"trial": t.trial_id, **t.hyperparameters.values, "score": t.score} for t in trials]
    return pd.DataFrame(rows).set_index("trial")


class EpochTimes(keras.callbacks.Callback):
    """Record ``(epoch, seconds)`` for every epoch of every trial, validation included.

    Keras Tuner deep-copies the callbacks for each trial; every copy appends to the same list,
    ``seconds``, so one object collects the whole search. The first epoch of a trial also pays for
    building and tracing the model; later epochs show what an epoch costs in steady state.
    """

    def __init__(self, seconds: list | None = None):
        super().__init__()
        self.seconds = [] if seconds is None else seconds

    def __deepcopy__(self, memo):
        return EpochTimes(self.seconds)

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append((epoch, time.perf_counter() - self._start))

    def steady_epoch_seconds(self) -> float:
        """Median seconds of the epochs after each trial's first (NaN when every trial ran one epoch)."""
        later = [seconds for epoch, seconds in self.seconds if epoch > 0]
        return float(np.median(later)) if later else float("nan")
