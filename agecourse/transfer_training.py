"""Training Model B in two phases: on images, or on cached features of its frozen bottom (a CPU speed-up).

Introduced in lesson 10. :func:`train_two_phase` is the textbook recipe: phase 1 trains the heads on a
frozen backbone, phase 2 unfreezes the top backbone layers at a lower learning rate.
:func:`train_two_phase_cached` gives the same model at a fraction of the cost on a CPU: the frozen
bottom of the network (:func:`agecourse.transfer.split_model`) is computed once for a few augmented
views of every training image, and both phases train the part above the cut on those features.
Training Model B from the profile's settings is :func:`agecourse.recipes.train_model_b`.
"""

from __future__ import annotations

import os
import time

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from agecourse.data import make_dataset
from agecourse.models import compile_model
from agecourse.training import TimeBudget, plot_history, train_model
from agecourse.transfer import set_trainable_top, split_model, top_backbone_layers

# Defaults for the two phases; the profile's epochs come from Settings.
FINETUNE_LAYERS = 60
FINETUNE_LEARNING_RATE = 3e-4


def compile_options(loss_weights: dict[str, float] | None = None, weight_decay: float | None = None) -> dict:
    """The keyword arguments for :func:`~agecourse.models.compile_model` that were given (``None``
    leaves its default), so both phases of both trainers compile with the same objective."""
    options: dict = {}
    if loss_weights is not None:
        options["loss_weights"] = dict(loss_weights)
    if weight_decay is not None:
        options["weight_decay"] = float(weight_decay)
    return options


def train_two_phase(
    model: keras.Model,
    train_ds,
    val_ds,
    epochs_frozen: int,
    epochs_finetune: int,
    learning_rate: float = 1e-3,
    finetune_learning_rate: float = FINETUNE_LEARNING_RATE,
    finetune_layers: int = FINETUNE_LAYERS,
    patience: int = 5,
    verbose: int | str = "auto",
    checkpoint: str | os.PathLike | None = None,
    lr_schedule: str = "plateau",
    lr_patience: int = 2,
    time_budget_s: float | None = None,
    restore_best_weights: bool = True,
    loss_weights: dict[str, float] | None = None,
    weight_decay: float | None = None,
) -> tuple[dict, dict]:
    """Phase 1: train the heads on a frozen backbone. Phase 2: unfreeze the top ``finetune_layers``
    backbone layers (batch norm stays frozen) and continue at ``finetune_learning_rate``.

    Both phases use :func:`agecourse.models.compile_model` and :func:`agecourse.training.train_model`
    (early stopping after ``patience`` epochs with the best weights restored; learning-rate reduction
    on plateaus after ``lr_patience`` epochs). With ``lr_schedule="cosine"`` phase 2's rate decays
    over ``epochs_finetune`` epochs instead (:func:`agecourse.training.cosine_schedule`), as in
    :func:`train_two_phase_cached`. ``time_budget_s`` caps both phases together; phase 2 is skipped
    when nothing is left. ``epochs_finetune=0`` or ``finetune_layers=0`` skips phase 2 (its history
    is then empty). ``restore_best_weights=False`` ends each phase on its last epoch instead of its
    lowest-validation-loss one. ``loss_weights`` and ``weight_decay`` go to
    :func:`~agecourse.models.compile_model` in both phases (``None``: its defaults).

    Returns:
        ``(history_frozen, history_finetune)``, plain dicts of per-epoch metrics.
    """
    start = time.monotonic()
    objective = compile_options(loss_weights, weight_decay)
    set_trainable_top(model, 0)
    compile_model(model, learning_rate=learning_rate, **objective)
    common = dict(
        patience=patience,
        lr_patience=lr_patience,
        verbose=verbose,
        checkpoint=checkpoint,
        restore_best_weights=restore_best_weights,
    )
    frozen = train_model(model, train_ds, val_ds, epochs=epochs_frozen, time_budget_s=time_budget_s, **common)
    left = None if time_budget_s is None else time_budget_s - (time.monotonic() - start)
    if not epochs_finetune or not finetune_layers or (left is not None and left <= 0):
        return frozen, {}
    set_trainable_top(model, finetune_layers)
    compile_model(model, learning_rate=finetune_learning_rate, **objective)
    finetune = train_model(
        model,
        train_ds,
        val_ds,
        epochs=epochs_finetune,
        time_budget_s=left,
        lr_schedule=lr_schedule,
        learning_rate=finetune_learning_rate,
        **common,
    )
    return frozen, finetune


def join_histories(first: dict, second: dict) -> dict[str, list[float]]:
    """One history from two phases, epoch after epoch (for :func:`agecourse.training.plot_history`)."""
    return {
        key: list(first.get(key, [])) + list(second.get(key, []))
        for key in dict.fromkeys([*first, *second])
        if key != "learning_rate"
    }


