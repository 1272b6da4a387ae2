"""Lesson 07's demonstrations: how the age losses behave, how large each head's loss and gradient are.

These functions explain the choices that :func:`agecourse.models.compile_model` makes (Huber for
age, loss weights, AdamW); training itself never calls them. They moved here from ``models.py`` and
``training.py`` so that those modules hold only what builds and trains the course's models.
"""

from __future__ import annotations

import dataclasses
import time

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import tensorflow as tf

from agecourse.config import Settings
from agecourse.data import Split, make_dataset
from agecourse.models import default_loss_weights, make_age_loss
from agecourse.recipes import build_model_a_for
from agecourse.training import set_seed


def age_loss_curves(errors, delta: float = 5.0) -> pd.DataFrame:
    """Per-example MSE, MAE and Huber(``delta``) for each error (prediction minus truth, years),
    computed with Keras's own loss functions. One row per error."""
    errors = np.asarray(errors, dtype="float32").reshape(-1, 1)
    zeros = np.zeros_like(errors)
    values = {
        "MSE": keras.losses.mean_squared_error(zeros, errors),
        "MAE": keras.losses.mean_absolute_error(zeros, errors),
        f"Huber (delta={delta:g})": keras.losses.huber(zeros, errors, delta=delta),
    }
    return pd.DataFrame({"error": errors[:, 0], **{k: keras.ops.convert_to_numpy(v) for k, v in values.items()}})


def plot_age_losses(max_error: float = 20.0, delta: float = 5.0):
    """The three age losses against the error, full view and close to zero."""
    curves = age_loss_curves(np.linspace(-max_error, max_error, 401), delta=delta)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, limit in zip(axes, (max_error, 2 * delta)):
        view = curves[curves["error"].abs() <= limit]
        for column in curves.columns[1:]:
            ax.plot(view["error"], view[column], label=column)
        ax.set(
            xlabel="error (predicted - true, years)",
            ylabel="loss",
            title="whole range" if limit == max_error else f"within +/-{limit:g} years",
        )
    axes[0].legend()
    fig.tight_layout()
    return fig


def outlier_influence(errors, delta: float = 5.0) -> pd.DataFrame:
    """How much the single largest error contributes to each age loss, and to its gradient.

    ``errors`` are the errors of one batch (e.g. a few good predictions and one mislabelled face).
    For MSE, MAE and Huber the table gives the batch loss, the share of that loss coming from the
    largest error, and the share of the gradient (what actually moves the weights) that it causes.
    Gradients come from ``tf.GradientTape`` on Keras's loss functions.
    """
    errors = np.asarray(errors, dtype="float32").reshape(-1, 1)
    worst = int(np.argmax(np.abs(errors)))
    losses = {
        "MSE": keras.losses.mean_squared_error,
        "MAE": keras.losses.mean_absolute_error,
        f"Huber (delta={delta:g})": lambda t, p: keras.losses.huber(t, p, delta=delta),
    }
    rows = []
    for label, fn in losses.items():
        pred = tf.Variable(errors)
        with tf.GradientTape() as tape:
            per_example = fn(tf.zeros_like(pred), pred)
            total = tf.reduce_mean(per_example)
        grad = np.abs(tape.gradient(total, pred).numpy().reshape(-1))
        per_example = per_example.numpy().reshape(-1)
        rows.append(
            {
                "loss": label,
                "batch loss": float(total.numpy()),
                "share of loss from the outlier": float(per_example[worst] / per_example.sum()),
                "share of gradient from the outlier": float(grad[worst] / grad.sum()),
            }
        )
    return pd.DataFrame(rows).set_index("loss")


def initial_loss_magnitudes(model: keras.Model, images, labels: dict, delta: float = 5.0) -> pd.DataFrame:
    """Each candidate loss on one batch, as the (untrained) ``model`` predicts it.

    ``labels`` is the batch's ``{"age": ..., "gender": ...}`` dict from :func:`agecourse.data.make_dataset`.
    Returns one row per loss (MSE, MAE, Huber for age; binary cross-entropy for gender) with its
    value, its unit and how many times larger it is than the gender loss: the ratio that loss
    weights have to undo so that one task does not drown the other.
    """
    age_pred, gender_prob = model.predict(images, verbose=0)
    age_true = np.asarray(labels["age"], dtype="float32").reshape(-1, 1)
    gender_true = np.asarray(labels["gender"], dtype="float32").reshape(-1, 1)

    def mean(value) -> float:
        return float(np.mean(keras.ops.convert_to_numpy(value)))

    bce = mean(keras.losses.binary_crossentropy(gender_true, gender_prob))
    rows = [
        ("age", "MSE", mean(keras.losses.mean_squared_error(age_true, age_pred)), "years²"),
        ("age", "MAE", mean(keras.losses.mean_absolute_error(age_true, age_pred)), "years"),
        (
            "age",
            f"Huber (delta={delta:g})",
            mean(keras.losses.huber(age_true, age_pred, delta=delta)),
            "years (beyond delta)",
        ),
        ("gender", "binary cross-entropy", bce, "nats"),
    ]
    table = pd.DataFrame(rows, columns=["head", "loss", "value", "unit"])
    table["times the gender loss"] = table["value"] / bce
    return table.set_index(["head", "loss"])


