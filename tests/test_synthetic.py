"""Synthetic faces (not real people): deterministic, UTKFace-like labels, any size, always labelled
synthetic, and learnable by a tiny CNN (the property every offline lesson and test relies on)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from agecourse import face_drawing, synthetic
from agecourse.data import parse_filename, scan_folder
from agecourse.synthetic import (
    GENERATOR_VERSION,
    MANIFEST_NAME,
    default_synthetic_dir,
    draw_face,
    face_rng,
    make_synthetic_faces,
    sample_labels,
)


def _files(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# --- determinism ------------------------------------------------------------------------------


def test_same_seed_gives_identical_files_and_labels(tmp_path):
    a = make_synthetic_faces(tmp_path / "a", n=12, size=32, seed=5)
    b = make_synthetic_faces(tmp_path / "b", n=12, size=32, seed=5)
    assert _files(a) == _files(b)
    # Face i carries row i of sample_labels in its name (the fake date is 20000101000000000 + i).
    found = scan_folder(a).images
    order = found["path"].map(lambda p: int(parse_filename(p).datetime) - 20000101000000000)
    labels = found.assign(i=order).sort_values("i")[["age", "gender", "race"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(labels, sample_labels(12, seed=5), check_dtype=False)


def test_different_seeds_give_different_faces_and_labels(tmp_path):
    a = make_synthetic_faces(tmp_path / "a", n=12, size=32, seed=1)
    b = make_synthetic_faces(tmp_path / "b", n=12, size=32, seed=2)
    assert sorted(p.name for p in a.iterdir()) != sorted(p.name for p in b.iterdir())
    assert not sample_labels(50, seed=1).equals(sample_labels(50, seed=2))
    same_labels = [draw_face(30, 1, 2, size=32, rng=face_rng(s, 0)) for s in (1, 2)]
    assert not np.array_equal(*same_labels)


def test_draw_face_is_a_pure_function_of_labels_and_generator():
    first = draw_face(40, 0, 1, size=48, rng=face_rng(3, 7))
    again = draw_face(40, 0, 1, size=48, rng=face_rng(3, 7))
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(draw_face(40, 0, 1, size=48, rng=11), draw_face(40, 0, 1, size=48, rng=11))


def test_existing_set_is_reused_not_redrawn(tmp_path):
    folder = make_synthetic_faces(tmp_path / "s", n=6, size=24, seed=0)
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    make_synthetic_faces(folder, n=6, size=24, seed=0)
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps
    # Other parameters replace the stale synthetic set completely.
    make_synthetic_faces(folder, n=4, size=24, seed=0)
    assert len(scan_folder(folder).images) == 4


# --- labels -------------------------------------------------------------------------------------


def test_label_distribution_is_utkface_like():
    labels = sample_labels(20_000, seed=0)
    age = labels["age"]
    assert age.min() >= 1 and age.max() <= 116 and age.max() >= 90  # babies to a long tail past 90
    toddlers = age.between(1, 5).mean()
    assert 0.07 < toddlers < 0.16  # UTKFace: about 11 % aged 1-5
    assert age.between(20, 39).mean() > 0.4  # the broad adult peak
    assert age.value_counts().idxmax() in range(1, 40)
    assert 25 < age.median() < 35
    assert abs(labels["gender"].mean() - 0.48) < 0.02  # 52 % male, 48 % female
    assert set(labels["gender"]) == {0, 1}
    race_share = labels["race"].value_counts(normalize=True).sort_index()
    assert list(race_share.index) == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(race_share.to_numpy(), [0.42, 0.19, 0.15, 0.17, 0.07], atol=0.02)


def test_sample_labels_rejects_negative_count():
    with pytest.raises(ValueError, match="n must be"):
        sample_labels(-1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"age": 117, "gender": 0, "race": 0}, "age"),
        ({"age": 20, "gender": 2, "race": 0}, "gender"),
        ({"age": 20, "gender": 0, "race": 5}, "race"),
        ({"age": 20, "gender": 0, "race": 0, "size": 4}, "size"),
    ],
)
def test_draw_face_rejects_bad_labels(kwargs, message):
    with pytest.raises(ValueError, match=message):
        draw_face(**kwargs)


# --- no caricature: the race code changes the skin tone, not the face -----------------------------


@pytest.mark.parametrize(("age", "gender"), [(1, 0), (9, 1), (24, 1), (30, 0), (55, 1), (80, 0)])
def test_race_code_changes_skin_tone_not_geometry(age, gender):
    """With the same generator, the outline (alpha mask) of every part of the face -- head, eyes, nose,
    mouth, hair -- is identical for the five race codes; only colours differ."""
    for seed in range(4):
        layers = [face_drawing.draw_layer(age, gender, race, 96, face_rng(seed, age)) for race in range(5)]
        masks = [np.asarray(layer)[..., 3] for layer in layers]
        for race, mask in enumerate(masks[1:], start=1):
            np.testing.assert_array_equal(mask, masks[0], err_msg=f"race code {race} changed the geometry")
        # Same shapes, different colours: the drawing as a whole is not identical.
        assert not np.array_equal(np.asarray(layers[0]), np.asarray(layers[1]))


def test_eye_and_hair_colours_do_not_depend_on_race_code():
    """Hair and iris colours come from one shared distribution: with the same generator, the hair
    colour and the eye colour are the same whatever the race code (the skin tone is drawn before them
    with the same number of random numbers)."""
    for seed in range(20):
        faces = []
        for race in range(5):
            rng = face_rng(seed, 3)
            face = face_drawing._proportions(30.0, seed % 2, race, rng)
            face_drawing._hair_style(face, rng)
            faces.append((face.hair, face.style, face.eye_ry, face.jaw))
        assert all(f == faces[0] for f in faces[1:])


def test_skin_tone_distribution_varies_with_race_code():
    """Codes 0 and 1 have clearly different average skin tones, but the ranges overlap."""

    def brightness(race: int) -> np.ndarray:
        return np.array([sum(face_drawing._skin(face_rng(i, 0), race, 30)) / 3 for i in range(300)])

    light, dark = brightness(0), brightness(1)
    assert light.mean() - dark.mean() > 60
    # Overlap: some faces coded 4 ("Others") are lighter than some coded 0, and darker than some coded 1.
    others = brightness(4)
    assert others.max() > light.min() and others.min() < dark.max()


def test_older_generator_versions_are_redrawn(tmp_path):
    folder = make_synthetic_faces(tmp_path / "s", n=3, size=24, seed=0)
    manifest = folder / MANIFEST_NAME
    assert f"generator_version={GENERATOR_VERSION}" in manifest.read_text()
    manifest.write_text(manifest.read_text().replace(f"generator_version={GENERATOR_VERSION}", "generator_version=1"))
    faces = [p for p in folder.iterdir() if p.name != MANIFEST_NAME]
    for path in faces:
        os.utime(path, ns=(0, 0))  # a redrawn file gets a new time stamp
    make_synthetic_faces(folder, n=3, size=24, seed=0)
    assert f"generator_version={GENERATOR_VERSION}" in manifest.read_text()
    assert all(path.stat().st_mtime_ns > 0 for path in faces)


def test_drawing_steps_are_small_functions():
    """Issue 12: the face is drawn by small named steps, none longer than about 40 lines."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(face_drawing) + inspect.getsource(synthetic))
    lengths = {
        node.name: node.end_lineno - node.lineno + 1
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and (node.name.startswith("_draw") or node.name in ("draw_face", "_proportions"))
    }
    assert len(lengths) >= 10
    assert max(lengths.values()) <= 45, lengths


