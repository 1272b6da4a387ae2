"""Lesson 13 helpers: reading any photo, finding faces, predicting, the app, saving and TFLite.

The "good photo" is a synthetic face (not a real person, :mod:`agecourse.synthetic`) pasted into a
larger canvas: MTCNN finds the chosen synthetic faces (``example_photos.EXAMPLE_FACE_SEEDS``; it misses
most cartoon faces), so detection is tested offline. Detection on real UTKFace chips runs only where
the shared sample exists.
"""

from __future__ import annotations

import json
import random
from datetime import UTC
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agecourse import demo_app, deploy, example_photos
from agecourse.calibration import apply_temperature
from agecourse.config import get_settings
from agecourse.conformal import predicted_band
from agecourse.data import MIN_IMAGE_SIDE
from agecourse.synthetic import draw_face

FACE_SIDE = example_photos.EXAMPLE_FACE_SIDE
# Pasted at (x, y) = (150, 100) into a 500 x 400 canvas.
FACE_AT = (150, 100)
SEEDS = example_photos.EXAMPLE_FACE_SEEDS


def face_photo(seeds: tuple[int, ...] = SEEDS[:1], size: tuple[int, int] = (500, 400)) -> np.ndarray:
    """A plain grey 'photo' with synthetic faces pasted side by side (first at ``FACE_AT``)."""
    canvas = np.full((size[1], size[0], 3), 200, np.uint8)
    for i, seed in enumerate(seeds):
        x = FACE_AT[0] + i * (FACE_SIDE + 40)
        canvas[FACE_AT[1] : FACE_AT[1] + FACE_SIDE, x : x + FACE_SIDE] = draw_face(
            30 + seed, seed % 2, seed % 5, size=FACE_SIDE, rng=seed
        )
    return canvas


def no_face_photo() -> np.ndarray:
    """A smooth colour gradient: an image, but nothing like a face."""
    ramp = np.linspace(0, 255, 320, dtype=np.float32)
    return np.stack([np.tile(ramp, (240, 1)), np.tile(ramp[::-1], (240, 1)), np.full((240, 320), 90.0)], -1).astype(
        np.uint8
    )


def overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Area of the intersection of two ``(x, y, w, h)`` boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return max(0, min(ax + aw, bx + bw) - max(ax, bx)) * max(0, min(ay + ah, by + bh) - max(ay, by))


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    return overlap(a, b) / (a[2] * a[3] + b[2] * b[3] - overlap(a, b))


def on_pasted_face(box: tuple[int, int, int, int]) -> bool:
    """True when a face box lies (90 %) inside the pasted synthetic face and is centred on it.

    A synthetic face fills less of its square than a real UTKFace chip (MTCNN's box is about 0.7 of
    the square), so the box is smaller than the pasted square."""
    pasted = (*FACE_AT, FACE_SIDE, FACE_SIDE)
    centre = np.array([box[0] + box[2] / 2, box[1] + box[3] / 2])
    target = np.array(FACE_AT) + FACE_SIDE / 2
    return overlap(box, pasted) >= 0.9 * box[2] * box[3] and np.abs(centre - target).max() < 0.15 * FACE_SIDE


@pytest.fixture(scope="module")
def model():
    """A tiny untrained Model A: enough to test the plumbing (numbers are not meaningful)."""
    from agecourse.models import build_model_a
    from agecourse.training import set_seed

    set_seed(0)
    return build_model_a(32, filters=(8, 16), dense_units=16)


@pytest.fixture
def photo_file(tmp_path) -> Path:
    path = tmp_path / "good photo.jpg"
    Image.fromarray(face_photo()).save(path, quality=95)
    return path


# --- reading --------------------------------------------------------------------------------


