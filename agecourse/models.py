"""Model A: a multi-task CNN built with the Keras functional API, and how to compile it.

Introduced in lesson 06 (build a CNN) and lesson 07 (compile).

One shared convolutional trunk feeds two heads: ``age`` (a regression in years that cannot go
negative) and ``gender`` (a sigmoid probability of "female", UTKFace's code 1). The output layers are
named ``age`` and ``gender`` so that they match the label dictionary of
:func:`agecourse.data.make_dataset`.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

# Roughly the mean age of UTKFace; starting the age head there saves the first epochs.
DEFAULT_AGE_INIT = 33.0


def conv_block(x, filters: int, batch_norm: bool = True, activation: str = "relu",
               l2: float = 0.0, dropout: float = 0.0, name: str = "block"):
    """Two 3x3 convolutions, optional batch norm, then 2x2 max-pooling (halves the feature map).

    Batch norm goes between convolution and activation, so the convolutions need no bias.
    """
    regularizer = keras.regularizers.L2(l2) if l2 else None
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm,
                          kernel_regularizer=regularizer, name=f"{name}_conv{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.Activation(activation, name=f"{name}_act{i}")(x)
    x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    if dropout:
        x = layers.SpatialDropout2D(dropout, name=f"{name}_drop")(x)
    return x


def add_heads(features, dense_units: int = 128, dropout: float = 0.3, l2: float = 0.0,
              age_init: float = DEFAULT_AGE_INIT, activation: str = "relu"):
    """Attach the two heads to a feature vector; returns ``[age, gender]`` output tensors.

    Each head gets its own small dense layer, so the tasks share the trunk but not everything.
    The age output uses softplus: it is never negative and, unlike ReLU, never stops learning
    when a prediction goes below zero. The gender output is forced to float32 so it stays
    numerically safe under mixed precision.
    """
    regularizer = keras.regularizers.L2(l2) if l2 else None
    outputs = []
    for task in ("age", "gender"):
        x = layers.Dense(dense_units, activation=activation, kernel_regularizer=regularizer,
                         name=f"{task}_dense")(features)
        x = layers.Dropout(dropout, name=f"{task}_dropout")(x)
        if task == "age":
            out = layers.Dense(1, activation="softplus", dtype="float32", name="age",
                               bias_initializer=keras.initializers.Constant(age_init))(x)
        else:
            out = layers.Dense(1, activation="sigmoid", dtype="float32", name="gender")(x)
        outputs.append(out)
    return outputs


def build_model_a(image_size: int = 64, filters: Sequence[int] = (32, 64, 128, 256),
                  batch_norm: bool = True, dropout: float = 0.3, block_dropout: float = 0.0,
                  l2: float = 1e-4, activation: str = "relu", dense_units: int = 128,
                  age_init: float = DEFAULT_AGE_INIT, augment: keras.layers.Layer | None = None,
                  name: str = "model_a") -> keras.Model:
    """Build Model A: ``len(filters)`` conv blocks, global average pooling, two heads.

    Args:
        image_size: side of the square input; images arrive as float32 in 0-255.
        filters: channels of each conv block, e.g. ``(32, 64, 128, 256)``; depth = its length.
        batch_norm, dropout, block_dropout, l2, activation, dense_units: the usual knobs.
        augment: optional augmentation layer (lesson 05) placed after the input; Keras runs it
            only in training.

    Returns:
        An uncompiled ``keras.Model`` with outputs ``age`` and ``gender``.
    """
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = augment(inputs) if augment is not None else inputs
    x = layers.Rescaling(1.0 / 255, name="rescale")(x)
    for i, f in enumerate(filters, start=1):
        x = conv_block(x, f, batch_norm=batch_norm, activation=activation, l2=l2,
                       dropout=block_dropout, name=f"block{i}")
    features = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = add_heads(features, dense_units=dense_units, dropout=dropout, l2=l2,
                        age_init=age_init, activation=activation)
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
    """Loss weights that put both tasks on a similar scale.

    Age losses are in years (MAE ~ 5-15, MSE ~ 50-200) while binary cross-entropy is ~0.3-0.7, so
    without weights the gender head is ignored. Projects on this data used 25:1 to 100:1 with MSE;
    MAE and Huber need less.
    """
    return {"mse": {"age": 1.0, "gender": 100.0}, "mae": {"age": 1.0, "gender": 15.0},
            "huber": {"age": 1.0, "gender": 20.0}}[age_loss]


def compile_model(model: keras.Model, learning_rate: float = 1e-3, age_loss: str = "huber",
                  loss_weights: dict[str, float] | None = None, weight_decay: float = 1e-4) -> keras.Model:
    """Compile for both tasks: the chosen age loss, binary cross-entropy for gender, AdamW.

    Metrics: MAE for age, accuracy and AUC for gender. Returns the model for chaining.
    """
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay),
        loss={"age": make_age_loss(age_loss), "gender": "binary_crossentropy"},
        loss_weights=loss_weights or default_loss_weights(age_loss),
        metrics={"age": [keras.metrics.MeanAbsoluteError(name="mae")],
                 "gender": [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")]},
    )
    return model
