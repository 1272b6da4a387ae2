"""The ``agecourse`` command line: in-process through ``main(argv)``, plus one real subprocess each
for ``python -m agecourse`` and the console script. User mistakes must give one line and exit 2."""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agecourse.cli import json_ready, main

GOOD_NAMES = [
    "25_0_1_20170116174525125.jpg.chip.jpg",
    "3_1_2_20161219203650636.jpg.chip.jpg",
    "61_1_0_20170109150557335.jpg",
    "40_0_3_20170119171136578.jpg.chip.jpg",
]
BAD_NAMES = {
    "61_3_20170109150557335.jpg.chip.jpg": "missing field",
    "25_2_0_20170116174525125.jpg.chip.jpg": "gender not 0/1",
    "notes.txt": "not an image extension",
}


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run ``agecourse ARGV`` in this process; return ``(status, stdout, stderr)``."""
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_error_line(status: int, err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert status == 2
    assert len(lines) == 1, err
    assert lines[0].startswith("agecourse: error: ")
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture
def scan_dir(tmp_path, image_writer) -> Path:
    """Four good faces (random pixels), three malformed names, one corrupt and one tiny image."""
    folder = tmp_path / "faces"
    for i, name in enumerate(GOOD_NAMES):
        image_writer(folder / name, seed=i)
    for name in BAD_NAMES:
        image_writer(folder / name) if name.endswith(".jpg") else (folder / name).write_text("hello")
    (folder / "30_1_4_20170117191420452.jpg.chip.jpg").write_text("this is text, not a JPEG")
    image_writer(folder / "22_0_2_20170117191420453.jpg.chip.jpg", size=(4, 4))
    return folder


# --- data scan ------------------------------------------------------------------------------------


def test_scan_json_counts_good_malformed_and_corrupt(capsys, scan_dir):
    status, out, err = run_cli(capsys, "data", "scan", scan_dir, "--json")
    assert status == 0 and err == ""
    report = json.loads(out)
    assert report["files"] == 9
    assert report["accepted"] == len(GOOD_NAMES)
    assert report["rejected"] == 5
    reasons = {Path(r["file"]).name: r["reason"] for r in report["rejects"]}
    for name, reason in BAD_NAMES.items():
        assert reason in reasons[name]
    assert "not an image" in reasons["30_1_4_20170117191420452.jpg.chip.jpg"]
    assert "too small" in reasons["22_0_2_20170117191420453.jpg.chip.jpg"]
    dist = report["distribution"]
    assert dist["count"] == 4 and dist["gender"] == {"male": 2, "female": 2}
    assert dist["age"]["min"] == 3 and dist["age"]["max"] == 61


def test_scan_text_lists_every_reject(capsys, scan_dir):
    status, out, _ = run_cli(capsys, "data", "scan", scan_dir)
    assert status == 0
    assert out.splitlines()[0].startswith(f"9 files in {scan_dir}: 4 accepted, 5 rejected")
    assert out.count("  rejected ") == 5 and "gender: male: 2, female: 2" in out


def test_scan_missing_path_is_one_line(capsys, tmp_path):
    status, out, err = run_cli(capsys, "data", "scan", tmp_path / "nowhere")
    assert out == ""
    assert_one_error_line(status, err, "nowhere", "no such file or folder")


def test_scan_not_an_archive_is_one_line(capsys, tmp_path):
    path = tmp_path / "faces.rar"
    path.write_bytes(b"Rar!")
    status, _, err = run_cli(capsys, "data", "scan", path)
    assert_one_error_line(status, err, "faces.rar", ".zip or .tar.gz")


def test_debug_variable_shows_the_traceback(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("AGECOURSE_DEBUG", "1")
    with pytest.raises(FileNotFoundError):
        main(["data", "scan", str(tmp_path / "nowhere")])


def test_bad_arguments_exit_2_with_usage(capsys):
    with pytest.raises(SystemExit) as info:
        main(["data", "synth", "x", "--n", "0"])
    assert info.value.code == 2
    assert "--n: 0 must be at least 1" in capsys.readouterr().err


# --- data fetch and synth --------------------------------------------------------------------------


def _dead_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_fetch_all_sources_failing_ends_in_one_error_line(capsys, tmp_path):
    url = f"http://127.0.0.1:{_dead_port()}/UTKFace.tar.gz"
    status, out, err = run_cli(capsys, "data", "fetch", "--url", url, "--cache-dir", tmp_path)
    lines = err.strip().splitlines()
    assert status == 2 and "Traceback" not in err
    assert lines[0].startswith("agecourse: UTKFace source 127.0.0.1") and "trying the next one" in lines[0]
    assert lines[-1].startswith("agecourse: error: could not download UTKFace from any source")
    assert url in lines[-1] and "--data" in lines[-1]
    assert "Downloading UTKFace from" in out
    assert not list((tmp_path / "downloads").rglob("*.part"))


def test_fetch_quiet_prints_only_the_error(capsys, tmp_path):
    url = f"http://127.0.0.1:{_dead_port()}/utk.zip"
    status, out, err = run_cli(capsys, "data", "fetch", "--url", url, "--cache-dir", tmp_path, "--quiet")
    assert out == ""
    assert_one_error_line(status, err, "could not download UTKFace")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--url", "http://127.0.0.1:9/faces.html"], "must end in a .zip"),
        (["--url", "ftp://example.org/utk.zip"], "not an http(s) URL"),
        (["--url", "http://127.0.0.1:9/utk.zip", "--sha256", "abc"], "not a SHA-256"),
        (["--sha256", "0" * 64], "--sha256 needs exactly one --url"),
    ],
)
def test_fetch_bad_options_are_one_line(capsys, tmp_path, argv, needle):
    status, _, err = run_cli(capsys, "data", "fetch", "--cache-dir", tmp_path, *argv)
    assert_one_error_line(status, err, needle)


def test_synth_writes_labelled_synthetic_faces(capsys, tmp_path):
    status, out, _ = run_cli(capsys, "data", "synth", tmp_path / "s", "--n", "5", "--size", "32")
    assert status == 0 and "synthetic faces (not real people)" in out
    assert len(list((tmp_path / "s").glob("*.jpg.chip.jpg"))) == 5


def test_synth_refuses_a_folder_of_real_images(capsys, scan_dir):
    status, _, err = run_cli(capsys, "data", "synth", scan_dir, "--n", "5", "--size", "32")
    assert_one_error_line(status, err, "not synthetic faces")


# --- evaluate -----------------------------------------------------------------------------------------

SIZE = 32


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A small, untrained Model A saved as .keras (random weights: enough for the interface)."""
    import keras

    from agecourse.models import build_model_a

    keras.utils.set_random_seed(1)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    build_model_a(SIZE, filters=(8, 16), dense_units=16).save(path)
    return path


