"""Training Model B in two phases: on images, or on cached features of its frozen bottom (a CPU speed-up).

Introduced in lesson 10. Both trainers run the same two phases (:func:`run_phases`, planned by one
:class:`PhasePlan`): phase 1 trains the heads on a frozen backbone, phase 2 unfreezes the top backbone
layers at a lower learning rate. :func:`train_two_phase` is the textbook recipe, on images;
:func:`train_two_phase_cached` is its CPU variant: the frozen bottom of the network
(:func:`agecourse.transfer.split_model`) is computed once for a few augmented views of every training
image, and the same phases train the part above the cut on those features.
Training Model B from the profile's settings is :func:`agecourse.recipes.train_model_b`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from agecourse.config import FINETUNE_LAYERS
from agecourse.data import make_dataset
from agecourse.models import compile_model
from agecourse.training import TimeBudget, plot_history, train_model
from agecourse.transfer import set_trainable_top, split_model, top_backbone_layers

# Default of phase 2's learning rate; the profile's values come from Settings (FINETUNE_LAYERS, the
# default number of backbone layers phase 2 unfreezes, is Settings.transfer_finetune_layers' default).
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


@dataclass(frozen=True)
class PhasePlan:
    """The two phases of Model B's training, the same for both trainers (on images and on cached
    features): epochs of each phase, learning rates, early stopping's ``patience``, the
    learning-rate reduction's ``lr_patience`` (phase 1 always reduces on plateaus; phase 2 follows
    ``lr_schedule``: ``"plateau"`` or ``"cosine"`` over ``epochs_finetune``), whether each phase ends
    on its lowest-validation-loss epoch (``restore_best_weights``) or its last, and the objective
    (``loss_weights`` and ``weight_decay`` for :func:`~agecourse.models.compile_model`; ``None``: its
    defaults). :func:`agecourse.recipes.phase_plan_for` fills it from the settings."""

    epochs_frozen: int
    epochs_finetune: int
    learning_rate: float = 1e-3
    finetune_learning_rate: float = FINETUNE_LEARNING_RATE
    patience: int = 5
    lr_patience: int = 2
    lr_schedule: str = "plateau"
    restore_best_weights: bool = True
    loss_weights: dict[str, float] | None = None
    weight_decay: float | None = None


def run_phases(
    trained: keras.Model,
    model: keras.Model,
    train,
    val,
    plan: PhasePlan,
    finetune_layers: int,
    deadline: float | None = None,
    verbose: int | str = "auto",
    checkpoint: str | os.PathLike | None = None,
) -> tuple[dict, dict, list[str]]:
    """The one phase loop of both trainers. Phase 1: freeze ``model``'s backbone, compile
    ``trained`` (the whole model, or the top above a cut, which shares its layers) at
    ``plan.learning_rate`` and fit it. Phase 2: unfreeze the top ``finetune_layers`` backbone layers
    (batch norm stays frozen), recompile at ``plan.finetune_learning_rate`` and fit again.

    ``deadline`` (a :func:`time.monotonic` time) bounds both phases through
    :class:`agecourse.training.TimeBudget`; phase 2 is skipped when the budget stopped phase 1 or
    nothing is left, and when ``plan.epochs_finetune`` or ``finetune_layers`` is 0 (its history is
    then empty). Returns ``(history_frozen, history_finetune, stopped)``; ``stopped`` says which
    phase the budget stopped, and why."""
    objective = compile_options(plan.loss_weights, plan.weight_decay)
    common = dict(
        patience=plan.patience,
        lr_patience=plan.lr_patience,
        verbose=verbose,
        checkpoint=checkpoint,
        restore_best_weights=plan.restore_best_weights,
    )

    def budget() -> list[TimeBudget]:
        return [] if deadline is None else [TimeBudget(max(deadline - time.monotonic(), 1e-3))]

    stopped: list[str] = []
    set_trainable_top(model, 0)
    compile_model(trained, learning_rate=plan.learning_rate, **objective)
    first = budget()
    frozen = train_model(trained, train, val, plan.epochs_frozen, extra_callbacks=first, **common)
    stopped += [f"phase 1: {b.stopped_reason}" for b in first if b.stopped_reason]
    out_of_time = bool(stopped) or (deadline is not None and time.monotonic() >= deadline)
    if not plan.epochs_finetune or not finetune_layers or out_of_time:
        return frozen, {}, stopped
    set_trainable_top(model, finetune_layers)
    compile_model(trained, learning_rate=plan.finetune_learning_rate, **objective)
    second = budget()
    finetune = train_model(
        trained,
        train,
        val,
        plan.epochs_finetune,
        extra_callbacks=second,
        lr_schedule=plan.lr_schedule,
        learning_rate=plan.finetune_learning_rate,
        **common,
    )
    stopped += [f"phase 2: {b.stopped_reason}" for b in second if b.stopped_reason]
    return frozen, finetune, stopped


def train_two_phase(
    model: keras.Model,
    train_ds,
    val_ds,
    plan: PhasePlan,
    finetune_layers: int = FINETUNE_LAYERS,
    time_budget_s: float | None = None,
    verbose: int | str = "auto",
    checkpoint: str | os.PathLike | None = None,
) -> tuple[dict, dict, dict]:
    """The textbook recipe on the image pipelines: :func:`run_phases` on the whole model, phase 2
    unfreezing the top ``finetune_layers`` backbone layers. ``time_budget_s`` caps both phases
    together; ``checkpoint`` keeps the best model of each phase on disk.

    Returns ``(history_frozen, history_finetune, info)``: plain dicts of per-epoch metrics, and
    ``info`` with the number of fine-tuned layers and why the budget stopped training (empty when it
    did not), as :func:`train_two_phase_cached` returns them.
    """
    deadline = None if time_budget_s is None else time.monotonic() + time_budget_s
    frozen, finetune, stopped = run_phases(
        model, model, train_ds, val_ds, plan, finetune_layers, deadline, verbose, checkpoint
    )
    info = {"finetuned_backbone_layers": finetune_layers if finetune else 0, "stopped_by_budget": "; ".join(stopped)}
    return frozen, finetune, info


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
    bottom: keras.Model,
    table,
    image_size: int,
    batch_size: int = 64,
    flip: bool = False,
    augment=None,
    dtype: str = "float32",
):
    """Run the frozen ``bottom`` of :func:`split_model` once over the images of ``table``;
    returns an array of ``dtype``, one feature map per image, in table order.

    ``flip=True`` mirrors every image left-right first: a second, augmented *view* of each face
    (faces are nearly symmetric), which is the augmentation a cache can afford. ``augment`` (a Keras
    layer such as :func:`view_augmentation`) is applied too, in training mode, for further views.
    Batch by batch into one array: ``bottom.predict`` would keep every batch's output in a list and
    then copy them all into a second array, twice the memory of the result.
    """
    ds = make_dataset(table, image_size, batch_size)
    if flip:
        ds = ds.map(lambda x, y: (tf.image.flip_left_right(x), y))
    images = ds.map(lambda x, y: x)
    if augment is not None:
        images = images.map(lambda x: augment(x, training=True))
    features = np.empty((len(table), *bottom.output.shape[1:]), dtype=dtype)
    done = 0
    for batch in images:
        part = np.asarray(bottom.predict_on_batch(batch))
        if done + len(part) > len(table):
            raise ValueError(f"the pipeline gave more images than the {len(table)} of the table")
        features[done : done + len(part)] = part
        done += len(part)
    if done != len(table):
        raise ValueError(f"computed features for {done} of {len(table)} images (unreadable files?)")
    return features


def feature_dataset(features, table, batch_size: int = 64, shuffle: bool = False, seed: int = 42):
    """A ``tf.data`` pipeline of ``(features, {"age", "gender"})`` batches for training a ``top``.

    ``features`` may hold several views of ``table`` stacked (``k * len(table)`` rows, view after
    view, as :func:`cached_features` gives them); the labels are repeated to match. Features stored
    in another dtype (``float16``, as :func:`train_two_phase_cached` keeps its training views) are
    cast to ``float32`` batch by batch.

    The pipeline shuffles and batches row *numbers* and reads each batch's rows from ``features``
    where it lies, so the features are never copied (``from_tensor_slices`` would copy them into a
    tensor, and a shuffle buffer of whole feature maps would copy them again: three times the memory
    of the views, the difference between fitting a Binder session and not). The order is the one a
    shuffle of the rows themselves with the same ``seed`` gives.
    """
    views, rest = divmod(len(features), len(table))
    if rest or not views:
        raise ValueError(f"{len(features)} feature rows do not match {len(table)} images (or a multiple)")
    ages, genders = (np.tile(table[name].to_numpy(np.float32), views) for name in ("age", "gender"))

    def rows(index: np.ndarray):
        return np.asarray(features[index], dtype=np.float32), ages[index], genders[index]

    def read(index):
        x, age, gender = tf.numpy_function(rows, [index], (tf.float32, tf.float32, tf.float32), stateful=False)
        x.set_shape((None, *features.shape[1:]))
        age.set_shape((None,))
        gender.set_shape((None,))
        return x, {"age": age, "gender": gender}

    order = tf.data.Dataset.range(len(features))
    if shuffle:
        order = order.shuffle(len(features), seed=seed, reshuffle_each_iteration=True)
    return order.batch(batch_size).map(read).prefetch(tf.data.AUTOTUNE)


# The batch size the frozen bottom is run in while caching. The features do not depend on it (batch
# norm is frozen), the memory does: at 224 px the batches read ahead by the pipeline and the bottom's
# activations for batches of 64 cost a Binder session several hundred MB more than batches of 16.
# (The random draws of the augmented views depend on it, as on any batch size.)
CACHE_BATCH_SIZE = 16

# With a time budget, caching may take this share of it (at least one view is always cached).
CACHE_SHARE = 0.4


def cache_views(
    bottom: keras.Model,
    table,
    image_size: int,
    views: int,
    batch_size: int = 64,
    seed: int = 42,
    until: float | None = None,
):
    """``views`` feature maps of every image of ``table`` from the frozen ``bottom``, stacked view
    after view (:func:`feature_dataset` reads them so) and stored as ``float16``: the image, its
    mirror image, then alternately plain and mirrored copies through :func:`view_augmentation`.

    ``until`` (a :func:`time.monotonic` time) stops after the view that would be followed by one
    ending later, judged by how long the views so far took: a short run caches fewer views, never
    none. Returns the features of the views computed."""
    if views < 1:
        raise ValueError(f"views must be at least 1, got {views}")
    augment = view_augmentation(seed) if views > 2 else None
    # Half precision: half the memory, which is what lets several views at 224 px fit a Binder
    # session; float16 keeps about three significant digits of these activations. Filled view by
    # view, so no second full-size copy is ever made (pages of views never computed are never touched).
    n = len(table)
    features = None
    start = time.monotonic()
    for view in range(views):
        part = cached_features(
            bottom,
            table,
            image_size,
            batch_size,
            flip=view % 2 == 1,
            augment=augment if view >= 2 else None,
            dtype="float16",
        )
        if features is None:
            features = np.empty((views * n, *part.shape[1:]), dtype=np.float16)
        features[view * n : (view + 1) * n] = part
        per_view = (time.monotonic() - start) / (view + 1)
        if until is not None and time.monotonic() + per_view > until:
            return features[: (view + 1) * n]
    return features


def train_two_phase_cached(
    model: keras.Model,
    split,
    image_size: int,
    cut: str,
    plan: PhasePlan,
    views: int = 2,
    batch_size: int = 64,
    seed: int = 42,
    time_budget_s: float | None = None,
    verbose: int | str = 2,
) -> tuple[dict, dict, dict]:
    """:func:`train_two_phase` with the frozen bottom computed once (a CPU speed-up): the same
    :func:`run_phases` with the same ``plan``, on cached features instead of images.

    1. Cut the model at ``cut`` (:func:`split_model`) and compute the bottom's features for
       ``views`` versions of every training image (:func:`cache_views`) and for the validation
       images, once.
    2. :func:`run_phases` on the top: phase 1 with the whole backbone frozen, phase 2 with every
       backbone layer above the cut unfrozen (:func:`top_backbone_layers`; batch norm stays frozen).

    With one view (no augmentation) this computes what :func:`train_two_phase` does with
    ``finetune_layers`` = the layers above the cut, on the same batches (up to the float16 storage
    of the training features); with more, a fixed set of augmented views stands in for fresh random
    ones every epoch, at a fraction of the cost: the expensive early layers at full resolution run
    once per view instead of once per epoch. ``seed`` seeds the extra views and the shuffling of the
    cached training features.

    ``time_budget_s`` caps the whole call (caching included): caching stops adding views once they
    would take more than :data:`CACHE_SHARE` of it (``info["train_views"]`` says how many were
    cached), and the phases get what is left. Returns ``(history_frozen,
    history_finetune, info)``; ``info`` has the cut, the seconds spent caching, the number of
    training views and their bytes, the number of fine-tuned layers and why the budget stopped
    training (empty when it did not).
    """
    start = time.monotonic()
    deadline = None if time_budget_s is None else start + time_budget_s
    bottom, top = split_model(model, cut)
    set_trainable_top(model, 0)
    until = None if deadline is None else start + CACHE_SHARE * time_budget_s
    train_features = cache_views(bottom, split.train, image_size, views, CACHE_BATCH_SIZE, seed, until)
    val_features = cached_features(bottom, split.val, image_size, CACHE_BATCH_SIZE)
    cache_seconds = time.monotonic() - start
    if verbose:
        print(
            f"Cached {cut} features {train_features.shape[1:]} for {len(train_features)} training views "
            f"({train_features.nbytes / 1e9:.2f} GB as float16) "
            f"and {len(val_features)} validation images in {cache_seconds:.0f} s"
        )
    train = feature_dataset(train_features, split.train, batch_size, shuffle=True, seed=seed)
    val = feature_dataset(val_features, split.val, batch_size)
    n_top = top_backbone_layers(model, cut)
    frozen, finetune, stopped = run_phases(top, model, train, val, plan, n_top, deadline, verbose)
    info = {
        "cut": cut,
        "finetuned_backbone_layers": n_top if finetune else 0,
        "train_views": len(train_features) // len(split.train),
        "train_feature_bytes": int(train_features.nbytes),
        "cache_seconds": round(cache_seconds, 1),
        "stopped_by_budget": "; ".join(stopped),
    }
    return frozen, finetune, info