def plot_two_phase(first: dict, second: dict, title: str = "Model B learning curves"):
    """Learning curves of both phases with a dashed line where fine-tuning starts."""
    fig = plot_history(join_histories(first, second), title)
    boundary = len(first.get("loss", [])) + 0.5
    if second:
        for ax in fig.axes:
            ax.axvline(boundary, color="grey", ls="--", lw=1)
            ax.text(boundary, ax.get_ylim()[1], " fine-tuning", va="top", fontsize=8, color="grey")
    return fig


# --- faster fine-tuning on a CPU: compute the frozen layers once --------------------------------


def view_augmentation(seed: int = 42) -> keras.Sequential:
    """The random change behind the extra cached views of :func:`train_two_phase_cached`: a small
    zoom in (up to 12 %), shift (5 %) and rotation (about 11 degrees), seeded so a rerun caches the
    same views. Milder than lesson 05's set: each view is computed once and reused every epoch, so it
    must still look like a UTKFace chip."""
    return keras.Sequential(
        [
            layers.RandomZoom((-0.12, 0.0), fill_mode="reflect", seed=seed),
            layers.RandomTranslation(0.05, 0.05, fill_mode="reflect", seed=seed + 1),
            layers.RandomRotation(0.03, fill_mode="reflect", seed=seed + 2),
        ],
        name="view_augmentation",
    )


def cached_features(
    bottom: keras.Model, table, image_size: int, batch_size: int = 64, flip: bool = False, augment=None
):
    """Run the frozen ``bottom`` of :func:`split_model` once over the images of ``table``;
    returns a float32 array, one feature map per image, in table order.

    ``flip=True`` mirrors every image left-right first: a second, augmented *view* of each face
    (faces are nearly symmetric), which is the augmentation a cache can afford. ``augment`` (a Keras
    layer such as :func:`view_augmentation`) is applied too, in training mode, for further views.
    """
    ds = make_dataset(table, image_size, batch_size)
    if flip:
        ds = ds.map(lambda x, y: (tf.image.flip_left_right(x), y))
    images = ds.map(lambda x, y: x)
    if augment is not None:
        images = images.map(lambda x: augment(x, training=True))
    features = bottom.predict(images, verbose=0)
    if len(features) != len(table):
        raise ValueError(f"computed features for {len(features)} of {len(table)} images (unreadable files?)")
    return np.asarray(features, dtype=np.float32)


def feature_dataset(features, table, batch_size: int = 64, shuffle: bool = False, seed: int = 42):
    """A ``tf.data`` pipeline of ``(features, {"age", "gender"})`` batches for training a ``top``.

    ``features`` may hold several views of ``table`` stacked (``k * len(table)`` rows, view after
    view, as :func:`cached_features` gives them); the labels are repeated to match. Features stored
    in another dtype (``float16``, as :func:`train_two_phase_cached` keeps its training views) are
    cast to ``float32`` batch by batch.
    """
    views, rest = divmod(len(features), len(table))
    if rest or not views:
        raise ValueError(f"{len(features)} feature rows do not match {len(table)} images (or a multiple)")
    labels = {name: np.tile(table[name].to_numpy(np.float32), views) for name in ("age", "gender")}
    ds = tf.data.Dataset.from_tensor_slices((features, labels))
    if shuffle:
        ds = ds.shuffle(len(features), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if features.dtype != np.float32:  # stored at half precision to halve the memory: the top computes in float32
        ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y))
    return ds.prefetch(tf.data.AUTOTUNE)


