"""Model A: a multi-task CNN built with the Keras functional API, and how to compile it.

Introduced in lesson 06 (build a CNN) and lesson 07 (compile).

One shared convolutional trunk feeds two heads: ``age`` (a regression in years that cannot go
negative) and ``gender`` (a sigmoid probability of "female", UTKFace's code 1). The output layers are
named ``age`` and ``gender`` so that they match the label dictionary of
:func:`agecourse.data.make_dataset`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import tensorflow as tf
from keras import layers

# Roughly the mean age of UTKFace; starting the age head there saves the first epochs.
DEFAULT_AGE_INIT = 33.0

# Batch norm's running statistics follow the batches with this momentum. Keras's default (0.99)
# needs several hundred steps to forget its starting values, more than a short CPU run has: until
# then validation (which uses the running statistics) looks far worse than training, and
# ReduceLROnPlateau / EarlyStopping react to that artefact. 0.9 settles within a few dozen steps.
BN_MOMENTUM = 0.9


def conv_block(
    x,
    filters: int,
    batch_norm: bool = True,
    activation: str = "relu",
    l2: float = 0.0,
    dropout: float = 0.0,
    name: str = "block",
    bn_momentum: float = BN_MOMENTUM,
):
    """Two 3x3 convolutions, optional batch norm, then 2x2 max-pooling (halves the feature map).

    Batch norm goes between convolution and activation, so the convolutions need no bias;
    ``bn_momentum`` is its running-statistics momentum (see :data:`BN_MOMENTUM`).
    """
    regularizer = keras.regularizers.L2(l2) if l2 else None
    for i in (1, 2):
        x = layers.Conv2D(
            filters, 3, padding="same", use_bias=not batch_norm, kernel_regularizer=regularizer, name=f"{name}_conv{i}"
        )(x)
        if batch_norm:
            x = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn{i}")(x)
        x = layers.Activation(activation, name=f"{name}_act{i}")(x)
    x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    if dropout:
        x = layers.SpatialDropout2D(dropout, name=f"{name}_drop")(x)
    return x


def add_heads(
    features,
    dense_units: int = 128,
    dropout: float = 0.3,
    l2: float = 0.0,
    age_init: float = DEFAULT_AGE_INIT,
    activation: str = "relu",
):
    """Attach the two heads to a feature vector; returns ``[age, gender]`` output tensors.

    Each head gets its own small dense layer and dropout, so the tasks share the trunk but not
    everything. The age output uses softplus: it is never negative and, unlike ReLU, never stops
    learning when a prediction goes below zero; its bias starts at ``age_init`` years. The gender
    output is a sigmoid probability of "female". Both are forced to float32 so they stay
    numerically safe under mixed precision.
    """
    regularizer = keras.regularizers.L2(l2) if l2 else None

    def hidden(task):  # the head's own dense layer and dropout
        x = layers.Dense(dense_units, activation=activation, kernel_regularizer=regularizer, name=f"{task}_dense")(
            features
        )
        return layers.Dropout(dropout, name=f"{task}_dropout")(x)

    x = hidden("age")
    start = keras.initializers.Constant(age_init)
    age = layers.Dense(1, activation="softplus", dtype="float32", bias_initializer=start, name="age")(x)
    x = hidden("gender")
    gender = layers.Dense(1, activation="sigmoid", dtype="float32", name="gender")(x)
    return [age, gender]


def build_model_a(
    image_size: int = 64,
    filters: Sequence[int] = (32, 64, 128, 256),
    batch_norm: bool = True,
    dropout: float = 0.3,
    block_dropout: float = 0.0,
    l2: float = 1e-4,
    activation: str = "relu",
    dense_units: int = 128,
    age_init: float = DEFAULT_AGE_INIT,
    augment: keras.layers.Layer | None = None,
    name: str = "model_a",
    bn_momentum: float = BN_MOMENTUM,
) -> keras.Model:
    """Build Model A: ``len(filters)`` conv blocks, global average pooling, two heads.

    Args:
        image_size: side of the square input; images arrive as float32 in 0-255.
        filters: channels of each conv block, e.g. ``(32, 64, 128, 256)``; depth = its length.
        batch_norm, dropout, block_dropout, l2, activation, dense_units: the usual knobs.
        augment: optional augmentation layer (lesson 05) placed after the input; Keras runs it
            only in training.
        bn_momentum: momentum of batch norm's running statistics (:data:`BN_MOMENTUM`).

    Returns:
        An uncompiled ``keras.Model`` with outputs ``age`` and ``gender``.
    """
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = augment(inputs) if augment is not None else inputs
    x = layers.Rescaling(1.0 / 255, name="rescale")(x)
    for i, f in enumerate(filters, start=1):
        x = conv_block(
            x,
            f,
            batch_norm=batch_norm,
            activation=activation,
            l2=l2,
            dropout=block_dropout,
            name=f"block{i}",
            bn_momentum=bn_momentum,
        )
    features = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = add_heads(
        features, dense_units=dense_units, dropout=dropout, l2=l2, age_init=age_init, activation=activation
    )
    return keras.Model(inputs, outputs, name=name)


def feature_map_sizes(model: keras.Model) -> list[tuple[str, tuple]]:
    """``(layer name, output shape)`` for every conv and pooling layer: how space shrinks."""
    kinds = (layers.Conv2D, layers.MaxPooling2D, layers.GlobalAveragePooling2D)
    return [(layer.name, tuple(layer.output.shape)) for layer in model.layers if isinstance(layer, kinds)]


AGE_LOSSES = {"mae": "mean_absolute_error", "mse": "mean_squared_error", "huber": "huber"}


def make_age_loss(name: str = "huber", delta: float = 5.0):
    """The age loss by name. Huber with ``delta`` years: squared near the target, linear far away,
    so a few mislabelled ages do not dominate as they do under MSE."""
    if name == "huber":
        return keras.losses.Huber(delta=delta, name="huber")
    if name not in AGE_LOSSES:
        raise ValueError(f"unknown age loss {name!r}; choose from {', '.join(AGE_LOSSES)}")
    return AGE_LOSSES[name]


def default_loss_weights(age_loss: str = "huber") -> dict[str, float]:
    """The gender loss weight for each age loss (age always 1): the course's choice, per loss.

    Age losses are in years (MAE) or years² (MSE) while binary cross-entropy starts at ln 2, so
    without weights the gender head is drowned. Lesson 07 measures both scales on a batch
    (:mod:`agecourse.loss_demos`): the weight that would equalise the two *losses* at the start,
    and the smaller one that would equalise the two *gradients* reaching the shared trunk. These
    defaults lie between the two; the exact value is a hyperparameter, not a measured optimum.
    """
    return {
        "mse": {"age": 1.0, "gender": 100.0},
        "mae": {"age": 1.0, "gender": 15.0},
        "huber": {"age": 1.0, "gender": 20.0},
    }[age_loss]


def compile_model(
    model: keras.Model,
    learning_rate: float = 1e-3,
    age_loss: str = "huber",
    loss_weights: dict[str, float] | None = None,
    weight_decay: float = 1e-4,
) -> keras.Model:
    """Compile for both tasks: the chosen age loss, binary cross-entropy for gender, AdamW.

    Metrics: MAE for age, accuracy and AUC for gender. Returns the model for chaining.
    """
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay),
        loss={"age": make_age_loss(age_loss), "gender": "binary_crossentropy"},
        loss_weights=loss_weights or default_loss_weights(age_loss),
        metrics={
            "age": [keras.metrics.MeanAbsoluteError(name="mae")],
            "gender": [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
        },
    )
    return model


# --- lesson 06: other designs and how big they are ----------------------------------------------


def build_alexnet_like(
    image_size: int = 64,
    filters: Sequence[int] = (32, 64, 96, 96, 64),
    dense_units: Sequence[int] = (256,),
    head_units: int = 64,
    dropout: float = 0.5,
    batch_norm: bool = False,
    first_stride: int | None = None,
    age_init: float = DEFAULT_AGE_INIT,
    name: str = "alexnet_like",
) -> keras.Model:
    """A small AlexNet-like multi-task CNN (about 0.4-0.6 M parameters at the course's image sizes).

    The shape of AlexNet (Krizhevsky et al., 2012) scaled down: a large strided first convolution
    (7x7), a 5x5 convolution, three 3x3 convolutions, overlapping 3x3 max-pooling with stride 2 after
    the first, second and last of them, then ``Flatten`` and fully connected layers with dropout,
    and the same two heads as Model A (:func:`add_heads`).

    Unlike Model A, which ends in global average pooling, the ``Flatten`` makes the first dense
    layer grow with the final feature map. ``first_stride=None`` picks 2 below 96 px and 4 from
    96 px (AlexNet's own stride), so the final map stays 3x3 to 5x5 and the parameter count stays
    near 0.5 M for every profile. Needs exactly five ``filters``.
    """
    if len(filters) != 5:
        raise ValueError(f"build_alexnet_like needs 5 filter counts (one per conv layer), got {len(filters)}")
    stride = first_stride or (4 if image_size >= 96 else 2)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    kernels = (7, 5, 3, 3, 3)
    for i, (f, k) in enumerate(zip(filters, kernels), start=1):
        x = layers.Conv2D(
            f, k, strides=stride if i == 1 else 1, padding="same", use_bias=not batch_norm, name=f"conv{i}"
        )(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.Activation("relu", name=f"relu{i}")(x)
        if i in (1, 2, 5):
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate(dense_units, start=1):
        x = layers.Dense(units, activation="relu", name=f"fc{i}")(x)
        x = layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    outputs = add_heads(x, dense_units=head_units, dropout=dropout, age_init=age_init)
    return keras.Model(inputs, outputs, name=name)


def describe_model(model: keras.Model) -> dict:
    """Size and shape of a model in one row: parameters (total, trainable), number of conv and
    dense layers, and the feature map that reaches the heads (before pooling or flattening)."""
    convs = [layer for layer in model.layers if isinstance(layer, layers.Conv2D)]
    dense = [layer for layer in model.layers if isinstance(layer, layers.Dense)]
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    last_map = next(
        (tuple(layer.output.shape[1:]) for layer in reversed(model.layers) if len(layer.output.shape) == 4), None
    )
    return {
        "model": model.name,
        "parameters": int(model.count_params()),
        "trainable": trainable,
        "conv layers": len(convs),
        "dense layers": len(dense),
        "last feature map": "x".join(str(d) for d in last_map) if last_map else "",
    }


def compare_configurations(configs: dict, image_size: int) -> pd.DataFrame:
    """Build each configuration and tabulate :func:`describe_model` (lesson 06's size table).

    ``configs`` maps a display name to either a dict of :func:`build_model_a` keyword arguments
    or a function ``f(image_size) -> keras.Model`` for other designs. Models are built, measured
    and discarded; nothing is trained.
    """
    rows = []
    for label, config in configs.items():
        model = config(image_size) if callable(config) else build_model_a(image_size, **config)
        rows.append(dict(describe_model(model), model=label))
        del model
    return pd.DataFrame(rows).set_index("model")


def plot_output_activations(low: float = -30.0, high: float = 30.0):
    """Softplus, ReLU and linear outputs side by side: what the age head may and may not predict.

    Linear can predict negative ages; ReLU cannot, but its gradient is zero below 0, so a unit
    pushed negative stops learning ("dies"); softplus is positive everywhere and always has a
    gradient. The right panel shows the gradients (computed by TensorFlow, not by hand).
    """
    x = tf.constant(np.linspace(low, high, 601), dtype=tf.float32)
    functions = {
        "linear": keras.activations.linear,
        "relu": keras.activations.relu,
        "softplus": keras.activations.softplus,
    }
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    for label, fn in functions.items():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        grad = tape.gradient(y, x)
        if grad is None:  # linear returns its input unchanged: the gradient is 1 everywhere
            grad = tf.ones_like(x)
        left.plot(x, y, label=label)
        right.plot(x, grad, label=label)
    left.axhline(0, color="grey", lw=0.8)
    left.set(title="output (predicted age)", xlabel="input to the last unit")
    right.set(title="gradient", xlabel="input to the last unit", ylim=(-0.05, 1.1))
    left.legend()
    fig.tight_layout()
    return fig