@pytest.fixture(scope="module")
def face_dir(tmp_path_factory) -> Path:
    """24 synthetic faces (not real people) plus one malformed name and one corrupt image."""
    from agecourse.synthetic import make_synthetic_faces

    folder = make_synthetic_faces(tmp_path_factory.mktemp("eval") / "faces", n=24, size=48, seed=3)
    (folder / "12_1_2017011617452.jpg").write_bytes(b"")  # malformed: missing field
    (folder / "33_0_1_20170117191420452.jpg.chip.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return folder


def _flat(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}{key}.").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in _flat(item, f"{prefix}{i}.").items()}
    return {prefix.rstrip("."): value}


def test_evaluate_json_equals_the_library_metrics(capsys, tiny_model, face_dir):
    from agecourse import evaluate as ev
    from agecourse.data import load_utkface, make_dataset
    from agecourse.deploy import load_model

    status, out, err = run_cli(capsys, "evaluate", tiny_model, "--data", face_dir, "--json")
    assert status == 0, err
    report = json.loads(out)
    assert {"count", "age", "gender", "per_age_band", "data", "model"} <= set(report)
    assert {"mae", "rmse", "mean_signed_error", "r2"} <= set(report["age"])
    assert {"accuracy", "auc", "confusion_matrix", "male", "female"} <= set(report["gender"])
    assert report["count"] == 24 and report["data"]["accepted"] == 24
    assert report["data"]["rejected"] == 3  # malformed name, corrupt image, the synthetic-set note
    reasons = {Path(r["file"]).name: r["reason"] for r in report["data"]["rejects"]}
    assert "missing field" in reasons["12_1_2017011617452.jpg"]
    assert "cannot decode" in reasons["33_0_1_20170117191420452.jpg.chip.jpg"]

    # What lesson 09 computes for the same model and images.
    loaded = load_utkface(face_dir)
    table = ev.predict_table(load_model(tiny_model), make_dataset(loaded.images, SIZE, batch_size=64), loaded.images)
    expected = _flat(json_ready(ev.evaluate_table(table)))
    got = _flat({k: report[k] for k in ("count", "age", "gender", "per_age_band")})
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, float):
            assert math.isclose(got[key], value, rel_tol=1e-6, abs_tol=1e-9), key
        else:
            assert got[key] == value, key