def head_gradient_scales(
    model: keras.Model, images, labels: dict, age_loss: str = "huber", features: str = "gap"
) -> pd.DataFrame:
    """How hard each head pulls on the shared trunk: the size of the gradient that each head's loss
    sends into the ``features`` layer (Model A's pooled feature vector), on one batch.

    The weighted sum ``w_age * L_age + w_gender * L_gender`` is what training minimises, and the
    trunk learns from the sum of the two gradients. A loss weight therefore scales a head's
    *gradient*; weights that make the two gradients about equally large let both heads shape the
    trunk. Returns one row per head: its loss, the gradient's L2 norm (per image, averaged over the
    batch) and the gender weight that would make the gender gradient as large as the age gradient.
    Gradients come from ``tf.GradientTape`` on Keras's own losses.
    """
    split = keras.Model(model.inputs, [model.get_layer(features).output, *model.outputs])
    losses = {"age": keras.losses.get(make_age_loss(age_loss)), "gender": keras.losses.BinaryCrossentropy()}
    targets = {name: tf.reshape(tf.cast(labels[name], tf.float32), (-1, 1)) for name in losses}
    rows = []
    for index, (head, loss_fn) in enumerate(losses.items(), start=1):
        with tf.GradientTape() as tape:
            outputs = split(images, training=False)
            tape.watch(outputs[0])
            loss = tf.reduce_mean(loss_fn(targets[head], outputs[index]))
        grad = tape.gradient(loss, outputs[0]) * len(images)  # per-image gradient of the batch mean
        norm = float(np.mean(np.linalg.norm(np.asarray(grad).reshape(len(images), -1), axis=1)))
        rows.append({"head": head, "loss": float(loss), "gradient norm": norm})
    table = pd.DataFrame(rows).set_index("head")
    table["balancing gender weight"] = table.loc["age", "gradient norm"] / table.loc["gender", "gradient norm"]
    table.loc["age", "balancing gender weight"] = np.nan
    return table


def compare_age_losses(
    settings: Settings,
    split: Split,
    losses=("mse", "mae", "huber"),
    epochs: int = 1,
    max_train: int | None = 2000,
    verbose: int | str = 0,
) -> pd.DataFrame:
    """Lesson 07's quick experiment: a fresh Model A per age loss, same seed, data and budget.

    Each model is built and compiled by :func:`agecourse.recipes.build_model_a_for` from ``settings``
    (the course recipe: filters, head, dropout, L2, augmentation, AdamW) with that age loss and its
    :func:`~agecourse.models.default_loss_weights`, trained for ``epochs`` on at most ``max_train``
    training images (a seeded sample) without callbacks, and scored on the whole validation split.
    With one or two epochs the ranking is a hint, not a result: rerun with more epochs before drawing
    conclusions.

    Returns one row per loss: the loss weights, validation age MAE, validation gender accuracy and
    the seconds it took.
    """
    train_images = split.train
    if max_train is not None and len(train_images) > max_train:
        train_images = train_images.sample(max_train, random_state=settings.seed).reset_index(drop=True)
    train = make_dataset(train_images, settings.image_size, settings.batch_size, shuffle=True, seed=settings.seed)
    val = make_dataset(split.val, settings.image_size, settings.batch_size)
    rows = []
    for loss in losses:
        set_seed(settings.seed)
        recipe = dataclasses.replace(settings, age_loss=loss, gender_loss_weight=None)
        model = build_model_a_for(recipe, age_init=float(train_images["age"].mean()))
        weights = default_loss_weights(loss)  # what build_model_a_for compiles with when gender_loss_weight is None
        start = time.perf_counter()
        model.fit(train, epochs=epochs, verbose=verbose, shuffle=False)  # the dataset shuffles itself
        scores = model.evaluate(val, verbose=0, return_dict=True)
        rows.append(
            {
                "age loss": loss,
                "loss weights (age:gender)": f"{weights['age']:g}:{weights['gender']:g}",
                "epochs": epochs,
                "train images": len(train_images),
                "val age MAE": scores["age_mae"],
                "val gender accuracy": scores["gender_accuracy"],
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
    return pd.DataFrame(rows).set_index("age loss")
