"""The shipped course models (agecourse.course_models): registry, weights-only hash-checked loading,
the CLI's ``predict`` without a model and ``evaluate`` by name. (Which model a lesson or the demo uses
is tests/test_model_choice.py.)

Everything here runs offline: the models are package data. The one test that needs the real
UTKFace sample (reproducing the model card's test numbers) is marked ``real_data``.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agecourse import course_models as cm
from agecourse import model_choice
from agecourse.cli import main
from agecourse.config import get_settings

ROOT = Path(__file__).resolve().parents[1]
SPLIT_CSV = ROOT / "bench" / "results" / "course_models_split.csv"


def grace_hopper() -> Path:
    """matplotlib's sample photograph of Grace Hopper (ships with matplotlib)."""
    from matplotlib import cbook

    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


@pytest.fixture
def offline(monkeypatch):
    """Refuse every network connection that is not to this machine, for the duration of a test."""
    real_connect = socket.socket.connect

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "::1", "localhost") and not host.startswith("/"):
            raise OSError(f"network access attempted in an offline test: {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


def test_registry_lists_both_models_with_their_files_hashes_and_scores():
    assert cm.names() == ["model-a", "model-b"]
    for name in cm.names():
        entry = cm.entry(name)
        path = cm.path(name)
        assert path.is_file() and path.parent == cm.FOLDER
        assert cm.sha256_of(path) == entry["sha256"] and path.stat().st_size == entry["size_bytes"]
        assert 0.2e6 < entry["size_bytes"] < 10e6  # a few MB each: fine for package data
        test = entry["test"]
        assert test["age_mae_ci95"][0] <= test["age_mae"] <= test["age_mae_ci95"][1]
        assert test["gender_accuracy_ci95"][0] <= test["gender_accuracy"] <= test["gender_accuracy_ci95"][1]
        assert entry["split_seed"] == 42 and entry["training_data"]["split"]["test"] == test["count"]
        card = cm.card(name)
        assert f"{test['age_mae']:.2f} years" in card and "non-commercial" in card
        assert "never decisions about people" in card
        for heading in ("Per age band", "Per gender", "Per race", "Known failure cases", "Data and split"):
            assert heading in card
    cpu = get_settings("cpu", data_dir="unused")  # the shipped models are the cpu profile's recipes
    assert cm.entry("model-a")["input_size"] == cpu.image_size
    assert cm.entry("model-b")["input_size"] == cpu.transfer_image_size


def test_shipped_files_are_weights_only_and_rebuild_the_recorded_model(offline):
    """Each file is an .npz of weight arrays (no Keras config, no optimizer): the architecture is the
    package's own build, so the load does not depend on the Keras release that saved the model. The
    rebuilt model reproduces the reference prediction recorded when the file was written."""
    for name in cm.names():
        arrays, paths = cm.read_weights(cm.path(name))
        assert cm.path(name).name.endswith(".weights.npz") and len(arrays) == len(paths) > 10
        assert not any("optimizer" in p for p in paths)
        model = cm.load(name)
        assert [v.path for v in model.weights] == paths
        reference = cm.entry(name)["reference"]
        got = cm.reference_prediction(model)
        for key in ("age", "gender"):
            np.testing.assert_allclose(got[key], reference[key], rtol=1e-4, atol=1e-4)


def test_a_weights_file_that_does_not_fit_the_architecture_is_refused(tmp_path, monkeypatch):
    model = cm.build("model-a")
    weights = model.get_weights()
    short = tmp_path / "short.weights.npz"
    np.savez(
        short,
        paths=np.array([v.path for v in model.weights][:-1]),
        **{f"w{i:04d}": w for i, w in enumerate(weights[:-1])},
    )
    entry = dict(cm.entry("model-a"), sha256=cm.sha256_of(short))
    monkeypatch.setattr(cm, "entry", lambda name: entry)
    with pytest.raises(cm.CourseModelError, match=f"{short}: holds {len(weights) - 1} weight arrays"):
        cm.load("model-a", file=short)
    wrong = tmp_path / "wrong.weights.npz"
    bad = [np.zeros((3, 3)) if i == 0 else w for i, w in enumerate(weights)]
    np.savez(wrong, paths=np.array([v.path for v in model.weights]), **{f"w{i:04d}": w for i, w in enumerate(bad)})
    entry["sha256"] = cm.sha256_of(wrong)
    with pytest.raises(cm.CourseModelError, match=r"weight 0 \(block1_conv1/kernel\) has shape \(3, 3\)"):
        cm.load("model-a", file=wrong)
    text = tmp_path / "text.weights.npz"
    text.write_text("not a weights file")
    entry["sha256"] = cm.sha256_of(text)
    with pytest.raises(cm.CourseModelError, match=f"{text}: not a weights file"):
        cm.load("model-a", file=text)


def test_written_weights_read_back_exactly(tmp_path):
    model = cm.build("model-a")
    path = cm.write_weights(model, tmp_path / "a.weights.npz")
    arrays, paths = cm.read_weights(path)
    assert paths == [v.path for v in model.weights]
    assert all(np.array_equal(a, b) for a, b in zip(arrays, model.get_weights()))


def test_load_checks_the_hash_and_predicts(offline):
    model = cm.load("model-b")
    side = cm.entry("model-b")["input_size"]
    assert model.input_shape[1:] == (side, side, 3)
    faces = np.random.default_rng(0).uniform(0, 255, (2, side, side, 3)).astype("float32")
    outputs = model.predict(faces, verbose=0)
    ages = outputs["age"] if isinstance(outputs, dict) else outputs[0]
    assert np.asarray(ages).shape[0] == 2


def test_a_tampered_copy_is_refused_naming_the_file_and_both_hashes(tmp_path):
    copy = tmp_path / "model_b.weights.npz"
    shutil.copyfile(cm.path("model-b"), copy)
    with copy.open("ab") as fh:
        fh.write(b"tampered")
    expected = cm.entry("model-b")["sha256"]
    actual = cm.sha256_of(copy)
    with pytest.raises(cm.CourseModelError) as info:
        cm.load("model-b", file=copy)
    message = str(info.value)
    assert str(copy) in message and expected in message and actual in message
    with pytest.raises(cm.CourseModelError, match="is missing"):
        cm.load("model-b", file=tmp_path / "gone.weights.npz")
    with pytest.raises(cm.CourseModelError, match="no shipped model called 'model-c'"):
        cm.load("model-c")


def test_a_broken_registry_is_a_clear_error(tmp_path):
    bad = tmp_path / "registry.json"
    bad.write_text("{not json")
    with pytest.raises(cm.CourseModelError, match=str(bad)):
        cm.registry(bad)


def test_predict_a_real_photo_offline_without_a_model_argument(offline, capsys):
    status = main(["predict", str(grace_hopper())])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "shipped model-b" in out
    lines = [line for line in out.splitlines() if "grace_hopper.jpg: face" in line]
    assert len(lines) == 1, out
    found = re.search(r"age about (\d+) \(90% interval (\d+)-(\d+)\)", lines[0])
    assert found, out  # the shipped model's calibrated interval comes with the age
    age, low, high = map(int, found.groups())
    assert 30 <= age <= 100 and low < age < high, out


def test_shipped_models_carry_an_age_interval_calibrated_on_validation_faces():
    """The interval (lesson 09's split conformal prediction on each model's validation split) held
    the true age for about its share of the test faces, which the card states."""
    from agecourse import conformal

    for name in cm.names():
        interval = cm.age_interval(name)
        assert interval["level"] == conformal.INTERVAL_LEVEL and interval["half_width"] > 0
        assert "validation faces" in interval["method"]
        assert abs(interval["test_coverage"] - interval["level"]) < 0.03, interval
        assert sum(b["count"] for b in interval["test_coverage_by_band"].values()) == cm.entry(name)["test"]["count"]
        assert f"**{interval['test_coverage']:.1%}**" in cm.card(name) and "## Age intervals" in cm.card(name)
        assert model_choice.shipped(name).age_interval == interval
        # What predict uses: one width per band of the predicted age, refitted from the same file.
        calibration = pd.read_csv(ROOT / interval["calibration_csv"]).rename(columns={"pred_age": "age_pred"})
        assert interval["band_half_widths"] == pytest.approx(conformal.band_half_widths(calibration))
        assert abs(interval["band_test_coverage"] - interval["level"]) < 0.04, interval
        assert f"**{interval['band_test_coverage']:.1%}**" in cm.card(name)


def test_shipped_models_carry_a_gender_temperature_fitted_on_validation_faces():
    """The temperature is lesson 09's fit on the model's validation predictions, lowers the
    calibration error on the test faces, and the card states both errors."""
    from agecourse import calibration

    for name in cm.names():
        calibrated = cm.entry(name)["gender_temperature"]
        validation = pd.read_csv(ROOT / calibrated["calibration_csv"]).rename(
            columns={"pred_gender_prob": "gender_prob"}
        )
        assert cm.gender_temperature(name) == pytest.approx(calibration.fit_temperature(validation))
        assert calibrated["test_ece"]["after"] < calibrated["test_ece"]["before"]
        assert f"**{calibrated['test_ece']['after']:.3f}**" in cm.card(name) and "## Gender probability" in cm.card(
            name
        )
        assert model_choice.shipped(name).gender_temperature == cm.gender_temperature(name)


def test_predict_and_evaluate_accept_shipped_names(offline, capsys, tmp_path, image_writer):
    status = main(["predict", "model-a", str(grace_hopper()), "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert status == 0 and len(rows) == 1 and len(rows[0]["faces"]) == 1
    status = main(["predict", "model-z", str(grace_hopper())])
    assert status == 2 and "no course model called 'model-z'" in capsys.readouterr().err
    # A folder of UTKFace-named images, with a split that names half of them as test rows.
    folder = tmp_path / "faces"
    names = [f"{20 + i}_{i % 2}_{i % 5}_2017011617452{i:02d}12.jpg" for i in range(12)]
    for i, name in enumerate(names):
        image_writer(folder / name, size=(80, 80), seed=i)
    split = tmp_path / "split.csv"
    split.write_text(
        "path,age,gender,race,part\n"
        + "".join(f"{n},{20 + i},{i % 2},{i % 5},{'test' if i % 2 else 'train'}\n" for i, n in enumerate(names))
    )
    status = main(["evaluate", "model-b", "--data", str(folder), "--split", str(split), "--rows", "test", "--json"])
    metrics = json.loads(capsys.readouterr().out)
    assert status == 0 and metrics["count"] == 6 and metrics["model"] == "model-b"
    status = main(["evaluate", "model-b", "--data", str(folder), "--json"])
    assert status == 0 and json.loads(capsys.readouterr().out)["count"] == 12
    # Test rows missing from the data folder: one clear line, exit status 2.
    (folder / names[1]).unlink()
    status = main(["evaluate", "model-b", "--data", str(folder), "--split", str(split)])
    err = capsys.readouterr().err
    assert status == 2 and "1 of the 6 'test' files" in err and names[1] in err
    status = main(["evaluate", "model-b", "--data", str(folder), "--rows", "val"])
    assert status == 2 and "--rows needs --split" in capsys.readouterr().err


def test_models_table_is_generated_from_the_registry_and_in_the_readme():
    table = cm.models_table()
    for name in cm.names():
        assert f"`{name}`" in table and f"{cm.entry(name)['test']['age_mae']:.2f}" in table
    assert table in (ROOT / "README.md").read_text(), "README's table is stale: run python scripts/models_table.py"


@pytest.mark.real_data
def test_evaluate_by_name_on_the_split_reproduces_the_model_cards_numbers(real_data_dir, capsys):
    for name in cm.names():
        status = main(
            ["evaluate", name, "--data", str(real_data_dir), "--split", str(SPLIT_CSV), "--rows", "test", "--json"]
        )
        metrics = json.loads(capsys.readouterr().out)
        test = cm.entry(name)["test"]
        assert status == 0 and metrics["count"] == test["count"]
        assert metrics["age"]["mae"] == pytest.approx(test["age_mae"], abs=0.005)
        assert metrics["gender"]["accuracy"] == pytest.approx(test["gender_accuracy"], abs=1.5 / test["count"])
        assert f"{metrics['age']['mae']:.2f} years" in cm.card(name)
