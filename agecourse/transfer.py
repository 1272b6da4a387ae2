"""Model B: an ImageNet backbone (:mod:`agecourse.backbones`) under the course's two heads; built flat,
frozen and unfrozen layer by layer, and cut in two for cached training.

Introduced in lesson 10 (transfer learning); lesson 11 (Grad-CAM) explains its predictions.

A backbone trained on ImageNet already knows edges, textures and parts of objects. Model B puts the
course's two heads (:func:`agecourse.models.add_heads`) on top of such a backbone and trains in two
phases (:mod:`agecourse.transfer_training`):

1. **frozen backbone**: only the new heads learn, with a normal learning rate, so the random heads
   cannot send large gradients into the pretrained layers;
2. **fine-tuning**: the top ``n`` backbone layers are unfrozen and trained with a learning rate
   about ten times lower. Batch-normalisation layers stay frozen (see :func:`set_trainable_top`).

The model is built **flat**: the backbone is created with ``input_tensor=`` the preprocessed image,
so every backbone layer is a layer of Model B itself (not one nested sub-model). That keeps
``model.layers`` readable, lets lesson 11 reach the last convolution for Grad-CAM, and saves to one
``.keras`` file. Building Model B from the profile's settings is
:func:`agecourse.recipes.build_model_b_for`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import keras
from keras import layers

from agecourse.backbones import DEFAULT_BACKBONE, BackbonePreprocess, get_backbone, keras_cache_dir, resolve_weights
from agecourse.models import DEFAULT_AGE_INIT, add_heads

# Name of the pooling layer between the backbone and the heads; marks where the backbone ends.
FEATURES_POOL = "features_pool"


def build_model_b(
    backbone: str = DEFAULT_BACKBONE,
    image_size: int = 96,
    alpha: float = 0.35,
    weights: str | os.PathLike | None = "imagenet",
    augment: keras.layers.Layer | None = None,
    dense_units: int = 128,
    dropout: float = 0.3,
    age_init: float = DEFAULT_AGE_INIT,
    profile: str | None = None,
    weights_dir: str | os.PathLike | None = None,
    verbose: bool = True,
    name: str | None = None,
) -> keras.Model:
    """Build Model B: input -> [augment] -> backbone preprocessing -> backbone -> pooling -> heads.

    Args:
        backbone: a key of :data:`BACKBONES`.
        image_size: side of the square input (float32 images in 0-255).
        alpha: width multiplier, MobileNetV2 only (0.35, 0.5, 0.75, 1.0, ...).
        weights: ``"imagenet"`` (a local copy via :func:`resolve_weights`, else a download),
            ``None`` (random initialisation) or the path of a weight file.
        augment: optional augmentation layer (lesson 05), active only in training.
        dense_units, dropout, age_init: passed to :func:`agecourse.models.add_heads`.
        profile: decides the fallback when ``weights="imagenet"`` and no local file exists.

    Returns:
        An uncompiled, fully trainable ``keras.Model`` with outputs ``age`` and ``gender`` whose
        layers include every backbone layer (flat, no nested model).
    """
    spec = get_backbone(backbone)
    if image_size < spec.min_size:
        raise ValueError(f"{spec.name} needs images of at least {spec.min_size} px, got {image_size}")
    if weights == "imagenet":
        weights = resolve_weights(spec.name, alpha, image_size, weights_dir, profile, verbose)
    elif weights is not None:
        weights = str(Path(weights).expanduser())
        if not Path(weights).is_file():
            raise FileNotFoundError(f"{weights}: weight file not found")
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = augment(inputs) if augment is not None else inputs
    x = BackbonePreprocess(spec.mode, name="preprocess")(x)
    kwargs = {"alpha": alpha} if spec.has_alpha else {}
    try:
        base = spec.constructor(include_top=False, weights=weights, input_tensor=x, **kwargs)
    except Exception as err:
        if weights != "imagenet":
            raise
        raise RuntimeError(
            f"Could not get the ImageNet weights of {spec.name} ({err}). Without internet, copy "
            f"{spec.weight_file_names(alpha, image_size)[0]} into {keras_cache_dir()} or into a folder named by "
            "AGECOURSE_WEIGHTS, or pass weights=None to start from random weights."
        ) from err
    features = layers.GlobalAveragePooling2D(name=FEATURES_POOL)(base.output)
    outputs = add_heads(features, dense_units=dense_units, dropout=dropout, age_init=age_init)
    return keras.Model(inputs, outputs, name=name or f"model_b_{spec.name.lower()}")


def backbone_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The backbone's layers inside a flat Model B: those after :class:`BackbonePreprocess` and
    before the ``features_pool`` layer (works on a freshly built and on a reloaded model)."""
    names = [layer.name for layer in model.layers]
    starts = [i for i, layer in enumerate(model.layers) if isinstance(layer, BackbonePreprocess)]
    if not starts or FEATURES_POOL not in names:
        raise ValueError(f"{model.name} is not a Model B: no BackbonePreprocess or '{FEATURES_POOL}' layer")
    return model.layers[starts[0] + 1 : names.index(FEATURES_POOL)]