def train_two_phase_cached(
    model: keras.Model,
    split,
    image_size: int,
    cut: str,
    epochs_frozen: int,
    epochs_finetune: int,
    learning_rate: float = 1e-3,
    finetune_learning_rate: float = FINETUNE_LEARNING_RATE,
    batch_size: int = 64,
    flip: bool = True,
    patience: int = 4,
    time_budget_s: float | None = None,
    verbose: int | str = 2,
    views: int | None = None,
    lr_schedule: str = "plateau",
    seed: int = 42,
    lr_patience: int = 2,
    restore_best_weights: bool = True,
    loss_weights: dict[str, float] | None = None,
    weight_decay: float | None = None,
) -> tuple[dict, dict, dict]:
    """Two-phase training of Model B with the frozen bottom computed once (a CPU speed-up).

    1. Cut the model at ``cut`` (:func:`split_model`) and compute the bottom's features for
       ``views`` versions of every training image -- the image, its mirror image, then alternately
       plain and mirrored copies passed through :func:`view_augmentation` -- and for the validation
       images, once. ``views=None`` means 2 with ``flip`` and 1 without.
    2. Phase 1: train the heads with the whole backbone frozen, on the cached features.
    3. Phase 2: unfreeze every backbone layer above the cut (batch norm stays frozen) and continue
       at ``finetune_learning_rate``; same features, as the bottom is still frozen. With
       ``lr_schedule="cosine"`` that rate decays over ``epochs_finetune`` epochs
       (:func:`agecourse.training.cosine_schedule`) instead of dropping on plateaus.

    The result is the same as :func:`train_two_phase` with ``finetune_layers`` =
    :func:`top_backbone_layers` and a fixed set of augmented views instead of fresh random ones every
    epoch, at a fraction of the cost: the expensive early layers at full resolution run once per view
    instead of once per epoch.

    The training views are stored as ``float16`` (half the memory; the top still computes in float32).
    ``seed`` seeds the extra views and the shuffling of the cached training features;
    ``restore_best_weights=False`` ends each phase on its last epoch, and ``loss_weights`` /
    ``weight_decay`` go to :func:`~agecourse.models.compile_model` (see :func:`train_two_phase`).

    ``time_budget_s`` caps the whole call (caching included): each phase gets what is left, through
    :class:`agecourse.training.TimeBudget`, and phase 2 is skipped when nothing is left. Returns
    ``(history_frozen, history_finetune, info)``; ``info`` has the seconds spent caching, the number
    of fine-tuned layers and why the budget stopped training (empty when it did not).
    """
    start = time.monotonic()
    objective = compile_options(loss_weights, weight_decay)

    def budget() -> list[TimeBudget]:
        if time_budget_s is None:
            return []
        return [TimeBudget(max(time_budget_s - (time.monotonic() - start), 1e-3))]

    bottom, top = split_model(model, cut)
    n_top = top_backbone_layers(model, cut)
    set_trainable_top(model, 0)
    if views is None:
        views = 2 if flip else 1
    if views < 1:
        raise ValueError(f"views must be at least 1, got {views}")
    augment = view_augmentation(seed) if views > 2 else None
    # The training views are kept at half precision: half the memory, which is what lets several views
    # at 224 px fit a Binder session, and float16 keeps about three significant digits of these
    # activations. Filled view by view, so no second full-size copy is ever made.
    n = len(split.train)
    train_features = None
    for view in range(views):
        part = cached_features(
            bottom, split.train, image_size, batch_size, flip=view % 2 == 1, augment=augment if view >= 2 else None
        )
        if train_features is None:
            train_features = np.empty((views * n, *part.shape[1:]), dtype=np.float16)
        train_features[view * n : (view + 1) * n] = part
    val_features = cached_features(bottom, split.val, image_size, batch_size)
    cache_seconds = time.monotonic() - start
    if verbose:
        print(
            f"Cached {cut} features {train_features.shape[1:]} for {len(train_features)} training views "
            f"({train_features.nbytes / 1e9:.2f} GB as float16) "
            f"and {len(val_features)} validation images in {cache_seconds:.0f} s"
        )
    train = feature_dataset(train_features, split.train, batch_size, shuffle=True, seed=seed)
    val = feature_dataset(val_features, split.val, batch_size)
    stopped = []
    compile_model(top, learning_rate=learning_rate, **objective)
    first = budget()
    frozen = train_model(
        top,
        train,
        val,
        epochs_frozen,
        patience=patience,
        lr_patience=lr_patience,
        verbose=verbose,
        extra_callbacks=first,
        restore_best_weights=restore_best_weights,
    )
    stopped += [f"phase 1: {b.stopped_reason}" for b in first if b.stopped_reason]
    finetune: dict = {}
    if epochs_finetune and n_top and not stopped:
        set_trainable_top(model, n_top)
        compile_model(top, learning_rate=finetune_learning_rate, **objective)
        second = budget()
        finetune = train_model(
            top,
            train,
            val,
            epochs_finetune,
            verbose=verbose,
            extra_callbacks=second,
            lr_schedule=lr_schedule,
            learning_rate=finetune_learning_rate,
            patience=patience,
            lr_patience=lr_patience,
            restore_best_weights=restore_best_weights,
        )
        stopped += [f"phase 2: {b.stopped_reason}" for b in second if b.stopped_reason]
    info = {
        "cut": cut,
        "finetuned_backbone_layers": n_top if finetune else 0,
        "train_views": len(train_features) // len(split.train),
        "train_feature_bytes": int(train_features.nbytes),
        "cache_seconds": round(cache_seconds, 1),
        "stopped_by_budget": "; ".join(stopped),
    }
    return frozen, finetune, info
