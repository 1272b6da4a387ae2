"""Using a trained model on new photos: save and load, find faces, predict age and gender, explain,
draw, export to TensorFlow Lite. (The widget app is :mod:`agecourse.demo_app`, the example photos
:mod:`agecourse.example_photos`.)

Introduced in lesson 13 (deploy); ``agecourse predict`` is a thin wrapper around
:func:`predict_many`.

A model trained on UTKFace has only ever seen *chips*: 200 x 200 px faces, aligned (eyes level, the
face at one scale and position). A holiday photo is not a chip, so :func:`predict_faces` first turns
each face in it into one:

1. **read** the image from a path, bytes, a PIL image or an array; apply the EXIF orientation
   (phones store portraits sideways plus a tag), convert grayscale / RGBA / CMYK / palette / 16-bit
   to RGB (transparent pixels become white), and scale it down to at most ``MAX_PHOTO_SIDE`` px on
   its longer side (JPEGs are decoded at a reduced size straight away, so a 100-megapixel photo
   never sits in memory at full size; other formats over ``MAX_PIXELS`` are refused);
2. **find** faces with MTCNN (:func:`agecourse.faces.find_faces`: a box, a confidence and five
   landmarks per face; thresholds ``Settings.face_thresholds``); faces smaller than
   ``Settings.face_min_side`` px are not predicted;
3. **align** each face onto the template of the training chips (:func:`agecourse.faces.align_face`:
   a similarity transform from the eye and mouth landmarks), giving a 200 x 200 chip, then resize it
   to the model's input exactly as training resizes a chip (:func:`to_model_input`);
4. **predict** age and the probability of "female" for all faces in one batch, optionally with a
   Grad-CAM heat map per face (:mod:`agecourse.explain`).

With ``detect=False`` the whole image is treated as one face (for images that are already chips);
with ``align=False`` each face is cut as a square around its box (:func:`chip_box`) instead of being
aligned (for comparison: ``bench/bench_photo.py`` measures both).

Problems raise a :class:`DeployError` (a ``ValueError``) subclass whose message names the file:
:class:`ImageNotFound`, :class:`NotAnImage`, :class:`ImageTooSmall`, :class:`ImageTooLarge`,
:class:`NoFaceFound`, :class:`FaceTooSmall`, :class:`ModelLoadError`. Detection never falls back
silently to the whole image.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

# Registers Model B's preprocessing layer with Keras, so a saved Model B loads.
import agecourse.backbones  # noqa: F401
from agecourse import faces as face_finding
from agecourse.calibration import apply_temperature
from agecourse.conformal import half_widths_for, interval_bounds
from agecourse.data import GENDERS, MIN_IMAGE_SIDE
from agecourse.explain import gradcam_heatmaps, overlay

# How an MTCNN box sits on a training chip (medians, scripts/write_package_data.py template): the chip around a
# box, for cutting faces without alignment (chip_box).
CHIP_SIDE_PER_BOX = face_finding.face_template()["box"]["chip_side_per_box"]
CHIP_CENTRE_BELOW_BOX = face_finding.face_template()["box"]["chip_centre_below_box"]
MAX_PHOTO_SIDE = 4096  # photos are read scaled down to this (16 megapixels at most; faces are cut from it)
MAX_PIXELS = 120_000_000  # larger non-JPEG images are refused rather than decoded at full size

ImageSource = "str | os.PathLike | bytes | Image.Image | np.ndarray"


class DeployError(ValueError):
    """A photo or model that cannot be used; the message names the file and what to do."""


class ImageNotFound(DeployError):
    """The image path does not exist or is not a file."""


class NotAnImage(DeployError):
    """The file exists but is not a readable image."""


class ImageTooSmall(DeployError):
    """The image is smaller than :data:`agecourse.data.MIN_IMAGE_SIDE` on a side."""


class ImageTooLarge(DeployError):
    """The image has more pixels than can be decoded safely (``MAX_PIXELS``, non-JPEG formats)."""


class NoFaceFound(DeployError):
    """Face detection found no face in the image."""


class FaceTooSmall(DeployError):
    """Faces were found, but all are smaller than ``Settings.face_min_side`` pixels."""


class ModelLoadError(DeployError):
    """The model file is missing or cannot be loaded."""


# --- saving and loading ---------------------------------------------------------------------


def save_model(model: keras.Model, path: str | os.PathLike) -> Path:
    """Save a model in Keras' native ``.keras`` format (architecture, weights, compile settings),
    creating the folder. Other suffixes are refused: ``.h5`` is legacy and loses custom layers."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: save models with a .keras suffix (the Keras 3 format)")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def load_model(path: str | os.PathLike, compile: bool = False) -> keras.Model:
    """Load a ``.keras`` model saved by the course (Model A or Model B) for predictions.

    ``compile=False`` (the default) skips restoring the optimizer and losses, which prediction does
    not need. Raises :class:`ModelLoadError` naming the file when it is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such model file")
    if path.suffix != ".keras":
        raise ModelLoadError(f"{path}: not a .keras model file (save one with agecourse.deploy.save_model)")
    try:
        return keras.models.load_model(path, compile=compile)
    except (ValueError, OSError, TypeError, KeyError) as err:
        raise ModelLoadError(f"{path}: cannot load as a Keras model ({err})") from err


def input_size(model: keras.Model) -> tuple[int, int]:
    """``(height, width)`` of the model's image input."""
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or not shape[1] or not shape[2]:
        raise ValueError(f"{model.name} does not take fixed-size images (input shape {shape})")
    return int(shape[1]), int(shape[2])


