"""Data augmentation with Keras preprocessing layers.

Introduced in lesson 05 (augment). The layers are active only when the model is called with
``training=True`` (inside ``fit``); at evaluation and prediction time they pass images through.
"""

from __future__ import annotations

import keras
from keras import layers


def make_augmentation(
    flip: bool = True,
    rotation: float = 0.04,
    zoom: float = 0.1,
    translation: float = 0.05,
    contrast: float = 0.15,
    brightness: float = 0.1,
    seed: int | None = None,
    name: str = "augment",
) -> keras.Sequential:
    """A ``keras.Sequential`` of random flips, small rotations, zoom, shifts, contrast and
    brightness changes, suitable for aligned face chips.

    Faces are left-right symmetric enough for horizontal flips, but never flipped vertically.
    Rotation is a fraction of a full turn (0.04 = about 14 degrees). Values are for images in
    0-255, which is what :func:`agecourse.data.make_dataset` yields.
    """
    steps: list[layers.Layer] = []
    if flip:
        steps.append(layers.RandomFlip("horizontal", seed=seed))
    if rotation:
        steps.append(layers.RandomRotation(rotation, fill_mode="reflect", seed=seed))
    if zoom:
        steps.append(layers.RandomZoom(zoom, fill_mode="reflect", seed=seed))
    if translation:
        steps.append(layers.RandomTranslation(translation, translation, fill_mode="reflect", seed=seed))
    if contrast:
        steps.append(layers.RandomContrast(contrast, value_range=(0, 255), seed=seed))
    if brightness:
        steps.append(layers.RandomBrightness(brightness, value_range=(0, 255), seed=seed))
    return keras.Sequential(steps, name=name)