def test_read_image_converts_every_mode_to_rgb(tmp_path, image_writer):
    for mode, fmt in [("RGB", "JPEG"), ("L", "PNG"), ("RGBA", "PNG"), ("CMYK", "JPEG")]:
        path = image_writer(tmp_path / f"x_{mode}.{fmt.lower()}", (40, 30), mode=mode, fmt=fmt)
        rgb = deploy.read_image(path)
        assert rgb.shape == (30, 40, 3) and rgb.dtype == np.uint8, mode
    gray = deploy.read_image(image_writer(tmp_path / "g.png", (20, 20), mode="L", fmt="PNG"))
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()


def test_cmyk_colours_survive(tmp_path):
    red = Image.new("RGB", (32, 32), (220, 30, 30))
    red.convert("CMYK").save(tmp_path / "red.jpg", quality=95)
    assert Image.open(tmp_path / "red.jpg").mode == "CMYK"
    rgb = deploy.read_image(tmp_path / "red.jpg")
    assert np.abs(rgb.reshape(-1, 3).mean(0) - (220, 30, 30)).max() < 12


def test_transparency_becomes_white_and_palette_and_16_bit_work(tmp_path):
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[:10, :, :] = (0, 0, 255, 255)  # top half opaque blue, bottom half fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "half.png")
    rgb = deploy.read_image(tmp_path / "half.png")
    assert (rgb[:10] == (0, 0, 255)).all() and (rgb[10:] == 255).all()
    Image.fromarray(face_photo()[:64, :64]).convert("P").save(tmp_path / "palette.gif")
    assert deploy.read_image(tmp_path / "palette.gif").shape == (64, 64, 3)
    deep = (np.arange(400, dtype=np.uint16).reshape(20, 20) * 150).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    rgb = deploy.read_image(tmp_path / "deep.png")
    assert rgb.shape == (20, 20, 3) and rgb.max() == 255 and rgb.min() == 0


def test_arrays_bytes_and_pil_images(photo_file):
    photo = face_photo()
    assert deploy.read_image(photo[..., 0]).shape == photo.shape  # grayscale array
    assert deploy.read_image(photo[..., :1]).shape == photo.shape
    rgba = np.concatenate([photo, np.full(photo.shape[:2] + (1,), 255, np.uint8)], -1).astype(np.float32)
    assert np.array_equal(deploy.read_image(rgba), photo)
    from_bytes = deploy.read_image(photo_file.read_bytes())
    from_pil = deploy.read_image(Image.open(photo_file))
    assert np.array_equal(from_bytes, from_pil) and from_bytes.shape == photo.shape
    with pytest.raises(deploy.NotAnImage, match="shape"):
        deploy.read_image(np.zeros((10, 10, 10, 3)), name="cube")
    with pytest.raises(TypeError, match="cannot read an image from a list"):
        deploy.read_image([1, 2, 3])


def test_exif_orientation_is_applied(tmp_path):
    upright = face_photo()
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # how a phone stores a portrait
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    stored.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    assert Image.open(tmp_path / "phone.jpg").size == (400, 500)
    rgb = deploy.read_image(tmp_path / "phone.jpg")
    assert rgb.shape == upright.shape
    assert np.abs(rgb.astype(int) - upright).mean() < 3
    assert deploy.detect_faces(rgb), "the face is found once the photo is upright"


def test_bad_files_get_clear_errors(tmp_path, image_writer):
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a picture")
    with pytest.raises(deploy.NotAnImage, match=r"notes\.jpg: not an image"):
        deploy.read_image(text)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(deploy.NotAnImage, match="empty.png"):
        deploy.read_image(empty)
    whole = image_writer(tmp_path / "whole.jpg", (64, 64)).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(deploy.NotAnImage, match="cut.jpg"):
        deploy.read_image(tmp_path / "cut.jpg")
    with pytest.raises(deploy.ImageNotFound, match="missing.jpg: no such file"):
        deploy.read_image(tmp_path / "missing.jpg")
    with pytest.raises(deploy.ImageNotFound, match="not a file"):
        deploy.read_image(tmp_path)
    tiny = image_writer(tmp_path / "tiny.png", (MIN_IMAGE_SIDE - 4, 40), fmt="PNG")
    with pytest.raises(deploy.ImageTooSmall, match=r"tiny\.png: image too small \(12x40 px\)"):
        deploy.read_image(tiny)
    assert issubclass(deploy.ImageTooSmall, ValueError)  # every DeployError is a ValueError