def test_evaluate_text_and_out_file(capsys, tiny_model, face_dir, tmp_path):
    status, out, _ = run_cli(capsys, "evaluate", tiny_model, "--data", face_dir, "--out", tmp_path)
    assert status == 0
    assert "24 images accepted, 3 rejected" in out and "age MAE" in out and "gender accuracy" in out
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["count"] == 24 and "mae" in written["age"]


def test_evaluate_user_mistakes_are_one_line(capsys, tiny_model, face_dir, tmp_path):
    status, _, err = run_cli(capsys, "evaluate", tmp_path / "none.keras", "--data", face_dir)
    assert_one_error_line(status, err, "none.keras", "no such model file")
    status, _, err = run_cli(capsys, "evaluate", tiny_model, "--data", tmp_path / "nowhere")
    assert_one_error_line(status, err, "nowhere")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no faces here")
    status, _, err = run_cli(capsys, "evaluate", tiny_model, "--data", tmp_path / "empty")
    assert_one_error_line(status, err, "no usable UTKFace-named images (1 files rejected)")
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip file")
    status, _, err = run_cli(capsys, "evaluate", broken, "--data", face_dir)
    assert_one_error_line(status, err, "broken.keras", "cannot load")


# --- predict --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    """A synthetic face the detector finds, a chip-like face, no face, a non-image, a tiny image."""
    from PIL import Image

    from agecourse import example_photos
    from agecourse.deploy import detect_faces
    from agecourse.synthetic import draw_face

    folder = tmp_path_factory.mktemp("photos")
    # MTCNN finds only some cartoon faces: the example faces are chosen so that it finds them.
    found = example_photos.group_photo(example_photos.example_faces()[:1])  # the 220 px face at (70, 70)
    assert detect_faces(found), "the detector found no face in the example photo"
    paths = {
        "face": folder / "face.jpg",
        "chip": folder / "chip.png",
        "noface": folder / "noise.jpg",
        "text": folder / "notes.jpg",
        "tiny": folder / "tiny.png",
        "missing": folder / "missing.jpg",
    }
    Image.fromarray(found).save(paths["face"], quality=95)
    Image.fromarray(draw_face(20, 1, 2, size=64, rng=5)).save(paths["chip"])
    noise = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    Image.fromarray(noise).save(paths["noface"])
    paths["text"].write_text("not an image at all")
    Image.new("RGB", (8, 8), (200, 150, 120)).save(paths["tiny"])
    return paths