# --- sizes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [16, 33, 100, 200])
def test_any_image_size(size):
    face = draw_face(25, 1, 3, size=size, rng=0)
    assert face.shape == (size, size, 3) and face.dtype == np.uint8
    assert face.std() > 10  # a picture, not a flat colour


# --- always labelled synthetic --------------------------------------------------------------------


def test_files_are_utkface_named_and_marked_synthetic(tmp_path):
    folder = make_synthetic_faces(tmp_path / "set", n=10, size=32, seed=9)
    manifest = (folder / MANIFEST_NAME).read_text()
    assert "SYNTHETIC FACES - NOT REAL PEOPLE" in manifest and "seed=9" in manifest
    images = sorted(p for p in folder.iterdir() if p.name != MANIFEST_NAME)
    assert len(images) == 10
    for path in images:
        assert path.name.endswith(".jpg.chip.jpg")
        parse_filename(path.name)  # the normal UTKFace loader reads them
    result = scan_folder(folder)
    assert len(result.images) == 10
    assert list(result.rejects["file"]) == [str(folder / MANIFEST_NAME)]  # the note, counted like any non-image


def test_default_folder_name_says_synthetic(monkeypatch, tmp_path):
    monkeypatch.setenv("AGECOURSE_DATA_DIR", str(tmp_path))
    assert default_synthetic_dir(600, 64, 42) == tmp_path / "synthetic-faces-n600-s64-seed42"


