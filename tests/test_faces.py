"""agecourse.faces: MTCNN detection, the landmark template and the similarity-transform alignment.

Detection runs on the synthetic example faces (not real people) that MTCNN finds; alignment is tested
on images made here, where the right answer is known. Real chips are used only where ../shared exists.
"""

from __future__ import annotations

import dataclasses
import math
import random

import numpy as np
import pytest
from PIL import Image

from agecourse import example_photos, faces
from agecourse.config import Settings, get_settings


def rotation_matrix(angle_degrees: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    angle = math.radians(angle_degrees)
    rotation = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return np.hstack([rotation, np.array(shift, np.float64)[:, None]])


def test_similarity_transform_recovers_a_known_transform():
    source = np.random.default_rng(0).uniform(0, 200, (5, 2))
    truth = rotation_matrix(17.0, 1.7, (40.0, -12.5))
    target = source @ truth[:, :2].T + truth[:, 2]
    np.testing.assert_allclose(faces.similarity_transform(source, target), truth, atol=1e-9)


def test_similarity_transform_is_the_least_squares_fit_and_never_mirrors():
    rng = np.random.default_rng(1)
    source = rng.uniform(0, 100, (6, 2))
    mirrored = source * np.array([-1.0, 1.0]) + rng.normal(0, 0.5, source.shape)
    matrix = faces.similarity_transform(source, mirrored)
    assert np.linalg.det(matrix[:, :2]) > 0  # a rotation and a scale, not a reflection
    fitted = source @ matrix[:, :2].T + matrix[:, 2]
    error = ((fitted - mirrored) ** 2).sum()
    for nudge in (rotation_matrix(2.0, 1.0, (0, 0)), rotation_matrix(0.0, 1.03, (0.5, 0))):
        nudged = (fitted - fitted.mean(0)) @ nudge[:, :2].T + fitted.mean(0) + nudge[:, 2]
        assert error <= ((nudged - mirrored) ** 2).sum()


def test_cut_out_repeats_the_edge():
    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    piece = faces.cut_out(image, -2, -1, 3, 5)
    assert piece.shape == (6, 5, 3)
    assert np.array_equal(piece[1:5, 2:5], image[:, :3])
    assert np.array_equal(piece[0, 0], image[0, 0]) and np.array_equal(piece[5, 4], image[3, 2])


def test_align_face_undoes_a_rotation_and_scale():
    """A chip turned by 12°, scaled by 1.6 and moved comes back to the chip when its landmarks are
    known: the warp is exact up to resampling."""
    rng = np.random.default_rng(2)
    coarse = rng.uniform(0, 255, (20, 20, 3)).astype(np.uint8)
    chip = np.asarray(Image.fromarray(coarse).resize((200, 200), Image.Resampling.BICUBIC))
    template = faces.face_template()["points"]
    chip_to_photo = rotation_matrix(12.0, 1.6, (250.0, 120.0))
    photo = np.asarray(
        Image.fromarray(chip).transform(
            (700, 600),
            Image.Transform.AFFINE,
            tuple(np.linalg.inv(np.vstack([faces.pil_affine(chip_to_photo), [0, 0, 1]]))[:2].ravel()),
            resample=Image.Resampling.BICUBIC,
        )
    )
    landmarks = template @ chip_to_photo[:, :2].T + chip_to_photo[:, 2]
    aligned = faces.align_face(photo, landmarks, template)
    assert aligned.shape == (200, 200, 3) and aligned.dtype == np.uint8
    inner = (slice(10, 190), slice(10, 190))
    assert np.abs(aligned[inner].astype(int) - chip[inner]).mean() < 4
    half = faces.align_face(photo, landmarks, template, side=100)
    assert half.shape == (100, 100, 3)


def test_align_face_near_the_edge_repeats_it():
    photo = np.full((300, 300, 3), 90, np.uint8)
    photo[:, :150] = 200
    template = faces.face_template()["points"]
    landmarks = template - 120  # most of the chip lies above and left of the photo
    aligned = faces.align_face(photo, landmarks, template)
    assert aligned.shape == (200, 200, 3) and aligned.min() >= 90  # no black fill


def test_template_is_package_data_with_its_provenance():
    template = faces.face_template()
    points = template["points"]
    assert points.shape == (5, 2) and template["landmarks"] == list(faces.LANDMARKS)
    left_eye, right_eye, nose, mouth_left, mouth_right = points
    assert left_eye[0] < nose[0] < right_eye[0] and abs(left_eye[1] - right_eye[1]) < 5  # eyes level
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    made = template["made_from"]
    assert "'train'" in made["split"] and made["count"] > 100 and {"seed", "date", "searched"} <= set(made)
    assert faces.TEMPLATE_FILE.name == "face_template.json"


def test_detection_settings_come_from_settings():
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    assert faces.detection_options() == (tuple(defaults["face_thresholds"]), defaults["face_min_side"])
    custom = get_settings("ci").replace(face_thresholds=(0.5, 0.6, 0.99), face_min_side=80)
    assert faces.detection_options(custom) == ((0.5, 0.6, 0.99), 80)


def test_finds_the_synthetic_example_faces_with_landmarks():
    photo = example_photos.group_photo()
    found = faces.find_faces(photo)
    assert len(found) == 2
    assert found[0].box[2] * found[0].box[3] >= found[1].box[2] * found[1].box[3]  # largest first
    for face in found:
        x, y, w, h = face.box
        assert face.landmarks.shape == (5, 2) and 0.5 <= face.confidence <= 1
        inside = (face.landmarks[:, 0] >= x) & (face.landmarks[:, 0] <= x + w)
        inside &= (face.landmarks[:, 1] >= y) & (face.landmarks[:, 1] <= y + h)
        assert inside.all()
        left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
        assert left_eye[0] < right_eye[0] and max(left_eye[1], right_eye[1]) < min(mouth_left[1], mouth_right[1])


def test_finds_faces_in_a_large_photo_and_maps_them_back():
    small = example_photos.group_photo()
    large = np.kron(small, np.ones((4, 4, 1), np.uint8))  # 2,480 px wide: searched at 1,024
    first, big = faces.find_faces(small)[0], faces.find_faces(large)[0]
    assert abs(big.box[0] - 4 * first.box[0]) < 0.1 * big.box[2] and abs(big.side - 4 * first.side) < 0.15 * big.side
    np.testing.assert_allclose(big.landmarks, 4 * first.landmarks, atol=0.06 * big.side)


def test_no_face_in_a_gradient():
    ramp = np.linspace(0, 255, 320, dtype=np.float32)
    gradient = np.stack([np.tile(ramp, (240, 1))] * 3, -1).astype(np.uint8)
    assert faces.find_faces(gradient) == []


def test_a_stage_given_no_candidate_boxes_is_not_run():
    """Keras 3.13 (Colab's) raises on a zero-size batch where mtcnn expects TensorFlow's
    InvalidArgumentError, so an empty batch must never reach the next network."""
    calls = []

    class Stage:
        id, name = 2, "Stage RNET"

        def __call__(self, bboxes_batch=None, **kwargs):
            calls.append(len(bboxes_batch))
            return bboxes_batch[:, :6]

    stage = faces.StopWhenEmpty(Stage())
    assert stage(bboxes_batch=np.empty((0, 6)), images_normalized=None).shape == (0, 16)
    assert calls == []
    assert stage(bboxes_batch=np.ones((3, 16))).shape == (3, 6) and calls == [3]
    assert (stage.id, stage.name) == (2, "Stage RNET")
    assert all(isinstance(s, faces.StopWhenEmpty) for s in faces.detector().stages)


@pytest.mark.real_data
def test_aligned_training_chips_keep_their_landmarks_near_the_template(real_data_dir):
    """On real chips the landmarks of the aligned chip sit on the template (within a few pixels)."""
    files = sorted(real_data_dir.glob("*.jpg"))
    random.Random(3).shuffle(files)
    template = faces.face_template()["points"]
    distances = []
    for path in files[:12]:
        chip = np.asarray(Image.open(path).convert("RGB"))
        found = faces.find_faces(chip)
        if not found:
            continue
        aligned = faces.align_face(chip, found[0].landmarks, template)
        again = faces.find_faces(aligned)
        if again:
            picks = list(faces.ALIGN_POINTS)
            distances.append(np.linalg.norm(again[0].landmarks[picks] - template[picks], axis=1).mean())
    assert len(distances) >= 8 and np.median(distances) < 5, distances