def test_predict_finds_and_describes_a_face(capsys, tiny_model, photos, tmp_path):
    status, out, err = run_cli(capsys, "predict", tiny_model, photos["face"], "--json", "--out", tmp_path)
    assert status == 0 and err == ""
    (record,) = json.loads(out)
    assert record["error"] is None and record["image"] == str(photos["face"])
    face = record["faces"][0]
    assert face["detected"] is True and 0 <= face["p_female"] <= 1 and face["age"] >= 0
    assert face["gender"] == ("female" if face["p_female"] >= 0.5 else "male")
    x, y, w, h = face["box"]
    assert 40 <= x <= 160 and 40 <= y <= 160 and 100 <= w <= 260  # around the 220 px face at (70, 70)
    assert record["files"] and all(Path(p).stat().st_size > 0 for p in record["files"])


def test_predict_text_whole_image_mode(capsys, tiny_model, photos):
    status, out, err = run_cli(capsys, "predict", tiny_model, photos["chip"], "--no-detect")
    assert status == 0 and err == ""
    assert out.startswith(f"{photos['chip']}: face 1: ") and "(whole image)" in out and "age " in out


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("noface", "no face found"),
        ("text", "not an image"),
        ("tiny", "image too small (8x8 px)"),
        ("missing", "no such file"),
    ],
)
def test_predict_unusable_image_is_one_clear_line(capsys, tiny_model, photos, kind, needle):
    status, out, err = run_cli(capsys, "predict", tiny_model, photos[kind])
    assert status == 1  # nothing could be predicted
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith(f"agecourse: {photos[kind]}: ") and needle in lines[0]
    assert out == ""


def test_predict_goes_on_after_a_bad_image(capsys, tiny_model, photos):
    status, out, err = run_cli(
        capsys, "predict", tiny_model, photos["missing"], photos["chip"], photos["text"], "--no-detect", "--json"
    )
    assert status == 0  # one image could be predicted
    records = json.loads(out)
    assert [r["error"] is None for r in records] == [False, True, False]
    assert len(err.strip().splitlines()) == 2


def test_predict_user_mistakes(capsys, tiny_model, photos, tmp_path):
    status, _, err = run_cli(capsys, "predict", tmp_path / "none.keras", photos["chip"])
    assert_one_error_line(status, err, "none.keras", "no such model file")
    status, _, err = run_cli(capsys, "predict", tiny_model, photos["chip"], "--gradcam")
    assert_one_error_line(status, err, "--gradcam", "--out")


# --- train (the main job) and grade --------------------------------------------------------------


def test_train_saves_model_and_metrics_then_evaluate_reads_them(capsys, tmp_path, monkeypatch):
    """``agecourse train`` end to end on a tiny folder, one epoch; ``evaluate`` then uses its model."""
    from agecourse.synthetic import make_synthetic_faces

    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path / "art"))
    data = make_synthetic_faces(tmp_path / "data", n=40, size=40, seed=4)
    out = tmp_path / "out"
    argv = ("train", "--profile", "ci", "--data", data, "--epochs", "1", "--image-size", "32", "--out", out, "--quiet")
    status, text, err = run_cli(capsys, *argv)
    assert status == 0, err
    assert f"Profile 'ci', data: UTKFace at {data}" in text and f"Wrote metrics, plots and the model to {out}" in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["epochs_run"] == 1 and metrics["data"]["accepted"] == 40
    status, text, err = run_cli(capsys, "evaluate", out / "model_a.keras", "--data", data, "--json")
    assert status == 0, err
    assert json.loads(text)["count"] == 40


def test_train_missing_data_is_one_line(capsys, tmp_path):
    status, _, err = run_cli(capsys, "train", "--data", tmp_path / "nowhere", "--profile", "ci")
    assert_one_error_line(status, err, "nowhere", "no such file or folder")