def set_trainable_top(model: keras.Model, n: int, backbone: list[keras.layers.Layer] | None = None) -> int:
    """Freeze the backbone except its top ``n`` layers; the heads always stay trainable.

    Batch-normalisation layers stay frozen even inside the top ``n``. A frozen ``BatchNormalization``
    in Keras also runs in inference mode: it normalises with the mean and variance it learned on
    ImageNet instead of the statistics of the current small batch, and does not update them. With
    small batches of faces, updating them would replace well-estimated statistics with noisy
    ones and shift every activation the pretrained layers expect, undoing much of what the
    backbone knew in the first steps of fine-tuning.

    ``n=0`` freezes the whole backbone (phase 1). Recompile the model after calling this.
    Returns the number of backbone layers left trainable.
    """
    backbone = backbone_layers(model) if backbone is None else backbone
    if n < 0:
        raise ValueError(f"n must be 0 or more, got {n}")
    model.trainable = True
    top = {id(layer) for layer in backbone[max(0, len(backbone) - n) :]} if n else set()
    count = 0
    for layer in backbone:
        layer.trainable = id(layer) in top and not isinstance(layer, layers.BatchNormalization)
        count += layer.trainable
    return count


def count_params(model_or_layers) -> dict[str, int]:
    """Trainable and frozen parameter counts of a model or a list of layers."""
    items = model_or_layers.layers if isinstance(model_or_layers, keras.Model) else model_or_layers
    trainable = sum(math.prod(w.shape) for layer in items for w in layer.trainable_weights)
    frozen = sum(math.prod(w.shape) for layer in items for w in layer.non_trainable_weights)
    return {"trainable": trainable, "frozen": frozen, "total": trainable + frozen}


# --- cutting the model in two: compute the frozen bottom once ----------------------------------


def split_model(model: keras.Model, layer: str) -> tuple[keras.Model, keras.Model]:
    """Cut a flat model at the output of ``layer`` into ``bottom`` (image -> that feature map) and
    ``top`` (feature map -> ``age``, ``gender``).

    Both halves *share* the layers of ``model``: training ``top`` trains ``model``. When every layer
    of ``bottom`` is frozen (batch norm included, as :func:`set_trainable_top` leaves it), ``bottom``
    computes the same thing in every epoch, so its output can be computed once and reused
    (:func:`cached_features`); that is exact, not an approximation, as long as nothing random
    (augmentation) runs inside ``bottom`` during training.

    ``layer`` must be a point every path goes through (for MobileNetV2 the output of a block without
    a shortcut around it, e.g. ``block_12_add``); otherwise ``top`` would need a second input and
    Keras refuses, which this reports as a ``ValueError`` naming the layer.
    """
    try:
        cut = model.get_layer(layer).output
    except ValueError as err:
        raise ValueError(f"{model.name} has no layer {layer!r} to cut at") from err
    bottom = keras.Model(model.inputs, cut, name=f"{model.name}_bottom")
    try:
        top = keras.Model(cut, model.outputs, name=f"{model.name}_top")
    except ValueError as err:
        raise ValueError(
            f"cannot cut {model.name} at {layer!r}: layers above it also need earlier tensors (a shortcut "
            f"connection jumps over the cut); choose a layer at the end of a block ({err})"
        ) from err
    return bottom, top


def top_backbone_layers(model: keras.Model, layer: str) -> int:
    """How many backbone layers of a flat Model B lie above ``layer``: the ``n`` to pass to
    :func:`set_trainable_top` to fine-tune exactly the part above a :func:`split_model` cut."""
    names = [candidate.name for candidate in backbone_layers(model)]
    if layer not in names:
        raise ValueError(f"{layer!r} is not a backbone layer of {model.name}")
    return len(names) - names.index(layer) - 1
