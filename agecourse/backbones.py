"""ImageNet backbones for Model B: the registry, their input scaling as a layer, and their weights.

Introduced in lesson 10 (transfer learning). :data:`BACKBONES` lists the ``keras.applications``
networks the course can put under its two heads, each with its preprocessing mode, its last
convolution (lesson 11's Grad-CAM layer) and the file name of its ImageNet weights.

The backbone's own input scaling is a layer of the model (:class:`BackbonePreprocess`), so Model B
takes the same float32 0-255 images as Model A. It is registered with Keras as
``agecourse>BackbonePreprocess``: importing this module is what lets a saved Model B load.

ImageNet weights come from a local file when one is found (``AGECOURSE_WEIGHTS``, then the Keras
cache ``$KERAS_HOME/models`` or ``~/.keras/models``), else Keras downloads them; see
:func:`resolve_weights`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import pandas as pd
from keras import layers

from agecourse.config import detect_profile, keras_home, weights_dirs

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


def backbone_table(image_size: int = 96, alpha: float = 0.35, names: list[str] | None = None):
    """One row per backbone (``names``, default all of :data:`BACKBONES`): parameters, layers,
    last conv layer, feature-map size.

    Each backbone is built without weights (nothing is downloaded) at ``image_size`` (or its
    minimum size if larger) just to count; ``alpha`` applies to MobileNetV2 only. The big ones
    (ResNet50, VGG16, Xception) take a few seconds each to build.
    """
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


# --- weights ------------------------------------------------------------------------------------


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded weights: ``$KERAS_HOME/models``, else ``~/.keras/models``."""
    return keras_home() / "models"


def weight_folders(weights_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for weight files, in order: ``weights_dir``, every folder in
    ``AGECOURSE_WEIGHTS`` (separated by ``os.pathsep``), then the Keras cache."""
    folders = [Path(weights_dir).expanduser()] if weights_dir else []
    folders += weights_dirs()
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