def test_grade_is_registered_and_checks_its_folder(capsys, tmp_path):
    status = main(["grade", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2 and "not a folder" in err and len(err.strip().splitlines()) == 1


# --- as a real process ----------------------------------------------------------------------------


def test_python_dash_m_runs_the_cli(scan_dir):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run(
        [sys.executable, "-m", "agecourse", "data", "scan", str(scan_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["accepted"] == len(GOOD_NAMES)
    missing = subprocess.run(
        [sys.executable, "-m", "agecourse", "data", "scan", str(scan_dir / "nowhere")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0
    assert missing.stderr.startswith("agecourse: error: ")


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("agecourse")
    if not script.exists():
        pytest.skip(f"no console script next to {sys.executable} (package not installed with pip)")
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("agecourse ")


# A line of TensorFlow's C++ log ("I0000 00:00:1795.. 123 port.cc:153] ...") or absl's start-up note.
TF_LOG_LINE = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:\d\d|WARNING: All log messages before absl)")


def test_tensorflow_start_up_lines_stay_off_the_terminal(tiny_model, photos):
    """A real ``predict`` in a fresh process, as from a terminal (no TF_CPP_MIN_LOG_LEVEL set): its
    stderr holds no TensorFlow log lines; with ``AGECOURSE_DEBUG=1`` whatever TensorFlow prints shows."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "AGECOURSE_DEBUG")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    argv = [sys.executable, "-m", "agecourse", "predict", str(tiny_model), str(photos["face"]), "--no-detect"]
    quiet = subprocess.run(argv, capture_output=True, text=True, timeout=180, env=env)
    debug = subprocess.run(argv, capture_output=True, text=True, timeout=180, env=dict(env, AGECOURSE_DEBUG="1"))
    assert quiet.returncode == 0 and debug.returncode == 0, quiet.stderr + debug.stderr
    assert ": face 1: " in quiet.stdout and quiet.stdout == debug.stdout
    assert [line for line in quiet.stderr.splitlines() if TF_LOG_LINE.match(line)] == []
    shown = [line.split("] ", 1)[-1] for line in debug.stderr.splitlines() if TF_LOG_LINE.match(line)]
    assert all(text not in quiet.stderr for text in shown)


@pytest.mark.real_data
def test_evaluate_reproduces_the_benchmarks_recipe_score_for_the_shipped_model(real_data_dir, capsys):
    """``agecourse evaluate model-a`` on the shipped model's test rows prints the score the benchmark
    recorded for that run (the shipped Model A is ``bench_model_a.py --ship``'s seed-42 run), scored
    the recipe's way: flip-averaged predictions, as the cpu profile's ``flip_tta`` asks."""
    root = Path(__file__).resolve().parents[1]
    bench = json.loads((root / "bench" / "results" / "model_a.json").read_text())
    seed = next(run for run in bench["per_seed"] if run["seed"] == 42)
    recipe = seed["scores"]["recipe"]
    assert recipe["predictions"] == "flip-averaged"
    split = root / "bench" / "results" / "course_models_split.csv"
    argv = ("evaluate", "model-a", "--data", real_data_dir, "--split", split, "--rows", "test")
    status, out, err = run_cli(capsys, *argv, "--json")
    assert status == 0, err
    metrics = json.loads(out)
    assert metrics["predictions"] == "flip-averaged" and metrics["count"] == seed["scores"]["test"]["count"]
    assert metrics["age"]["mae"] == pytest.approx(recipe["age_mae"], abs=0.005)
    assert metrics["gender"]["accuracy"] == pytest.approx(recipe["gender_accuracy"], abs=1.5 / metrics["count"])
    status, out, err = run_cli(capsys, *argv)
    assert status == 0, err
    assert (
        f"age MAE {recipe['age_mae']:.2f} years, gender accuracy {recipe['gender_accuracy']:.1%} "
        f"on {metrics['count']} images (flip-averaged predictions)" in out
    )
