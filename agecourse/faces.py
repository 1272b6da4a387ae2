"""Faces in photos: find them with MTCNN and align each one like a UTKFace training chip.

Introduced in lesson 13 (deploy); :func:`agecourse.deploy.predict_faces` (and so ``agecourse
predict`` and the demo app) runs every photo through :func:`find_faces` and :func:`align_face`.

* **Finding.** MTCNN (Zhang et al., 2016; the ``mtcnn`` package, whose weights ship inside its
  wheel) returns, per face, a box, a confidence and five landmarks: both eyes, the nose tip and
  both mouth corners. Its three stage thresholds are ``Settings.face_thresholds``.
* **Aligning.** UTKFace's chips are aligned: eyes level, the face at one scale and position. The
  mean landmark positions on 200 x 200 training chips (:func:`face_template`, package data written
  by ``scripts/write_package_data.py template``) are that alignment. Each face in a photo is warped onto
  them with the similarity transform (rotation, uniform scale, shift) that best maps the chip's
  eye and mouth landmarks onto the face's (:func:`similarity_transform`, least squares), so the
  model sees a chip like the ones it was trained on, whatever the face's tilt, size and place.

No OpenCV: the warp is PIL's ``Image.transform``, the fit NumPy.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # left/right as seen in the image
ALIGN_POINTS = (0, 1, 3, 4)  # eyes and mouth corners; the nose tip moves with the head's turn
CHIP_SIDE = 200  # UTKFace chips are 200 x 200 px: the template's coordinates
DETECT_MAX_SIDE = 1024  # photos are searched at most this large (speed); faces are cut from the full image
MTCNN_MIN_FACE = 20  # px in the searched image: MTCNN's own default, the smallest face it looks for
TEMPLATE_FILE = Path(__file__).with_name("face_template.json")


@dataclass(frozen=True)
class Face:
    """One face MTCNN found in a photo.

    Attributes:
        box: ``(x, y, w, h)`` of the face in the photo's pixels (floats).
        confidence: MTCNN's final (O-Net) score, 0-1.
        landmarks: ``(5, 2)`` array of ``(x, y)``, in :data:`LANDMARKS` order.
    """

    box: tuple[float, float, float, float]
    confidence: float
    landmarks: np.ndarray = dataclasses.field(repr=False)

    @property
    def side(self) -> float:
        """The longer side of the box, in pixels: the face's size."""
        return max(self.box[2], self.box[3])


def detection_options(settings=None) -> tuple[tuple[float, float, float], int]:
    """``(face_thresholds, face_min_side)`` of ``settings``, or the :class:`agecourse.config.Settings`
    defaults (the same in every profile) when ``settings`` is ``None``."""
    if settings is not None:
        return tuple(settings.face_thresholds), int(settings.face_min_side)
    from agecourse.config import Settings

    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    return tuple(defaults["face_thresholds"]), int(defaults["face_min_side"])


class StopWhenEmpty:
    """One MTCNN stage that hands on "no faces" when the stage before it kept no candidate box.

    ``mtcnn`` 1.0.0 feeds an empty batch of boxes to the next network and expects TensorFlow's
    ``InvalidArgumentError``; Keras 3.13 (Colab's) raises ``ValueError`` from ``Conv2D`` instead, so a
    photo without a face crashed there. An empty batch now skips the network: ``(0, 16)`` rows, the
    value ``mtcnn`` itself returns for "no faces found".
    """

    def __init__(self, stage):
        self.stage = stage
        self.id, self.name = stage.id, stage.name

    def __call__(self, bboxes_batch=None, **kwargs):
        if bboxes_batch is not None and len(bboxes_batch) == 0:
            return np.empty((0, 16))
        return self.stage(bboxes_batch=bboxes_batch, **kwargs)


@cache
def detector():
    """The MTCNN detector (three small Keras networks), built once per process."""
    from mtcnn import MTCNN
    from mtcnn.stages import StageONet, StagePNet, StageRNet  # lazy: loads TensorFlow and the weights

    stages = [StopWhenEmpty(stage()) for stage in (StagePNet, StageRNet, StageONet)]
    return MTCNN(stages=stages, device="CPU:0")