# --- detection and cropping -----------------------------------------------------------------


def test_detects_a_synthetic_face_where_it_was_pasted():
    boxes = deploy.detect_faces(face_photo())
    assert len(boxes) == 1
    assert on_pasted_face(boxes[0]), boxes
    crop = deploy.chip_box(boxes[0])
    assert crop[2] == crop[3]


def test_detects_two_faces_largest_first():
    boxes = deploy.detect_faces(face_photo(SEEDS, size=(720, 400)))
    assert len(boxes) == 2
    areas = [w * h for _, _, w, h in boxes]
    assert areas == sorted(areas, reverse=True)
    assert {box[0] < FACE_AT[0] + FACE_SIDE for box in boxes} == {True, False}  # one face each side


def test_no_face_in_a_gradient():
    assert deploy.detect_faces(no_face_photo()) == []


def test_detection_on_a_large_photo_maps_boxes_back():
    small = face_photo()
    large = np.kron(small, np.ones((3, 3, 1), np.uint8))  # 1500 x 1200: scaled down for detection
    (box,) = deploy.detect_faces(small)
    (big,) = deploy.detect_faces(large)
    assert iou(tuple(v * 3 for v in box), big) > 0.7


def test_chip_box_and_crop_chip_replicate_edges():
    side = round(deploy.CHIP_SIDE_PER_BOX * 100)  # the medians measured on training chips
    below = deploy.CHIP_CENTRE_BELOW_BOX * side
    assert deploy.chip_box((100, 100, 100, 100)) == (round(150 - side / 2), round(150 + below - side / 2), side, side)
    assert deploy.chip_box((10, 20, 40, 100))[2] == round(deploy.CHIP_SIDE_PER_BOX * 100)  # the longer side
    image = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3)
    crop = deploy.crop_chip(image, (-2, -1, 4, 4))
    assert crop.shape == (4, 4, 3)
    assert np.array_equal(crop[1:, 2:], image[:3, :2])
    assert np.array_equal(crop[0, 0], image[0, 0]) and np.array_equal(crop[3, 0], image[2, 0])
    resized = deploy.to_model_input(crop, (8, 8))
    assert resized.shape == (8, 8, 3) and resized.dtype == np.float32 and resized.max() <= 255


# --- predicting -----------------------------------------------------------------------------


def test_predict_a_good_photo(model, photo_file):
    (face,) = deploy.predict_faces(model, photo_file)
    assert face.detected and face.aligned and on_pasted_face(face.box)
    assert face.chip.shape == (200, 200, 3) and face.landmarks.shape == (5, 2) and 0.5 <= face.confidence <= 1
    assert face.age > 0 and 0 <= face.p_female <= 1
    assert face.gender == ("female" if face.p_female >= 0.5 else "male")
    assert face.crop.shape == (32, 32, 3) and face.heatmap is None
    assert face.label().startswith(face.gender) and f"age {face.age:.0f}" in face.label()
    record = face.to_dict()
    assert json.loads(json.dumps(record)) == record
    assert set(record) >= {"box", "age", "p_female", "gender", "landmarks", "confidence", "aligned"}


def test_each_age_comes_with_the_models_interval_when_it_has_one(model, photo_file):
    (plain,) = deploy.predict_faces(model, photo_file)
    (face,) = deploy.predict_faces(model, photo_file, age_interval={"half_width": 5.0, "level": 0.9})
    assert plain.age_interval is None and plain.to_dict()["age_interval"] is None
    low, high, level = face.age_interval
    assert (low, high, level) == pytest.approx((max(0.0, face.age - 5), max(0.0, face.age) + 5, 0.9))
    assert f"age about {face.age:.0f} (90% interval {low:.0f}-{high:.0f})" in face.label()
    assert face.to_dict()["age_interval"] == [round(low, 2), round(high, 2), 0.9]
    (wide,) = deploy.predict_faces(model, photo_file, age_interval={"half_width": 500.0, "level": 0.9})
    assert wide.age_interval[0] == 0.0  # never below 0
    # One width per band of the predicted age, where the calibration has one (the shipped models do).
    band = str(predicted_band([face.age])[0])
    (banded,) = deploy.predict_faces(
        model, photo_file, age_interval={"half_width": 5.0, "band_half_widths": {band: 2.0}, "level": 0.9}
    )
    assert banded.age_interval[1] == pytest.approx(max(0.0, face.age) + 2.0)