# --- reading images -------------------------------------------------------------------------


def _source_name(source: Any, name: str | None) -> str:
    if name:
        return name
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    filename = getattr(source, "filename", "")
    if filename:
        return str(filename)
    return f"<{type(source).__name__}>"


def _shrink(image: Image.Image, max_side: int) -> Image.Image:
    """``image`` scaled down (antialiased) so that its longer side is at most ``max_side`` px."""
    if max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _pil_to_rgb(image: Image.Image, max_side: int = MAX_PHOTO_SIDE) -> np.ndarray:
    """EXIF-orient, scale down to ``max_side`` and convert any PIL image to an RGB uint8 array
    (transparency onto white; 16-bit and float grayscale stretched to 0-255)."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit or float grayscale
        values = np.asarray(image, dtype=np.float64)
        top = values.max() or 1.0
        image = Image.fromarray((values / top * 255).round().astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        image = background
    return np.asarray(_shrink(image.convert("RGB"), max_side), dtype=np.uint8)


def _array_to_rgb(array: np.ndarray, name: str) -> np.ndarray:
    """An RGB uint8 copy of an array image: (h, w), (h, w, 1), (h, w, 3) or (h, w, 4) RGBA, values
    0-255 (uint8 or float). Colour order must be RGB (OpenCV's ``imread`` gives BGR)."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise NotAnImage(f"{name}: not an image array (shape {array.shape}; expected (h, w), (h, w, 3) or (h, w, 4))")
    if not np.issubdtype(array.dtype, np.number) or array.size == 0:
        raise NotAnImage(f"{name}: not an image array (dtype {array.dtype}, {array.size} values)")
    if array.dtype == np.uint8 and array.shape[-1] == 3:
        return array.copy()
    values = np.clip(np.nan_to_num(array.astype(np.float32)), 0, 255)
    if values.shape[-1] == 4:  # RGBA onto white
        alpha = values[..., 3:] / 255.0
        values = values[..., :3] * alpha + 255.0 * (1 - alpha)
    return values.round().astype(np.uint8)


def _open_and_read(stream, label: str, max_side: int) -> np.ndarray:
    """Decode an image file (path or stream), memory-bounded: a JPEG is decoded at a reduced size
    (``draft``, 1/2 to 1/8) when it is much larger than ``max_side``; another format with more than
    ``MAX_PIXELS`` pixels is refused."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(stream)
        with image:
            width, height = image.size
            if image.format == "JPEG":
                image.draft("RGB", (max_side, max_side))  # never decodes below max_side
            elif width * height > MAX_PIXELS:
                raise ImageTooLarge(
                    f"{label}: image too large to decode safely ({width}x{height} px, over "
                    f"{MAX_PIXELS / 1e6:.0f} megapixels); save a smaller copy or a JPEG"
                )
            image.load()
            return _pil_to_rgb(image, max_side)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageTooLarge(f"{label}: image too large to decode safely ({err})") from err
    except UnidentifiedImageError as err:
        raise NotAnImage(f"{label}: not an image (the file's contents are not a known image format)") from err
    except (OSError, SyntaxError, ValueError) as err:
        if isinstance(err, DeployError):
            raise
        raise NotAnImage(f"{label}: not an image that can be decoded ({err})") from err


def read_image(source, name: str | None = None, max_side: int = MAX_PHOTO_SIDE) -> np.ndarray:
    """Any image source as an upright RGB uint8 array ``(h, w, 3)``, at most ``max_side`` px on its
    longer side (larger images are scaled down; coordinates of faces refer to the image as read).

    ``source`` may be a file path, the file's bytes (e.g. from a notebook upload), a PIL image or a
    NumPy array (RGB order). EXIF orientation is applied; grayscale, RGBA, CMYK, palette and 16-bit
    images are converted. Raises :class:`ImageNotFound`, :class:`NotAnImage`, :class:`ImageTooLarge`
    or :class:`ImageTooSmall` (smaller than ``MIN_IMAGE_SIDE`` px on a side), naming ``name`` or the file.
    """
    label = _source_name(source, name)
    if isinstance(source, np.ndarray):
        rgb = _array_to_rgb(source, label)
        if max(rgb.shape[:2]) > max_side:
            rgb = np.asarray(_shrink(Image.fromarray(rgb), max_side))
    elif isinstance(source, Image.Image):
        rgb = _pil_to_rgb(source, max_side)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        rgb = _open_and_read(io.BytesIO(bytes(source)), label, max_side)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise ImageNotFound(f"{label}: no such file")
        if not path.is_file():
            raise ImageNotFound(f"{label}: not a file")
        rgb = _open_and_read(path, label, max_side)
    else:
        raise TypeError(
            f"cannot read an image from a {type(source).__name__}; pass a path, bytes, a PIL image or a NumPy array"
        )
    height, width = rgb.shape[:2]
    if min(height, width) < MIN_IMAGE_SIDE:
        raise ImageTooSmall(
            f"{label}: image too small ({width}x{height} px); a face needs at least "
            f"{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} px"
        )
    return rgb


# --- finding and cropping faces -------------------------------------------------------------


def _clipped_box(box: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    """A float ``(x, y, w, h)`` box rounded to pixels and clipped to the image."""
    x0, y0 = max(0, round(box[0])), max(0, round(box[1]))
    x1, y1 = min(width, round(box[0] + box[2])), min(height, round(box[1] + box[3]))
    return x0, y0, max(1, x1 - x0), max(1, y1 - y0)


def find_usable_faces(rgb: np.ndarray, label: str = "image", settings=None) -> list[face_finding.Face]:
    """The faces of an RGB image that are large enough to predict (``Settings.face_min_side``),
    largest first. Raises :class:`NoFaceFound` when MTCNN finds none, :class:`FaceTooSmall` when all
    it finds are too small; both messages name ``label``."""
    thresholds, min_side = face_finding.detection_options(settings)
    found = face_finding.find_faces(rgb, thresholds)
    height, width = rgb.shape[:2]
    if not found:
        raise NoFaceFound(
            f"{label}: no face found in the {width}x{height} px image. If it is already a "
            "cropped face (like a UTKFace chip), use --no-detect (detect=False)."
        )
    usable = [face for face in found if face.side >= min_side]
    if not usable:
        raise FaceTooSmall(
            f"{label}: the largest face found is {found[0].side:.0f} px, smaller than the {min_side} px a "
            "face needs (Settings.face_min_side); use a photo taken closer or at a higher resolution"
        )
    return usable


def detect_faces(rgb: np.ndarray, settings=None) -> list[tuple[int, int, int, int]]:
    """Boxes ``(x, y, w, h)`` (pixels of ``rgb``, clipped to it) of the faces :func:`predict_faces`
    would predict, largest first; empty when there are none (no face, or only too small ones)."""
    try:
        faces = find_usable_faces(rgb, settings=settings)
    except (NoFaceFound, FaceTooSmall):
        return []
    return [_clipped_box(face.box, rgb.shape[1], rgb.shape[0]) for face in faces]


def chip_box(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The square UTKFace-like crop ``(x, y, side, side)`` around a face box, without alignment
    (may extend past the image; :func:`crop_chip` fills that part with replicated edge pixels)."""
    x, y, w, h = box
    side = max(1, round(CHIP_SIDE_PER_BOX * max(w, h)))
    centre_x = x + w / 2
    centre_y = y + h / 2 + CHIP_CENTRE_BELOW_BOX * side
    return round(centre_x - side / 2), round(centre_y - side / 2), side, side


def crop_chip(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Cut ``box`` ``(x, y, w, h)`` out of ``rgb``; parts outside the image replicate its edge."""
    x, y, w, h = box
    return face_finding.cut_out(rgb, x, y, x + w, y + h)


def to_model_input(crop: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an RGB crop to the model's input as training does: float32 0-255, antialiased."""
    resized = tf.image.resize(tf.convert_to_tensor(crop, tf.float32), size, antialias=True)
    return tf.clip_by_value(resized, 0.0, 255.0).numpy()


# --- predicting -----------------------------------------------------------------------------


@dataclass
class FacePrediction:
    """One face found in a photo and what the model says about it.

    Attributes:
        box: ``(x, y, w, h)`` of the face in the (EXIF-upright, as read) photo, in pixels.
        age: predicted age in years.
        p_female: predicted probability that the face is female (UTKFace's gender code 1), after
            the model's temperature scaling when :func:`predict_faces` was given one.
        gender: ``"female"`` if ``p_female >= 0.5`` else ``"male"``.
        detected: False when ``detect=False`` made the whole image the face.
        confidence: the detector's score (``None`` without detection).
        landmarks: ``(5, 2)`` eyes, nose and mouth corners in the photo (``None`` without detection).
        aligned: True when the face was warped onto the chip template.
        chip: the 200 x 200 chip cut from the photo (uint8), before resizing to the model's input.
        crop: the model's input image (float32, 0-255), for showing or explaining.
        heatmap: Grad-CAM map (0-1, the crop's size) of the gender decision, when asked for.
        age_interval: ``(low, high, level)``: the model's calibrated age interval (lesson 09's split
            conformal prediction) when it has one, else ``None``.
    """

    box: tuple[int, int, int, int]
    age: float
    p_female: float
    gender: str
    detected: bool = True
    confidence: float | None = None
    landmarks: np.ndarray | None = field(default=None, repr=False)
    aligned: bool = False
    chip: np.ndarray | None = field(default=None, repr=False)
    crop: np.ndarray | None = field(default=None, repr=False)
    heatmap: np.ndarray | None = field(default=None, repr=False)
    age_interval: tuple[float, float, float] | None = None

    def label(self) -> str:
        """Short caption, e.g. ``"female (91%), age 34"``, or with an interval
        ``"female (91%), age about 34 (90% interval 27-42)"``."""
        probability = self.p_female if self.gender == "female" else 1 - self.p_female
        if self.age_interval is None:
            return f"{self.gender} ({probability:.0%}), age {self.age:.0f}"
        low, high, level = self.age_interval
        return (
            f"{self.gender} ({probability:.0%}), age about {self.age:.0f} ({level:.0%} interval {low:.0f}-{high:.0f})"
        )

    def to_dict(self) -> dict:
        """JSON-ready fields (no images)."""
        return {
            "box": [int(v) for v in self.box],
            "age": round(float(self.age), 2),
            "p_female": round(float(self.p_female), 4),
            "gender": self.gender,
            "detected": self.detected,
            "confidence": None if self.confidence is None else round(float(self.confidence), 4),
            "landmarks": None if self.landmarks is None else np.round(self.landmarks, 1).tolist(),
            "aligned": self.aligned,
            "age_interval": None if self.age_interval is None else [round(float(v), 2) for v in self.age_interval],
        }


def _predict_batch(model: keras.Model, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(ages, p_female)`` for a batch, whether the model returns a list or a dict.

    ``predict_on_batch`` compiles the model into a graph on its first calls (about a second for
    Model B) and then runs one photo in ~10 ms on a CPU, against ~200 ms for an eager
    ``model(batch)``: worth it for the app and for many photos, which is how deploy is used.
    """
    outputs = model.predict_on_batch(batch)
    if isinstance(outputs, dict):
        age, gender = outputs["age"], outputs["gender"]
    else:
        named = dict(zip(model.output_names, outputs))
        age, gender = named["age"], named["gender"]
    return np.asarray(age, dtype=np.float64).reshape(-1), np.asarray(gender, dtype=np.float64).reshape(-1)


def face_chips(rgb: np.ndarray, label: str, detect: bool = True, align: bool = True, settings=None) -> list[dict]:
    """The faces of a photo as 200 x 200 chips, largest first: a dict per face with ``box``,
    ``chip``, ``confidence``, ``landmarks`` and ``aligned`` (see :class:`FacePrediction`).

    ``detect=False``: the whole image is one face, padded to a square around its centre by repeating
    its edge. ``align=False``: the square :func:`chip_box` around each box, without alignment."""
    height, width = rgb.shape[:2]
    side = face_finding.CHIP_SIDE
    if not detect:
        square = max(width, height)
        x, y = (width - square) // 2, (height - square) // 2
        chip = np.asarray(Image.fromarray(crop_chip(rgb, (x, y, square, square))).resize((side, side), Image.BICUBIC))
        return [dict(box=(0, 0, width, height), chip=chip, confidence=None, landmarks=None, aligned=False)]
    template = face_finding.face_template()["points"]
    chips = []
    for face in find_usable_faces(rgb, label, settings):
        box = _clipped_box(face.box, width, height)
        if align:
            chip = face_finding.align_face(rgb, face.landmarks, template, side)
        else:
            square = crop_chip(rgb, chip_box(tuple(round(v) for v in face.box)))
            chip = np.asarray(Image.fromarray(square).resize((side, side), Image.Resampling.LANCZOS))
        chips.append(dict(box=box, chip=chip, confidence=face.confidence, landmarks=face.landmarks, aligned=align))
    return chips


def predict_faces(
    model: keras.Model,
    image,
    detect: bool = True,
    gradcam: bool = False,
    name: str | None = None,
    max_faces: int | None = None,
    gradcam_output: str = "gender",
    align: bool = True,
    settings=None,
    age_interval: dict | None = None,
    gender_temperature: float | None = None,
) -> list[FacePrediction]:
    """Age and gender of every face in a photo: the one function behind lesson 13, ``agecourse
    predict`` and the demo app.

    Args:
        model: a course model (inputs: square RGB images in 0-255; outputs ``age`` and ``gender``).
        image: a file path, the file's bytes, a PIL image or an RGB array (see :func:`read_image`).
        detect: find faces with MTCNN (default). ``False`` treats the whole image as one
            already-cropped face, like a UTKFace chip.
        gradcam: also compute a Grad-CAM heat map per face (slower; uses :mod:`agecourse.explain`).
        name: how to name the image in error messages (default: its path or type).
        max_faces: keep only the largest faces.
        gradcam_output: ``"gender"`` or ``"age"``, the output the heat map explains.
        align: warp each face onto the training chips' landmark template (default); ``False`` cuts a
            square around the box instead (:func:`chip_box`).
        settings: where the detector's thresholds and minimum face size come from
            (``face_thresholds``, ``face_min_side``); default: :class:`agecourse.config.Settings`'s.
        age_interval: the model's calibration (``half_width`` in years, ``level`` and optionally
            ``band_half_widths`` per band of the predicted age, as
            :func:`agecourse.course_models.age_interval` gives it): each age then comes with its
            interval, the predicted age ± its band's width (else ± ``half_width``), never below 0.
        gender_temperature: the model's temperature (lesson 09's temperature scaling, as
            :func:`agecourse.course_models.gender_temperature` gives it): the probability of female
            is then ``sigmoid(logit(p) / gender_temperature)``, so that its percentage means what it
            says on faces like the validation ones. The predicted gender does not change.

    Returns:
        One :class:`FacePrediction` per face, largest face first.

    Raises:
        ImageNotFound, NotAnImage, ImageTooSmall, ImageTooLarge, NoFaceFound, FaceTooSmall: with the
        file named in the message.
    """
    label = _source_name(image, name)
    rgb = read_image(image, name=label)
    chips = face_chips(rgb, label, detect=detect, align=align, settings=settings)[:max_faces]
    size = input_size(model)
    batch = np.stack([to_model_input(face["chip"], size) for face in chips])
    ages, p_female = _predict_batch(model, batch)
    if gender_temperature is not None:
        p_female = apply_temperature(p_female, gender_temperature)
    heatmaps = [None] * len(batch)
    if gradcam:
        heatmaps = list(gradcam_heatmaps(model, batch, output=gradcam_output, method="gradcam"))
    intervals = [None] * len(batch)
    if age_interval is not None:
        lows, highs = interval_bounds(ages, half_widths_for(ages, age_interval))
        intervals = [(float(low), float(high), float(age_interval["level"])) for low, high in zip(lows, highs)]
    return [
        FacePrediction(
            box=tuple(int(v) for v in face["box"]),
            age=float(age),
            p_female=float(p),
            gender=GENDERS[int(p >= 0.5)],
            detected=detect,
            confidence=face["confidence"],
            landmarks=face["landmarks"],
            aligned=face["aligned"],
            chip=face["chip"],
            crop=crop,
            heatmap=heat,
            age_interval=interval,
        )
        for face, age, p, crop, heat, interval in zip(chips, ages, p_female, batch, heatmaps, intervals)
    ]


@dataclass
class ImageResult:
    """The outcome for one image of :func:`predict_many`: its faces, or the error message."""

    source: str
    faces: list[FacePrediction] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the image was processed without an error."""
        return self.error is None

    def to_dict(self) -> dict:
        """JSON-ready: ``image``, ``faces`` (list of dicts) and ``error`` (``None`` when fine)."""
        return {"image": self.source, "faces": [f.to_dict() for f in self.faces], "error": self.error}


def predict_many(model: keras.Model, sources, **options) -> list[ImageResult]:
    """:func:`predict_faces` for several images, with the same keyword ``options`` (``detect``,
    ``gradcam``, ``settings``, ``age_interval``, ``gender_temperature``, ...); a bad image records
    its error and the others go on."""
    results = []
    for source in sources:
        try:
            results.append(ImageResult(str(source), predict_faces(model, source, **options)))
        except DeployError as err:
            results.append(ImageResult(str(source), error=str(err)))
    return results


# --- drawing --------------------------------------------------------------------------------


def draw_faces(image, faces: list[FacePrediction], name: str | None = None, numbered: bool | None = None):
    """The photo as a PIL image with each face boxed and captioned (age and gender); with several
    faces (or ``numbered=True``) each caption starts with the face's number, as in the app."""
    rgb = (
        image
        if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[-1] == 3
        else read_image(image, name)
    )
    canvas = Image.fromarray(rgb)
    draw = ImageDraw.Draw(canvas)
    line = max(2, round(max(canvas.size) / 250))
    font = ImageFont.load_default(size=max(11, round(max(canvas.size) / 40)))
    numbered = len(faces) > 1 if numbered is None else numbered
    for number, face in enumerate(faces, 1):
        x, y, w, h = face.box
        colour = (220, 60, 120) if face.gender == "female" else (40, 110, 220)
        draw.rectangle([x, y, x + w, y + h], outline=colour, width=line)
        text = f"{number}: {face.label()}" if numbered else face.label()
        left, top, right, bottom = draw.textbbox((x, y), text, font=font)
        ty = y - (bottom - top) - 2 * line if y - (bottom - top) - 2 * line >= 0 else y + h + line
        draw.rectangle([x, ty, x + (right - left) + 2 * line, ty + (bottom - top) + 2 * line], fill=colour)
        draw.text((x + line, ty + line - (top - y)), text, fill=(255, 255, 255), font=font)
    return canvas


def face_overlays(faces: list[FacePrediction], alpha: float = 0.45) -> list[np.ndarray]:
    """The Grad-CAM overlay (RGB uint8) of every face that has a heat map."""
    return [
        overlay(face.crop, face.heatmap, alpha=alpha)
        for face in faces
        if face.heatmap is not None and face.crop is not None
    ]


def save_outputs(image, faces: list[FacePrediction], out_dir: str | os.PathLike, stem: str) -> list[Path]:
    """Write ``<stem>_faces.png`` (boxes and captions) and, for faces with heat maps,
    ``<stem>_face<i>_gradcam.png`` into ``out_dir``; returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}_faces.png"]
    draw_faces(image, faces).save(paths[0])
    for i, picture in enumerate(face_overlays(faces), start=1):
        paths.append(out / f"{stem}_face{i}_gradcam.png")
        Image.fromarray(picture).resize((192, 192), Image.Resampling.NEAREST).save(paths[-1])
    return paths


# --- TensorFlow Lite ------------------------------------------------------------------------


def export_tflite(model: keras.Model, path: str | os.PathLike) -> Path:
    """Convert a model to a TensorFlow Lite flat buffer (for phones and small devices), float32,
    without quantisation; check it with :func:`tflite_parity` before shipping it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints every captured variable
        buffer = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    path.write_bytes(buffer)
    return path


def _tflite_interpreter(path: str | os.PathLike):
    """LiteRT's interpreter (``ai_edge_litert``) when installed, else TensorFlow's deprecated one."""
    try:  # optional package, not a dependency of the course: imported only where it is installed
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
            return tf.lite.Interpreter(model_path=str(path))
    return Interpreter(model_path=str(path))


def tflite_predict(
    path: str | os.PathLike, batch: np.ndarray, output_names: tuple[str, ...] = ("age", "gender")
) -> tuple[np.ndarray, np.ndarray]:
    """``(ages, p_female)`` from a TensorFlow Lite model for a batch of model-sized images.

    The converter names the outputs ``output_0``, ``output_1``, ... in the Keras model's output
    order, which ``output_names`` gives (``model.output_names``).
    """
    runner = _tflite_interpreter(path).get_signature_runner()
    input_name = next(iter(runner.get_input_details()))
    ages, probs = [], []
    for image in np.asarray(batch, np.float32):
        result = runner(**{input_name: image[None]})
        named = {output_names[int(key.rsplit("_", 1)[1])]: value for key, value in result.items()}
        ages.append(float(np.reshape(named["age"], -1)[0]))
        probs.append(float(np.reshape(named["gender"], -1)[0]))
    return np.asarray(ages), np.asarray(probs)


def tflite_parity(model: keras.Model, path: str | os.PathLike, batch: np.ndarray) -> dict[str, float]:
    """Largest differences between the Keras model and its TensorFlow Lite copy on ``batch``:
    ``age_years`` and ``p_female``. Float32 conversion should agree to about 1e-4."""
    keras_age, keras_prob = _predict_batch(model, np.asarray(batch, np.float32))
    lite_age, lite_prob = tflite_predict(path, batch, tuple(model.output_names))
    return {
        "age_years": float(np.abs(keras_age - lite_age).max()),
        "p_female": float(np.abs(keras_prob - lite_prob).max()),
    }
