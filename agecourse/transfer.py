"""Model B: transfer learning from an ImageNet backbone (``keras.applications``).

Introduced in lesson 10 (transfer learning); lesson 11 (Grad-CAM) explains its predictions.

A backbone trained on ImageNet already knows edges, textures and parts of objects. Model B puts the
course's two heads (:func:`agecourse.models.add_heads`) on top of such a backbone and trains in two
phases:

1. **frozen backbone**: only the new heads learn, with a normal learning rate, so the random heads
   cannot send large gradients into the pretrained layers;
2. **fine-tuning**: the top ``n`` backbone layers are unfrozen and trained with a learning rate
   about ten times lower. Batch-normalisation layers stay frozen (see :func:`set_trainable_top`).

The model is built **flat**: the backbone is created with ``input_tensor=`` the preprocessed image,
so every backbone layer is a layer of Model B itself (not one nested sub-model). That keeps
``model.layers`` readable, lets lesson 11 reach the last convolution for Grad-CAM, and saves to one
``.keras`` file. The backbone's own input scaling is a layer of the model too
(:class:`BackbonePreprocess`), so Model B takes the same float32 0-255 images as Model A.

ImageNet weights come from a local file when one is found (``AGECOURSE_WEIGHTS``, then the Keras
cache ``$KERAS_HOME/models`` or ``~/.keras/models``), else Keras downloads them; see
:func:`resolve_weights`.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
from keras import layers

from agecourse.models import DEFAULT_AGE_INIT, add_heads

# Name of the pooling layer between the backbone and the heads; marks where the backbone ends.
FEATURES_POOL = "features_pool"
# Input sizes for which Keras publishes MobileNetV2 weights (any of them loads at any input size).
MOBILENET_V2_ROWS = (96, 128, 160, 192, 224)
# Per-channel constants of the "caffe" and "torch" preprocessing modes of keras.applications.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package="agecourse")
class BackbonePreprocess(layers.Layer):
    """A backbone's ``preprocess_input`` as a model layer, for images in 0-255.

    Modes are those of ``keras.applications.imagenet_utils.preprocess_input``:

    * ``"tf"``: scale to -1..1 (MobileNetV2, Xception);
    * ``"caffe"``: RGB to BGR, then subtract the ImageNet mean per channel (ResNet50, VGG16);
    * ``"torch"``: scale to 0..1, then standardise per channel with the ImageNet mean and std;
    * ``"none"``: pass through (EfficientNet rescales inside the backbone itself).

    A registered layer class with ``get_config`` saves and loads with the model, unlike a
    ``Lambda`` wrapping the function, whose Python code Keras 3 refuses to deserialise by default.
    """

    MODES = ("tf", "caffe", "torch", "none")

    def __init__(self, mode: str = "tf", **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"unknown preprocessing mode {mode!r}; choose from {', '.join(self.MODES)}")
        self.mode = mode

    def call(self, inputs):
        x = keras.ops.cast(inputs, self.compute_dtype)
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "caffe":
            x = keras.ops.flip(x, axis=-1)  # RGB -> BGR
            return x - keras.ops.convert_to_tensor(CAFFE_MEAN_BGR, dtype=x.dtype)
        if self.mode == "torch":
            mean = keras.ops.convert_to_tensor(TORCH_MEAN, dtype=x.dtype)
            std = keras.ops.convert_to_tensor(TORCH_STD, dtype=x.dtype)
            return (x / 255.0 - mean) / std
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


@dataclass(frozen=True)
class Backbone:
    """One entry of :data:`BACKBONES`: how to build, feed and explain an ImageNet backbone.

    Attributes:
        name: the ``keras.applications`` name, e.g. ``"MobileNetV2"``.
        constructor: the ``keras.applications`` function that builds it.
        preprocess_input: the official preprocessing function (kept for comparison and tests).
        mode: the same preprocessing as a :class:`BackbonePreprocess` mode.
        last_conv: name of its last convolutional feature map (the Grad-CAM layer of lesson 11).
        min_size: smallest input side it accepts.
        weights_file: official file name of its ImageNet ``include_top=False`` weights.
    """

    name: str
    constructor: Callable[..., keras.Model]
    preprocess_input: Callable
    mode: str
    last_conv: str
    min_size: int
    weights_file: str

    @property
    def has_alpha(self) -> bool:
        """True for backbones with a width multiplier ``alpha`` (MobileNetV2)."""
        return "{alpha}" in self.weights_file

    def weight_file_names(self, alpha: float = 1.0, image_size: int = 224) -> list[str]:
        """Official weight file names that fit, best first.

        MobileNetV2 has one file per ``alpha`` and training size; all load at any input size, so
        the file for ``image_size`` comes first, then 224 px, then the others.
        """
        if not self.has_alpha:
            return [self.weights_file]
        rows = [image_size] if image_size in MOBILENET_V2_ROWS else []
        rows += [r for r in (224, 192, 160, 128, 96) if r not in rows]
        return [self.weights_file.format(alpha=float(alpha), rows=r) for r in rows]


_apps = keras.applications
BACKBONES: dict[str, Backbone] = {
    spec.name: spec
    for spec in (
        Backbone(
            "MobileNetV2",
            _apps.MobileNetV2,
            _apps.mobilenet_v2.preprocess_input,
            "tf",
            "out_relu",
            32,
            "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{rows}_no_top.h5",
        ),
        Backbone(
            "EfficientNetB0",
            _apps.EfficientNetB0,
            _apps.efficientnet.preprocess_input,
            "none",
            "top_activation",
            32,
            "efficientnetb0_notop.h5",
        ),
        Backbone(
            "ResNet50",
            _apps.ResNet50,
            _apps.resnet50.preprocess_input,
            "caffe",
            "conv5_block3_out",
            32,
            "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        ),
        Backbone(
            "VGG16",
            _apps.VGG16,
            _apps.vgg16.preprocess_input,
            "caffe",
            "block5_conv3",
            32,
            "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        ),
        Backbone(
            "Xception",
            _apps.Xception,
            _apps.xception.preprocess_input,
            "tf",
            "block14_sepconv2_act",
            71,
            "xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
        ),
    )
}
DEFAULT_BACKBONE = "MobileNetV2"


def get_backbone(name: str) -> Backbone:
    """The :data:`BACKBONES` entry for ``name`` (case-insensitive), with a clear error otherwise."""
    for key, spec in BACKBONES.items():
        if key.lower() == str(name).lower():
            return spec
    raise ValueError(f"unknown backbone {name!r}; choose from {', '.join(BACKBONES)}")


# --- weights ------------------------------------------------------------------------------------


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded weights: ``$KERAS_HOME/models``, else ``~/.keras/models``."""
    home = os.environ.get("KERAS_HOME", "").strip()
    return (Path(home).expanduser() if home else Path.home() / ".keras") / "models"


