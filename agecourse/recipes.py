"""The profile's recipes: from a :class:`~agecourse.config.Settings` to data pipelines, models and
training runs, for Model A and Model B side by side.

Each model has the same two steps here, and every lesson, ``agecourse run`` and the benchmarks go
through them, so they all train the same networks:

=================  ==============================  ====================================
step               Model A (lessons 06-08)         Model B (lesson 10)
=================  ==============================  ====================================
build              :func:`build_model_a_for`       :func:`build_model_b_for`
train              :func:`train_model_a`           :func:`train_model_b` (:func:`train_cached_for`
                                                   or :func:`train_images_for` on a built model)
=================  ==============================  ====================================

Both trainers honour every training setting (seed, batch size, cache, augmentation, epochs, learning
rates and their schedule, patience) and return ``(model, history)``. Saving and reloading trained
models with a compatibility check is :mod:`agecourse.artifacts`' job.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pandas as pd

from agecourse.augment import make_augmentation
from agecourse.balance import upsample
from agecourse.config import Settings
from agecourse.data import Split, make_dataset
from agecourse.models import DEFAULT_AGE_INIT, build_model_a, compile_model, default_loss_weights
from agecourse.training import set_seed, train_model
from agecourse.transfer import build_model_b
from agecourse.transfer_training import (
    FINETUNE_LEARNING_RATE,
    PhasePlan,
    join_histories,
    train_two_phase,
    train_two_phase_cached,
)


def datasets(
    settings: Settings,
    split: Split,
    augment=None,
    image_size: int | None = None,
    train_images=None,
    sample_weight: str | None = None,
):
    """``(train, val, test)`` ``tf.data`` pipelines for a split: training shuffled (seeded, again
    every epoch) and optionally augmented, validation and test in file order.

    ``train_images`` replaces ``split.train`` (re-sampled rows, lesson 12) and ``sample_weight``
    names its column of per-image loss weights (lesson 04), which the training batches then carry.

    With ``settings.cache == "memory"`` the training and validation images are decoded and resized
    once and kept in RAM (``n x size x size x 3`` float32: about 270 MB for 5,500 images at 64 px);
    :func:`agecourse.data.make_dataset` shuffles *after* the cache, so every epoch sees a new order.
    """
    size = image_size or settings.image_size
    train = make_dataset(
        split.train if train_images is None else train_images,
        size,
        settings.batch_size,
        shuffle=True,
        seed=settings.seed,
        cache=settings.cache,
        augment=augment,
        sample_weight=sample_weight,
    )
    val = make_dataset(split.val, size, settings.batch_size, cache=settings.cache)
    test = make_dataset(split.test, size, settings.batch_size)
    return train, val, test


def augmentation_for(settings: Settings):
    """The augmentation layer ``settings.augment`` asks for: lesson 05's full set (``True``),
    mirror images only (``"flip"``) or none (``False`` / ``None``)."""
    if settings.augment in (False, None, "none"):
        return None
    if settings.augment is True or settings.augment == "full":
        return make_augmentation()
    if settings.augment == "flip":
        return make_augmentation(rotation=0, zoom=0, translation=0, contrast=0, brightness=0)
    raise ValueError(f"settings.augment={settings.augment!r}: use True (or 'full'), 'flip' or False (or 'none')")


def build_model_a_for(settings: Settings, age_init: float | None = None):
    """Model A built and compiled with the recipe in ``settings`` (lessons 06-07): filters, head
    size, dropout, L2, augmentation, age loss and loss weights, AdamW at ``settings.learning_rate``.

    ``age_init`` starts the age head at that age (use the training split's mean age). This is the
    one place the recipe is turned into a model, so lesson 08, ``agecourse run`` and the benchmark
    train the same network.
    """
    model = build_model_a(
        settings.image_size,
        filters=settings.model_filters,
        dropout=settings.head_dropout,
        l2=settings.l2,
        dense_units=settings.dense_units,
        age_init=DEFAULT_AGE_INIT if age_init is None else float(age_init),
        augment=augmentation_for(settings),
    )
    weights = default_loss_weights(settings.age_loss)
    if settings.gender_loss_weight is not None:
        weights = dict(weights, gender=float(settings.gender_loss_weight))
    return compile_model(model, learning_rate=settings.learning_rate, age_loss=settings.age_loss, loss_weights=weights)


def train_model_a(
    settings: Settings,
    split: Split,
    epochs: int | None = None,
    verbose: int | str = "auto",
    checkpoint: str | os.PathLike | None = None,
    time_budget_s: float | None = None,
    log_csv: str | os.PathLike | None = None,
    train_images=None,
    sample_weight: str | None = None,
):
    """Build, compile and train Model A with the profile's settings; returns ``(model, history)``.

    Training uses :func:`agecourse.training.make_callbacks` (early stopping with the best weights
    restored, the learning-rate schedule of ``settings.lr_schedule``, optional checkpoint and CSV
    log) and stops early if ``time_budget_s`` seconds of training would be exceeded.

    ``train_images`` replaces ``split.train`` (re-sampled rows, lesson 12's mitigation) and
    ``sample_weight`` names a column of per-image loss weights (lesson 04); validation stays
    ``split.val``. The age head then starts at the (weighted) mean age the loss sees.
    """
    set_seed(settings.seed)
    table = split.train if train_images is None else train_images
    if sample_weight is not None and sample_weight not in table:
        raise ValueError(f"the training table has no {sample_weight!r} column to weight by")
    train, val, _ = datasets(settings, split, train_images=table, sample_weight=sample_weight)
    weights = table[sample_weight] if sample_weight else None
    model = build_model_a_for(settings, age_init=float(np.average(table["age"], weights=weights)))
    history = train_model(
        model,
        train,
        val,
        epochs=epochs or settings.epochs,
        checkpoint=checkpoint,
        patience=settings.patience,
        lr_patience=settings.lr_patience,
        verbose=verbose,
        time_budget_s=time_budget_s,
        log_csv=log_csv,
        lr_schedule=settings.lr_schedule,
        learning_rate=settings.learning_rate,
    )
    return model, history


def build_model_b_for(
    settings: Settings,
    split: Split | None = None,
    weights: str | os.PathLike | None = "imagenet",
    age_init: float | None = None,
    verbose: bool = True,
):
    """Model B built from ``settings`` (lesson 10), uncompiled: backbone, input size, alpha and head
    dropout from the ``transfer_*`` fields, and the augmentation ``settings.augment`` asks for
    (:func:`augmentation_for`) inside the model -- except when the profile trains on cached views
    (``transfer_cached_views``), where the views are the augmentation and nothing random may run
    below the cut.

    The age head starts at ``age_init``, else at the mean age of ``split.train`` when a split is
    given. :func:`train_model_b` compiles it for each phase.
    """
    if age_init is None:
        age_init = float(split.train["age"].mean()) if split is not None else DEFAULT_AGE_INIT
    return build_model_b(
        settings.transfer_backbone,
        settings.transfer_image_size,
        settings.transfer_alpha,
        weights=weights,
        augment=None if settings.transfer_cached_views else augmentation_for(settings),
        dropout=settings.transfer_dropout,
        age_init=float(age_init),
        profile=settings.profile,
        verbose=verbose,
    )


def learning_rates_for(settings: Settings) -> tuple[float, float]:
    """``(phase 1, phase 2)`` learning rates of Model B for ``settings`` (lesson 10):
    ``transfer_learning_rate`` (else ``learning_rate``) and ``transfer_finetune_learning_rate``
    (else :data:`agecourse.transfer_training.FINETUNE_LEARNING_RATE`)."""
    first = settings.transfer_learning_rate or settings.learning_rate
    second = settings.transfer_finetune_learning_rate or FINETUNE_LEARNING_RATE
    return float(first), float(second)


def phase_plan_for(settings: Settings) -> PhasePlan:
    """Model B's two phases for ``settings``, the same for both trainers: the phases' epochs, the
    learning rates (:func:`learning_rates_for`), phase 2's ``transfer_lr_schedule``, the patience of
    early stopping (``transfer_patience``, else ``patience``) and of the learning-rate reduction,
    whether each phase ends on its lowest-validation-loss epoch (``transfer_restore_best``) or its
    last, and the objective: the Huber age loss with ``transfer_gender_loss_weight`` for gender, and
    AdamW's ``transfer_weight_decay`` (``None``: :func:`~agecourse.models.compile_model`'s defaults)."""
    first, second = learning_rates_for(settings)
    return PhasePlan(
        epochs_frozen=settings.transfer_epochs_frozen,
        epochs_finetune=settings.transfer_epochs_finetune,
        learning_rate=first,
        finetune_learning_rate=second,
        lr_schedule=settings.transfer_lr_schedule,
        patience=settings.patience if settings.transfer_patience is None else settings.transfer_patience,
        lr_patience=settings.lr_patience,
        restore_best_weights=settings.transfer_restore_best,
        loss_weights=None
        if settings.transfer_gender_loss_weight is None
        else dict(default_loss_weights("huber"), gender=float(settings.transfer_gender_loss_weight)),
        weight_decay=settings.transfer_weight_decay,
    )


def oversampled_train_for(settings: Settings, split: Split) -> Split:
    """``split`` with its training table oversampled as ``settings.transfer_oversample`` asks (the
    validation and test tables untouched); ``split`` itself when it is ``None``.

    Lesson 04's :func:`~agecourse.balance.upsample` fills every age band to at least that many rows,
    here once per gender, so each age band x gender cell has at least ``transfer_oversample`` rows
    (the big cells are never shrunk); the result is shuffled with ``settings.seed``. The repeats are
    the same files: on cached views the copies' augmented views (the third and later) are drawn anew,
    their plain and mirrored views are the original's.
    """
    if settings.transfer_oversample is None:
        return split
    minimum = int(settings.transfer_oversample)
    if minimum < 1:
        raise ValueError(f"transfer_oversample must be at least 1 row per cell, got {minimum}")
    parts = [upsample(part, minimum, seed=settings.seed) for _, part in split.train.groupby("gender")]
    train = pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=settings.seed)
    return dataclasses.replace(split, train=train.reset_index(drop=True))


def train_cached_for(
    settings: Settings, model, split: Split, verbose: int | str = 2, time_budget_s: float | None = None
) -> tuple[dict, dict, dict]:
    """Both phases of an already built Model B on cached views, with the recipe in ``settings`` (the
    ``cpu`` profile): :func:`~agecourse.transfer_training.train_two_phase_cached` with
    :func:`phase_plan_for`, ``transfer_cached_views`` views, cut at ``transfer_cut``, at most
    ``time_budget_s`` seconds in all (caching included), on the training set of
    :func:`oversampled_train_for`. Returns ``(history_frozen, history_finetune, info)``."""
    if settings.transfer_cached_views < 1:
        raise ValueError(
            f"the '{settings.profile}' profile trains Model B on images (transfer_cached_views = 0); "
            "use train_images_for, or set transfer_cached_views >= 1"
        )
    return train_two_phase_cached(
        model,
        oversampled_train_for(settings, split),
        settings.transfer_image_size,
        settings.transfer_cut,
        phase_plan_for(settings),
        views=settings.transfer_cached_views,
        batch_size=settings.batch_size,
        seed=settings.seed,
        time_budget_s=time_budget_s,
        verbose=verbose,
    )


def train_images_for(
    settings: Settings, model, split: Split, verbose: int | str = 2, time_budget_s: float | None = None
) -> tuple[dict, dict, dict]:
    """Both phases of an already built Model B on the image pipeline (the ``ci`` and ``gpu``
    profiles): :func:`~agecourse.transfer_training.train_two_phase` on :func:`datasets` at
    ``transfer_image_size`` with :func:`phase_plan_for`, ``transfer_finetune_layers`` backbone layers
    unfrozen in phase 2, on the training set of :func:`oversampled_train_for`. Returns
    ``(history_frozen, history_finetune, info)``."""
    train, val, _ = datasets(settings, oversampled_train_for(settings, split), image_size=settings.transfer_image_size)
    return train_two_phase(
        model,
        train,
        val,
        phase_plan_for(settings),
        finetune_layers=settings.transfer_finetune_layers,
        time_budget_s=time_budget_s,
        verbose=verbose,
    )


def train_model_b(
    settings: Settings,
    split: Split,
    verbose: int | str = "auto",
    weights: str | os.PathLike | None = "imagenet",
    time_budget_s: float | None = None,
):
    """Build, train and return Model B with the profile's settings: ``(model, history)``.

    Seeds everything with ``settings.seed``, builds with :func:`build_model_b_for`, then trains both
    phases on cached views (:func:`train_cached_for`) when ``settings.transfer_cached_views`` is set,
    else on the image pipeline (:func:`train_images_for`). ``history`` holds both phases epoch after
    epoch (:func:`~agecourse.transfer_training.join_histories`).
    """
    set_seed(settings.seed)
    model = build_model_b_for(settings, split, weights=weights, verbose=bool(verbose))
    train = train_cached_for if settings.transfer_cached_views else train_images_for
    frozen, finetune, _ = train(settings, model, split, verbose=verbose, time_budget_s=time_budget_s)
    return model, join_histories(frozen, finetune)