def test_a_gender_temperature_scales_the_probability_without_changing_the_gender(model, photo_file):
    (plain,) = deploy.predict_faces(model, photo_file)
    (scaled,) = deploy.predict_faces(model, photo_file, gender_temperature=3.0)
    assert scaled.p_female == pytest.approx(float(apply_temperature(plain.p_female, 3.0)))
    assert scaled.gender == plain.gender and abs(scaled.p_female - 0.5) <= abs(plain.p_female - 0.5)
    (many,) = deploy.predict_many(model, [photo_file], gender_temperature=3.0)
    assert many.faces[0].p_female == pytest.approx(scaled.p_female)


def test_predictions_match_the_model_on_the_same_crop(model):
    photo = face_photo()
    (face,) = deploy.predict_faces(model, photo)
    age, gender = model.predict(face.crop[None], verbose=0)
    assert face.age == pytest.approx(float(age[0, 0]), abs=1e-3)
    assert face.p_female == pytest.approx(float(gender[0, 0]), abs=1e-5)


def test_predict_with_gradcam(model):
    (face,) = deploy.predict_faces(model, face_photo(), gradcam=True)
    assert face.heatmap.shape == (32, 32)
    assert np.isfinite(face.heatmap).all() and face.heatmap.min() >= 0 and face.heatmap.max() <= 1
    (picture,) = deploy.face_overlays([face])
    assert picture.shape == (32, 32, 3) and picture.dtype == np.uint8


def test_predict_without_detection_pads_to_a_square(model):
    chip = draw_face(40, 1, 2, size=64, rng=3)
    (face,) = deploy.predict_faces(model, chip[:, 8:56], detect=False)  # 48 x 64: already a face
    assert not face.detected and face.box == (0, 0, 48, 64) and face.landmarks is None
    assert face.chip.shape == (200, 200, 3)
    assert (
        np.abs(face.chip[:, 25:175].astype(int) - np.asarray(Image.fromarray(chip[:, 8:56]).resize((150, 200)))).mean()
        < 6
    )


def test_no_face_message(model):
    with pytest.raises(deploy.NoFaceFound, match=r"gradient: no face found in the 320x240 px image.*detect=False"):
        deploy.predict_faces(model, no_face_photo(), name="gradient")


def test_predict_many_keeps_going_and_reports_each_problem(model, tmp_path, photo_file, image_writer):
    (tmp_path / "notes.txt").write_text("hello")
    Image.fromarray(no_face_photo()).save(tmp_path / "wall.png")
    tiny = image_writer(tmp_path / "tiny.png", (8, 8), fmt="PNG")
    sources = [photo_file, tmp_path / "notes.txt", tiny, tmp_path / "wall.png", tmp_path / "gone.jpg"]
    results = deploy.predict_many(model, sources)
    assert [r.ok for r in results] == [True, False, False, False, False]
    assert len(results[0].faces) == 1
    errors = [r.error for r in results[1:]]
    assert "notes.txt: not an image" in errors[0]
    assert "tiny.png: image too small (8x8 px)" in errors[1]
    assert "wall.png: no face found" in errors[2]
    assert "gone.jpg: no such file" in errors[3]
    json.dumps([r.to_dict() for r in results])


# --- drawing and the app --------------------------------------------------------------------


