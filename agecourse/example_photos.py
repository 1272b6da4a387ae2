"""Example photos for lesson 13 and the demo page: synthetic faces in a group photo, image files encoded
the way cameras and editors store them (grayscale, RGBA, CMYK, turned with an EXIF tag), and a picker of
faces the detector finds. The faces are drawn by :mod:`agecourse.synthetic`: not real people.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from agecourse.deploy import detect_faces, read_image
from agecourse.synthetic import draw_face

# Synthetic faces that MTCNN finds when pasted into a photo, in colour, grayscale, CMYK and EXIF-turned
# copies alike (tests/test_deploy.py checks it): it finds only some of the cartoon faces (a detector
# trained on real faces), so the examples use these.
EXAMPLE_FACE_SEEDS = (29, 9)
EXAMPLE_FACE_SIDE = 220  # px: MTCNN's box is then about 150 px, above Settings.face_min_side
ORIENTATION_STORAGE = {3: 180, 6: 90, 8: 270}  # EXIF orientation -> how far the pixels are turned


def example_faces(side: int = EXAMPLE_FACE_SIDE, seeds: tuple[int, ...] = EXAMPLE_FACE_SEEDS) -> list[np.ndarray]:
    """Synthetic faces (not real people, :mod:`agecourse.synthetic`) of ``side`` px for examples."""

    return [draw_face(30 + seed, seed % 2, seed % 5, size=side, rng=seed) for seed in seeds]


def group_photo(faces=None, side: int = EXAMPLE_FACE_SIDE, gap: int = 40, margin: int = 70) -> np.ndarray:
    """A 'photo' with faces side by side on a plain backdrop, as RGB uint8.

    Args:
        faces: face images (arrays, paths, bytes; e.g. UTKFace chips) or ``None`` for
            :func:`example_faces`. Each is resized to ``side`` x ``side``.
        side, gap, margin: face size, space between faces and border around them, in pixels.

    A chip pasted into a larger picture is what a detector meets in a real photo: a face with
    context around it, rather than a face that fills the whole image.
    """
    chips = example_faces(side) if faces is None else [read_image(face) for face in faces]
    if not chips:
        raise ValueError("group_photo needs at least one face")
    width = 2 * margin + len(chips) * side + (len(chips) - 1) * gap
    height = 2 * margin + side
    ramp = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
    canvas = np.array([196, 204, 214], np.float32) * (1 - ramp) + np.array([226, 218, 204], np.float32) * ramp
    canvas = np.repeat(canvas, height, axis=0).round().astype(np.uint8)
    for i, chip in enumerate(chips):
        resized = np.asarray(Image.fromarray(chip).resize((side, side), Image.Resampling.LANCZOS))
        x = margin + i * (side + gap)
        canvas[margin : margin + side, x : x + side] = resized
    return canvas


def pick_detectable(sources, n: int = 2) -> list:
    """The first ``n`` images (paths, bytes or arrays of single faces, e.g. UTKFace chips) in which
    :func:`agecourse.deploy.detect_faces` finds a face: MTCNN misses a few chips in a hundred, and an example
    photo should not start with a miss. Raises ``ValueError`` when fewer than ``n`` qualify."""
    picked = []
    for source in sources:
        if detect_faces(read_image(source)):
            picked.append(source)
            if len(picked) == n:
                return picked
    raise ValueError(f"only {len(picked)} of the images have a face the detector finds; {n} were asked for")


def encode_image(rgb: np.ndarray, mode: str = "RGB", fmt: str = "JPEG", orientation: int | None = None) -> bytes:
    """The bytes of an image file made from ``rgb``, as a camera or an editor might store it.

    Args:
        rgb: an upright RGB uint8 image.
        mode: PIL mode of the stored pixels: ``"RGB"``, ``"L"`` (grayscale), ``"RGBA"`` (PNG
            only), ``"CMYK"`` (JPEG only; print workflows), ``"P"`` (palette, PNG only).
        fmt: ``"JPEG"`` or ``"PNG"``.
        orientation: an EXIF orientation (3, 6 or 8): the pixels are stored turned and the tag
            says how to turn them back, as phones do for portrait shots (JPEG only).
    """
    image = Image.fromarray(np.asarray(rgb, np.uint8)).convert(mode)
    options: dict[str, Any] = {"quality": 95} if fmt.upper() == "JPEG" else {}
    if orientation is not None:
        if orientation not in ORIENTATION_STORAGE:
            raise ValueError(f"orientation must be one of {sorted(ORIENTATION_STORAGE)}, got {orientation}")
        image = image.rotate(ORIENTATION_STORAGE[orientation], expand=True)
        exif = Image.Exif()
        exif[0x0112] = orientation
        options["exif"] = exif
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()