def find_faces(
    rgb: np.ndarray,
    thresholds: tuple[float, float, float] | None = None,
    max_side: int = DETECT_MAX_SIDE,
) -> list[Face]:
    """Every face MTCNN finds in an RGB uint8 image, largest first.

    The image is searched scaled down to at most ``max_side`` px (small faces below about
    ``MTCNN_MIN_FACE`` px *in that copy* are not looked for); boxes and landmarks are mapped back to
    ``rgb``'s pixels. ``thresholds`` are the P-Net, R-Net and O-Net thresholds (default:
    ``Settings.face_thresholds``). Size limits are the caller's (:func:`agecourse.deploy.predict_faces`).
    """
    thresholds = detection_options()[0] if thresholds is None else thresholds
    height, width = rgb.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    searched = rgb
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        searched = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0))
    found = detector().detect_faces(
        np.ascontiguousarray(searched),
        output_type="numpy",
        box_format="xyxy",
        min_face_size=MTCNN_MIN_FACE,
        threshold_pnet=thresholds[0],
        threshold_rnet=thresholds[1],
        threshold_onet=thresholds[2],
        fit_to_image=False,  # a face at the photo's edge keeps its whole box (chips' boxes run past the top)
    )
    faces = []
    for row in np.asarray(found, dtype=np.float64).reshape(-1, 16):
        x0, y0, x1, y1 = row[1:5] / scale
        if x1 - x0 < 1 or y1 - y0 < 1:
            continue
        landmarks = np.stack([row[6:11], row[11:16]], axis=1) / scale  # MTCNN stores all x, then all y
        faces.append(Face((x0, y0, x1 - x0, y1 - y0), float(row[5]), landmarks))
    return sorted(faces, key=lambda f: f.box[2] * f.box[3], reverse=True)


@cache
def face_template() -> dict:
    """The alignment template: ``points`` (5 x 2, the mean landmark positions on 200 x 200 UTKFace
    training chips, :data:`LANDMARKS` order) and how it was made (count, seed, date, source)."""
    record = json.loads(TEMPLATE_FILE.read_text(encoding="utf-8"))
    record["points"] = np.asarray(record["points"], dtype=np.float64)
    return record


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2 x 3 matrix ``[s R | t]`` (rotation R, scale s, shift t) that maps the ``(n, 2)``
    points ``source`` onto ``target`` with the least squared error (Umeyama, 1991)."""
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    centred_source, centred_target = source - source_mean, target - target_mean
    covariance = centred_target.T @ centred_source / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    flip = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])  # a rotation, never a mirror
    rotation = u @ flip @ vt
    scale = np.trace(np.diag(singular) @ flip) / centred_source.var(axis=0).sum()
    shift = target_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, shift[:, None]])


def cut_out(rgb: np.ndarray, left: int, top: int, right: int, bottom: int) -> np.ndarray:
    """``rgb[top:bottom, left:right]``, where the parts outside the image repeat its edge pixels."""
    rows = np.clip(np.arange(top, bottom), 0, rgb.shape[0] - 1)
    columns = np.clip(np.arange(left, right), 0, rgb.shape[1] - 1)
    return rgb[rows[:, None], columns[None, :]]


def pil_affine(chip_to_photo: np.ndarray) -> np.ndarray:
    """A chip-to-photo matrix for landmark coordinates (pixel ``i`` at ``i``) in PIL's convention,
    where ``Image.transform`` samples the input at the matrix applied to output pixel centres
    (pixel ``i`` at ``i + 0.5``)."""
    linear, shift = chip_to_photo[:, :2], chip_to_photo[:, 2]
    return np.hstack([linear, (shift + 0.5 - linear @ np.array([0.5, 0.5]))[:, None]])


def warp_chip(rgb: np.ndarray, chip_to_photo: np.ndarray, side: int) -> np.ndarray:
    """The ``side`` x ``side`` chip that ``chip_to_photo`` (2 x 3, chip pixels to photo pixels)
    places in ``rgb``: cut out with its edge repeated where it runs past the photo, shrunk first
    with antialiasing when the face is larger than the chip (a bicubic warp alone would alias), then
    warped with PIL."""
    matrix = pil_affine(chip_to_photo)
    corners = matrix @ np.array([[0, side, 0, side], [0, 0, side, side], [1, 1, 1, 1]], np.float64)
    left, top = np.floor(corners.min(axis=1)).astype(int) - 2
    right, bottom = np.ceil(corners.max(axis=1)).astype(int) + 2
    region = Image.fromarray(cut_out(rgb, left, top, right, bottom))
    matrix[:, 2] -= (left, top)
    shrink = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))  # photo pixels per chip pixel
    if shrink > 1.5:
        width, height = region.size
        small = (max(1, round(width / shrink)), max(1, round(height / shrink)))
        region = region.resize(small, Image.Resampling.LANCZOS)
        matrix = np.diag([small[0] / width, small[1] / height]) @ matrix
    warped = region.transform(
        (side, side), Image.Transform.AFFINE, tuple(matrix.ravel()), resample=Image.Resampling.BICUBIC
    )
    return np.asarray(warped)


def align_face(rgb: np.ndarray, landmarks: np.ndarray, template: np.ndarray, side: int = CHIP_SIDE) -> np.ndarray:
    """The face whose five ``landmarks`` are in ``rgb``, warped onto ``template`` (five points in
    chip coordinates, ``CHIP_SIDE`` px) as a ``side`` x ``side`` RGB chip, like a UTKFace chip."""
    picks = list(ALIGN_POINTS)
    chip_points = np.asarray(template, np.float64)[picks] * side / CHIP_SIDE
    photo_points = np.asarray(landmarks, np.float64)[picks]
    chip_to_photo = similarity_transform(chip_points, photo_points)
    return warp_chip(rgb, chip_to_photo, side)