def test_draw_and_save_outputs(model, tmp_path):
    photo = face_photo()
    faces = deploy.predict_faces(model, photo, gradcam=True)
    drawn = np.asarray(deploy.draw_faces(photo, faces))
    assert drawn.shape == photo.shape and not np.array_equal(drawn, photo)  # boxes and captions drawn
    x, y, w, h = faces[0].box
    assert not np.array_equal(drawn[y + h // 2, x], photo[y + h // 2, x])  # on the box's left edge
    numbered = np.asarray(deploy.draw_faces(photo, faces, numbered=True))
    assert not np.array_equal(numbered, drawn)  # "1: " before the caption
    paths = deploy.save_outputs(photo, faces, tmp_path / "out", "photo")
    assert [p.name for p in paths] == ["photo_faces.png", "photo_face1_gradcam.png"]
    assert Image.open(paths[1]).size == (192, 192)


def test_app_builds_and_analyses_uploads(model, photo_file):
    import ipywidgets as widgets

    app = demo_app.make_app(model, gradcam=True)
    assert isinstance(app, widgets.VBox)
    controls, status, results = app.children
    assert isinstance(controls.children[0], widgets.FileUpload)
    faces = app.analyse(photo_file.read_bytes(), "holiday.jpg")
    assert len(faces) == 1 and "holiday.jpg: 1 face" in status.value and faces[0].label() in status.value
    boxed, heatmaps = results.children
    assert isinstance(boxed, widgets.Image) and boxed.value[:4] == b"\x89PNG"
    assert len(heatmaps.children) == 1
    assert app.analyse(b"not an image", "notes.txt") == []
    assert "Cannot use this photo" in status.value and "notes.txt: not an image" in status.value
    assert results.children == ()


def test_app_reacts_to_an_upload_event(model, photo_file):
    from datetime import datetime

    now = datetime.now(UTC)
    app = demo_app.make_app(model, gradcam=False)
    upload = app.children[0].children[0]
    content = photo_file.read_bytes()
    upload.value = (  # ipywidgets 8's shape (the installed one): content is a memoryview
        {"name": "me.jpg", "type": "image/jpeg", "size": len(content), "content": memoryview(content),
         "last_modified": now},
    )  # fmt: skip
    assert "me.jpg: 1 face" in app.children[1].value


def test_app_example_button_and_about_text(model):
    import ipywidgets as widgets

    app = demo_app.make_app(
        model, gradcam=False, about="<b>Model: tiny test model</b>", example=example_photos.group_photo()
    )
    about, controls, status, results = app.children
    assert isinstance(about, widgets.HTML) and "tiny test model" in about.value
    (button,) = [w for w in controls.children if isinstance(w, widgets.Button)]
    button.click()
    assert "example photo (synthetic faces): 2 faces" in status.value
    assert "agecourse-boxed" in results.children[0]._dom_classes


# --- example photos and the demo model -------------------------------------------------------


def test_group_photo_of_example_faces_has_two_findable_faces():
    photo = example_photos.group_photo()
    side = example_photos.EXAMPLE_FACE_SIDE
    assert photo.shape == (side + 2 * 70, 2 * 70 + 2 * side + 40, 3) and photo.dtype == np.uint8
    boxes = deploy.detect_faces(photo)
    assert len(boxes) == 2
    chips = example_photos.example_faces(64)
    assert len(chips) == 2 and chips[0].shape == (64, 64, 3)
    custom = example_photos.group_photo(chips[:1], side=100, margin=10)
    assert custom.shape == (120, 120, 3)
    with pytest.raises(ValueError, match="at least one face"):
        example_photos.group_photo([])


def test_pick_detectable_skips_images_without_a_findable_face():
    faces = [example_photos.group_photo([face]) for face in example_photos.example_faces()]
    picked = example_photos.pick_detectable([no_face_photo(), faces[0], no_face_photo(), faces[1]], n=2)
    assert len(picked) == 2 and picked[0] is faces[0] and picked[1] is faces[1]
    with pytest.raises(ValueError, match="only 1 of the images"):
        example_photos.pick_detectable([no_face_photo(), faces[0]], n=2)


@pytest.mark.parametrize(
    ("mode", "fmt", "stored"), [("L", "PNG", "L"), ("RGBA", "PNG", "RGBA"), ("CMYK", "JPEG", "CMYK"), ("P", "PNG", "P")]
)
def test_encode_image_modes_read_back_alike(mode, fmt, stored):
    import io

    photo = face_photo()
    data = example_photos.encode_image(photo, mode=mode, fmt=fmt)
    assert Image.open(io.BytesIO(data)).mode == stored
    rgb = deploy.read_image(data)
    assert rgb.shape == photo.shape
    tolerance = 40 if mode == "L" else 12  # grayscale loses colour; the others only rounding / JPEG
    assert np.abs(rgb.astype(int) - photo).mean() < tolerance
    assert deploy.detect_faces(rgb), f"the face is still found in the {mode} copy"


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_encode_image_with_orientation_reads_back_upright(orientation):
    import io

    photo = face_photo()
    data = example_photos.encode_image(photo, orientation=orientation)
    stored = Image.open(io.BytesIO(data))
    assert stored.getexif()[0x0112] == orientation
    assert stored.size == ((400, 500) if orientation in (6, 8) else (500, 400))
    assert np.abs(deploy.read_image(data).astype(int) - photo).mean() < 3
    with pytest.raises(ValueError, match="orientation must be one of"):
        example_photos.encode_image(photo, orientation=5)


def test_save_and_load_keep_predictions(model, tmp_path):
    batch = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    path = deploy.save_model(model, tmp_path / "models" / "tiny.keras")
    loaded = deploy.load_model(path)
    for before, after in zip(model.predict(batch, verbose=0), loaded.predict(batch, verbose=0)):
        np.testing.assert_allclose(before, after, rtol=1e-5, atol=1e-5)
    assert deploy.input_size(loaded) == (32, 32)
    with pytest.raises(ValueError, match=r"\.keras suffix"):
        deploy.save_model(model, tmp_path / "tiny.h5")
    with pytest.raises(deploy.ModelLoadError, match="nothing.keras: no such model file"):
        deploy.load_model(tmp_path / "nothing.keras")
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    with pytest.raises(deploy.ModelLoadError, match="broken.keras: cannot load"):
        deploy.load_model(tmp_path / "broken.keras")


def test_tflite_export_agrees_with_keras(model, tmp_path):
    path = deploy.export_tflite(model, tmp_path / "tiny.tflite")
    assert path.stat().st_size > 1000
    batch = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    gaps = deploy.tflite_parity(model, path, batch)
    assert gaps["age_years"] < 1e-3 and gaps["p_female"] < 1e-4


# --- real faces -----------------------------------------------------------------------------


@pytest.mark.real_data
def test_mtcnn_finds_real_utkface_chips_without_padding(real_data_dir):
    files = sorted(real_data_dir.glob("*.jpg"))
    random.Random(0).shuffle(files)
    chips = [deploy.read_image(f) for f in files[:30]]
    found = sum(bool(deploy.detect_faces(c)) for c in chips)
    assert found >= 0.85 * len(chips), f"MTCNN found faces in only {found}/{len(chips)} chips"


@pytest.mark.real_data
def test_a_real_chip_in_a_tilted_photo_predicts_like_the_chip(real_data_dir):
    """The shipped Model B on a real chip, and on the same chip turned by 10° inside a larger photo:
    alignment brings it back, so the predictions agree closely."""
    from agecourse import course_models

    model = course_models.load("model-b")
    path = sorted(real_data_dir.glob("*.jpg"))[100]
    chip = Image.open(path).convert("RGB")
    framed = np.pad(np.asarray(chip), ((24, 24), (24, 24), (0, 0)), mode="symmetric")
    turned = Image.fromarray(framed).resize((372, 372)).rotate(10, resample=Image.Resampling.BICUBIC)
    photo = Image.new("RGB", (800, 600), (70, 90, 110))
    photo.paste(turned, (200, 120))
    (direct,) = deploy.predict_faces(model, path, detect=False)
    (through,) = deploy.predict_faces(model, np.asarray(photo))
    assert through.aligned and abs(through.age - direct.age) < 4 and abs(through.p_female - direct.p_female) < 0.2


# --- bad input: too small a face, huge images, 16-bit, the upload shapes -------------------


def test_a_face_smaller_than_the_minimum_is_refused_clearly(model):
    photo = face_photo()
    small_faces = get_settings("ci").replace(face_min_side=400)
    with pytest.raises(
        deploy.FaceTooSmall, match=r"party\.jpg: the largest face found is \d+ px, smaller than the 400 px"
    ):
        deploy.predict_faces(model, photo, name="party.jpg", settings=small_faces)
    assert deploy.detect_faces(photo, settings=small_faces) == []
    assert issubclass(deploy.FaceTooSmall, deploy.DeployError)


def test_a_huge_jpeg_is_read_scaled_down_and_its_face_found(tmp_path):
    photo = face_photo()
    huge = np.kron(photo, np.ones((12, 12, 1), np.uint8))  # 6000 x 4800 px: 29 megapixels
    path = tmp_path / "huge.jpg"
    Image.fromarray(huge).save(path, quality=90)
    del huge
    rgb = deploy.read_image(path)
    assert max(rgb.shape[:2]) == deploy.MAX_PHOTO_SIDE and rgb.shape[1] / rgb.shape[0] == pytest.approx(1.25, abs=0.01)
    (box,) = deploy.detect_faces(rgb)
    scale = deploy.MAX_PHOTO_SIDE / 500
    assert abs(box[0] + box[2] / 2 - scale * (FACE_AT[0] + FACE_SIDE / 2)) < 0.15 * scale * FACE_SIDE


def test_an_image_over_the_pixel_limit_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "poster.png"
    Image.fromarray(face_photo()).save(path)
    monkeypatch.setattr(deploy, "MAX_PIXELS", 100_000)  # the photo has 200,000
    with pytest.raises(deploy.ImageTooLarge, match=r"poster\.png: image too large to decode safely \(500x400 px"):
        deploy.read_image(path)
    assert deploy.read_image(example_photos.encode_image(face_photo())).shape == (400, 500, 3)  # JPEG: decoded small


def test_arrays_larger_than_the_limit_are_scaled_down():
    rgb = deploy.read_image(np.zeros((3000, 5000, 3), np.uint8), max_side=1000)
    assert rgb.shape == (600, 1000, 3)


def test_a_16_bit_grayscale_png_with_a_face(tmp_path):
    gray = face_photo().astype(np.float64).mean(axis=-1)
    deep = Image.fromarray((gray * 257).round().astype(np.uint16))
    deep.save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    rgb = deploy.read_image(tmp_path / "deep.png")
    assert rgb.dtype == np.uint8 and rgb.shape == (400, 500, 3)
    assert deploy.detect_faces(rgb), "the face is found in the 16-bit grayscale copy"


def test_uploaded_files_reads_both_ipywidgets_shapes(photo_file):
    content = photo_file.read_bytes()
    version_8 = (
        {"name": "me.jpg", "type": "image/jpeg", "size": len(content), "content": memoryview(content),
         "last_modified": 0},
    )  # fmt: skip
    version_7 = {
        "me.jpg": {
            "metadata": {"name": "me.jpg", "type": "image/jpeg", "size": len(content), "lastModified": 0},
            "content": content,
        }
    }
    assert demo_app.uploaded_files(version_8) == [("me.jpg", content)]
    assert demo_app.uploaded_files(version_7) == [("me.jpg", content)]
    assert demo_app.uploaded_files(()) == [] and demo_app.uploaded_files({}) == []


def test_the_app_analyses_an_ipywidgets_7_upload(model, photo_file):
    app = demo_app.make_app(model, gradcam=False)
    content = photo_file.read_bytes()
    ((name, data),) = demo_app.uploaded_files({"old.jpg": {"metadata": {"name": "old.jpg"}, "content": content}})
    faces = app.analyse(data, name)
    assert len(faces) == 1 and "old.jpg: 1 face" in app.children[1].value