def test_course_data_source_says_synthetic():
    from agecourse.config import get_settings
    from agecourse.data import load_course_data

    loaded = load_course_data(get_settings("ci", synthetic_count=40))
    assert "synthetic faces (not real people)" in loaded.source
    assert len(loaded.images) == 40 and len(loaded.rejects) == 1


def test_never_mixes_into_a_folder_of_other_images(tmp_path, image_writer):
    image_writer(tmp_path / "real" / "25_0_1_20170116174525125.jpg.chip.jpg")
    with pytest.raises(FileExistsError, match="not synthetic faces"):
        make_synthetic_faces(tmp_path / "real", n=5, size=32)
    assert len(os.listdir(tmp_path / "real")) == 1


# --- learnable ------------------------------------------------------------------------------------


def _tiny_cnn(size: int, age_mean: float):
    """Three conv blocks and a small dense layer: about 0.1 M parameters."""
    import keras
    from keras import layers

    inputs = keras.Input((size, size, 3))
    x = layers.Rescaling(1 / 255)(inputs)
    for filters in (12, 24, 48):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Dense(48, activation="relu")(layers.Flatten()(x))
    # The age head starts at the training mean and works in units of 20 years.
    age = layers.Rescaling(20.0, offset=age_mean, name="age")(layers.Dense(1)(x))
    gender = layers.Dense(1, activation="sigmoid", name="gender")(x)
    return keras.Model(inputs, {"age": age, "gender": gender})


def test_synthetic_faces_are_learnable():
    """A tiny CNN, trained for a few epochs on 600 synthetic faces, must beat guessing the mean age
    by a wide margin and tell gender far above chance on 200 faces it never saw."""
    import keras

    n, size, n_train, epochs, batch = 800, 48, 600, 12, 16
    labels = sample_labels(n, seed=7)
    faces = np.stack(
        [
            draw_face(int(a), int(g), int(r), size=size, rng=face_rng(7, i))
            for i, (a, g, r) in enumerate(labels[["age", "gender", "race"]].itertuples(index=False))
        ]
    )
    age = labels["age"].to_numpy(np.float32)
    gender = labels["gender"].to_numpy(np.float32)

    keras.utils.set_random_seed(0)
    model = _tiny_cnn(size, float(age[:n_train].mean()))
    steps = epochs * -(-n_train // batch)
    model.compile(
        keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(3e-3, steps)),
        loss={"age": "huber", "gender": "binary_crossentropy"},
        loss_weights={"age": 0.1, "gender": 1.0},
    )
    model.fit(
        faces[:n_train],
        {"age": age[:n_train], "gender": gender[:n_train]},
        epochs=epochs,
        batch_size=batch,
        verbose=0,
    )
    predicted = model.predict(faces[n_train:], verbose=0)
    mae = float(np.abs(predicted["age"].reshape(-1) - age[n_train:]).mean())
    baseline = float(np.abs(age[:n_train].mean() - age[n_train:]).mean())  # predict-the-mean
    accuracy = float(((predicted["gender"].reshape(-1) >= 0.5) == gender[n_train:]).mean())
    print(f"held-out age MAE {mae:.2f} vs mean baseline {baseline:.2f}; gender accuracy {accuracy:.1%}")
    assert mae < 0.7 * baseline
    assert accuracy >= 0.75


def test_the_smallest_faces_draw_for_every_seed():
    """draw_face promises any size from about 16 px: glasses on a rim of a few pixels once made
    Pillow's rounded_rectangle raise for some seeds."""
    for seed in range(300):
        face = draw_face(30 + seed % 50, seed % 2, seed % 5, size=16, rng=np.random.default_rng(seed))
        assert face.shape == (16, 16, 3)