def weight_folders(weights_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for weight files, in order: ``weights_dir``, every folder in
    ``AGECOURSE_WEIGHTS`` (separated by ``os.pathsep``), then the Keras cache."""
    folders = [Path(weights_dir).expanduser()] if weights_dir else []
    folders += [Path(p).expanduser() for p in os.environ.get("AGECOURSE_WEIGHTS", "").split(os.pathsep) if p.strip()]
    folders.append(keras_cache_dir())
    return folders


def find_weights(
    backbone: str = DEFAULT_BACKBONE,
    alpha: float = 1.0,
    image_size: int = 224,
    weights_dir: str | os.PathLike | None = None,
) -> Path | None:
    """The first local ImageNet weight file for the backbone, or ``None`` (nothing is downloaded)."""
    spec = get_backbone(backbone)
    for folder in weight_folders(weights_dir):
        for name in spec.weight_file_names(alpha, image_size):
            if (folder / name).is_file():
                return folder / name
    return None


def resolve_weights(
    backbone: str = DEFAULT_BACKBONE,
    alpha: float = 1.0,
    image_size: int = 224,
    weights_dir: str | os.PathLike | None = None,
    profile: str | None = None,
    verbose: bool = True,
) -> str | None:
    """Decide what to pass as ``weights=`` to the backbone: a local file, ``"imagenet"`` or ``None``.

    1. A local copy (see :func:`find_weights`) is used when there is one: no network needed.
    2. Otherwise, in the ``ci`` profile (tests, no network), the backbone starts from random weights,
       with a warning: the model then learns from scratch and is not a transfer-learning result.
    3. Otherwise ``"imagenet"``: Keras downloads the file into its cache (:func:`build_model_b`
       turns a failed download into an error that says where to put the file).

    Never silent: each branch prints or warns what it chose.
    """
    spec = get_backbone(backbone)
    found = find_weights(backbone, alpha, image_size, weights_dir)
    if found is not None:
        if verbose:
            print(f"ImageNet weights for {spec.name}: {found}")
        return str(found)
    wanted = spec.weight_file_names(alpha, image_size)[0]
    folders = ", ".join(str(f) for f in weight_folders(weights_dir))
    if profile is None:
        from agecourse.config import detect_profile

        profile = detect_profile()
    if profile == "ci":
        warnings.warn(
            f"no local ImageNet weights for {spec.name} ({wanted}) in {folders}: the 'ci' profile does "
            "not download, so the backbone starts from RANDOM weights (not transfer learning)",
            stacklevel=2,
        )
        return None
    if verbose:
        print(f"No local copy of {wanted} in {folders}: Keras will download the ImageNet weights.")
    return "imagenet"


# --- building -----------------------------------------------------------------------------------


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


def backbone_table(image_size: int = 96, alpha: float = 0.35, names: list[str] | None = None):
    """One row per backbone (``names``, default all of :data:`BACKBONES`): parameters, layers,
    last conv layer, feature-map size.

    Each backbone is built without weights (nothing is downloaded) at ``image_size`` (or its
    minimum size if larger) just to count; ``alpha`` applies to MobileNetV2 only. The big ones
    (ResNet50, VGG16, Xception) take a few seconds each to build.
    """
    import pandas as pd

    rows = []
    for spec in [get_backbone(name) for name in names] if names is not None else BACKBONES.values():
        size = max(image_size, spec.min_size)
        kwargs = {"alpha": alpha} if spec.has_alpha else {}
        base = spec.constructor(include_top=False, weights=None, input_shape=(size, size, 3), **kwargs)
        rows.append(
            {
                "backbone": spec.name + (f" (alpha {alpha})" if spec.has_alpha else ""),
                "parameters (M)": round(base.count_params() / 1e6, 2),
                "layers": len(base.layers),
                "input px": size,
                "feature map": tuple(base.output.shape[1:]),
                "last conv layer": spec.last_conv,
                "preprocessing": spec.mode,
                "min px": spec.min_size,
            }
        )
        del base
        keras.backend.clear_session(free_memory=True)
    return pd.DataFrame(rows)


# --- training -----------------------------------------------------------------------------------

# Defaults for the two phases; the profile's epochs come from Settings.
FINETUNE_LAYERS = 60
FINETUNE_LEARNING_RATE = 3e-4


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
) -> tuple[dict, dict]:
    """Phase 1: train the heads on a frozen backbone. Phase 2: unfreeze the top ``finetune_layers``
    backbone layers (batch norm stays frozen) and continue at ``finetune_learning_rate``.

    Both phases use :func:`agecourse.models.compile_model` and :func:`agecourse.training.train_model`
    (early stopping with the best weights restored, learning-rate reduction on plateaus).
    ``epochs_finetune=0`` or ``finetune_layers=0`` skips phase 2 (its history is then empty).

    Returns:
        ``(history_frozen, history_finetune)``, plain dicts of per-epoch metrics.
    """
    from agecourse.models import compile_model
    from agecourse.training import train_model

    set_trainable_top(model, 0)
    compile_model(model, learning_rate=learning_rate)
    frozen = train_model(
        model, train_ds, val_ds, epochs=epochs_frozen, patience=patience, verbose=verbose, checkpoint=checkpoint
    )
    if not epochs_finetune or not finetune_layers:
        return frozen, {}
    set_trainable_top(model, finetune_layers)
    compile_model(model, learning_rate=finetune_learning_rate)
    finetune = train_model(
        model, train_ds, val_ds, epochs=epochs_finetune, patience=patience, verbose=verbose, checkpoint=checkpoint
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
    from agecourse.training import plot_history

    fig = plot_history(join_histories(first, second), title)
    boundary = len(first.get("loss", [])) + 0.5
    if second:
        for ax in fig.axes:
            ax.axvline(boundary, color="grey", ls="--", lw=1)
            ax.text(boundary, ax.get_ylim()[1], " fine-tuning", va="top", fontsize=8, color="grey")
    return fig


def build_model_b_for(settings, split, weights: str | os.PathLike | None = "imagenet", verbose: bool = True):
    """Model B as lesson 10 builds it from ``settings``: backbone, size, alpha and head dropout from the
    ``transfer_*`` fields; lesson 05's augmentation inside the model unless the profile trains on
    cached views (``transfer_cached_views``), where the views are the augmentation and nothing random
    may run below the cut."""
    from agecourse.augment import make_augmentation

    return build_model_b(
        settings.transfer_backbone,
        settings.transfer_image_size,
        settings.transfer_alpha,
        weights=weights,
        augment=None if settings.transfer_cached_views else make_augmentation(seed=settings.seed),
        dropout=settings.transfer_dropout,
        age_init=float(split.train["age"].mean()),
        profile=settings.profile,
        verbose=verbose,
    )


def learning_rates_for(settings) -> tuple[float, float]:
    """``(phase 1, phase 2)`` learning rates of Model B for ``settings`` (lesson 10)."""
    first = settings.transfer_learning_rate or settings.learning_rate
    second = settings.transfer_finetune_learning_rate or settings.extra.get(
        "transfer_finetune_learning_rate", FINETUNE_LEARNING_RATE
    )
    return float(first), float(second)


def train_cached_for(
    settings, model: keras.Model, split, verbose: int | str = 2, time_budget_s: float | None = None
) -> tuple[dict, dict, dict]:
    """Both phases of Model B on cached views, with the recipe in ``settings`` (the ``cpu`` profile):
    :func:`train_two_phase_cached` with ``transfer_cached_views`` views, cut at ``transfer_cut``,
    ``transfer_lr_schedule`` in phase 2, at most ``time_budget_s`` seconds in all. Returns
    ``(history_frozen, history_finetune, info)``."""
    if settings.transfer_cached_views < 1:
        raise ValueError(
            f"the '{settings.profile}' profile trains Model B on images (transfer_cached_views = 0); "
            "use train_two_phase, or set transfer_cached_views >= 1"
        )
    first, second = learning_rates_for(settings)
    return train_two_phase_cached(
        model,
        split,
        settings.transfer_image_size,
        settings.transfer_cut,
        settings.transfer_epochs_frozen,
        settings.transfer_epochs_finetune,
        learning_rate=first,
        finetune_learning_rate=second,
        batch_size=settings.batch_size,
        views=settings.transfer_cached_views,
        lr_schedule=settings.transfer_lr_schedule,
        patience=settings.patience,
        seed=settings.seed,
        time_budget_s=time_budget_s,
        verbose=verbose,
    )


def train_model_b(
    settings,
    split,
    verbose: int | str = "auto",
    weights: str | os.PathLike | None = "imagenet",
    finetune_layers: int | None = None,
    finetune_learning_rate: float | None = None,
):
    """Build and train Model B with the profile's settings; returns ``(model, history_frozen,
    history_finetune)``.

    Uses the ``transfer_*`` settings (:func:`build_model_b_for`); with ``transfer_cached_views``
    both phases run on cached views (:func:`train_cached_for`), otherwise on the image pipeline
    (:func:`train_two_phase`, where ``finetune_layers`` or ``settings.extra["transfer_finetune_layers"]``
    sets how many backbone layers phase 2 unfreezes; on cached views it is every layer above the cut).
    """
    from agecourse.pipeline import datasets
    from agecourse.training import set_seed

    set_seed(settings.seed)
    model = build_model_b_for(settings, split, weights=weights, verbose=bool(verbose))
    if settings.transfer_cached_views:
        if finetune_learning_rate:
            settings = settings.replace(transfer_finetune_learning_rate=finetune_learning_rate)
        frozen, finetune, _ = train_cached_for(settings, model, split, verbose=verbose)
        return model, frozen, finetune
    train, val, _ = datasets(settings, split, image_size=settings.transfer_image_size)
    first, second = learning_rates_for(settings)
    frozen, finetune = train_two_phase(
        model,
        train,
        val,
        settings.transfer_epochs_frozen,
        settings.transfer_epochs_finetune,
        learning_rate=first,
        finetune_learning_rate=finetune_learning_rate or second,
        finetune_layers=finetune_layers or settings.extra.get("transfer_finetune_layers", FINETUNE_LAYERS),
        verbose=verbose,
    )
    return model, frozen, finetune


def get_model_b(settings, split=None, retrain: bool = False, verbose: bool = True) -> keras.Model:
    """Model B for ``settings``, the way lessons 11-13 get it: loaded from ``model_b.keras`` in
    ``settings.artifacts_dir`` when lesson 10 (or ``bench/bench_model_b.py``) saved one, else
    trained now with :func:`train_model_b` and saved, saying so.

    Analogous to :func:`agecourse.pipeline.get_model_a`.
    """
    path = settings.artifacts_dir / "model_b.keras"
    if path.exists() and not retrain:
        if verbose:
            print(f"Loaded the saved Model B from {path}")
        return keras.models.load_model(path)
    if verbose:
        print(
            f"No saved Model B at {path}: training one now with the '{settings.profile}' settings "
            "(run lesson 10 to train and save it properly)."
        )
    if split is None:
        from agecourse.pipeline import get_split

        split = get_split(settings, verbose=verbose)
    model, _, _ = train_model_b(settings, split, verbose=2 if verbose else 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return model


# --- faster fine-tuning on a CPU: compute the frozen layers once --------------------------------


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
    import numpy as np
    import tensorflow as tf

    from agecourse.data import make_dataset

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
    view, as :func:`cached_features` gives them); the labels are repeated to match.
    """
    import numpy as np
    import tensorflow as tf

    views, rest = divmod(len(features), len(table))
    if rest or not views:
        raise ValueError(f"{len(features)} feature rows do not match {len(table)} images (or a multiple)")
    labels = {name: np.tile(table[name].to_numpy(np.float32), views) for name in ("age", "gender")}
    ds = tf.data.Dataset.from_tensor_slices((features, labels))
    if shuffle:
        ds = ds.shuffle(len(features), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


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

    ``time_budget_s`` caps the whole call (caching included): each phase gets what is left, through
    :class:`agecourse.training.TimeBudget`, and phase 2 is skipped when nothing is left. Returns
    ``(history_frozen, history_finetune, info)``; ``info`` has the seconds spent caching, the number
    of fine-tuned layers and why the budget stopped training (empty when it did not).
    """
    import time

    import numpy as np

    from agecourse.models import compile_model
    from agecourse.training import TimeBudget, train_model

    start = time.monotonic()

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
    train_features = np.concatenate(
        [
            cached_features(
                bottom, split.train, image_size, batch_size, flip=view % 2 == 1, augment=augment if view >= 2 else None
            )
            for view in range(views)
        ]
    )
    val_features = cached_features(bottom, split.val, image_size, batch_size)
    cache_seconds = time.monotonic() - start
    if verbose:
        print(
            f"Cached {cut} features {train_features.shape[1:]} for {len(train_features)} training views "
            f"and {len(val_features)} validation images in {cache_seconds:.0f} s"
        )
    train = feature_dataset(train_features, split.train, batch_size, shuffle=True)
    val = feature_dataset(val_features, split.val, batch_size)
    stopped = []
    compile_model(top, learning_rate=learning_rate)
    first = budget()
    frozen = train_model(top, train, val, epochs_frozen, patience=patience, verbose=verbose, extra_callbacks=first)
    stopped += [f"phase 1: {b.stopped_reason}" for b in first if b.stopped_reason]
    finetune: dict = {}
    if epochs_finetune and n_top and not stopped:
        set_trainable_top(model, n_top)
        compile_model(top, learning_rate=finetune_learning_rate)
        second = budget()
        finetune = train_model(
            top,
            train,
            val,
            epochs_finetune,
            patience=patience,
            verbose=verbose,
            extra_callbacks=second,
            lr_schedule=lr_schedule,
            learning_rate=finetune_learning_rate,
        )
        stopped += [f"phase 2: {b.stopped_reason}" for b in second if b.stopped_reason]
    info = {
        "cut": cut,
        "finetuned_backbone_layers": n_top if finetune else 0,
        "train_views": len(train_features) // len(split.train),
        "cache_seconds": round(cache_seconds, 1),
        "stopped_by_budget": "; ".join(stopped),
    }
    return frozen, finetune, info
