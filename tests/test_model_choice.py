"""Which model a lesson, the CLI and the demo use (agecourse.model_choice): this runtime's, the
shipped one, or a file; each with the settings that fit it and a line saying where it came from."""

from __future__ import annotations

import socket
from pathlib import Path

import pandas as pd
import pytest

from agecourse import artifacts, deploy, model_choice
from agecourse import course_models as cm
from agecourse.config import get_settings
from agecourse.data import Split
from agecourse.models import build_model_a

ROOT = Path(__file__).resolve().parents[1]


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


def test_lessons_use_the_shipped_model_when_this_runtime_has_none(tmp_path, monkeypatch, capsys, offline):
    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.delenv("AGECOURSE_RETRAIN", raising=False)
    settings = get_settings("gpu", data_dir=tmp_path)  # gpu: Model A at 128 px; the shipped one takes 64 px
    model, fitted, source = model_choice.for_lesson(settings, "model-a")
    out = capsys.readouterr().out
    assert "no saved Model A" in source and "the shipped Model A (model-a)" in source and source in out
    assert model.input_shape[1] == 64 and fitted.image_size == 64 and settings.image_size == 128
    model_b, fitted_b, _ = model_choice.for_lesson(settings.replace(data_dir=None), "model-b")
    assert model_b.input_shape[1] == fitted_b.transfer_image_size == cm.entry("model-b")["input_size"]
    assert "trained on real faces" in capsys.readouterr().out  # said when the data are synthetic
    with pytest.raises(cm.CourseModelError, match="no course model called 'model-c'"):
        model_choice.for_lesson(settings, "model-c")


def test_retrain_is_read_once_into_the_settings_and_a_typo_is_an_error(monkeypatch):
    monkeypatch.setenv("AGECOURSE_RETRAIN", "1")
    assert get_settings("cpu", data_dir="unused").retrain is True
    monkeypatch.setenv("AGECOURSE_RETRAIN", "maybe")
    with pytest.raises(ValueError, match="AGECOURSE_RETRAIN"):
        get_settings("cpu", data_dir="unused")


def test_lessons_report_test_faces_the_shipped_model_was_trained_on(tmp_path, monkeypatch, capsys):
    seen = sorted(cm.seen_files())
    assert len(seen) == sum(cm.entry("model-a")["training_data"]["split"][p] for p in ("train", "val"))
    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path / "artifacts"))
    rows = pd.DataFrame({"path": [f"/data/{seen[0]}", "/data/1_0_0_20990101000000000.jpg"], "age": [1, 1]})
    split = Split(rows, rows, rows)
    model_choice.for_lesson(get_settings("cpu", data_dir=tmp_path), "model-a", split=split)
    assert "1 of the 2 test faces here were among its training or validation faces" in capsys.readouterr().out


def test_a_model_this_runtime_saved_is_preferred_and_loaded_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path / "artifacts"))
    settings = get_settings("cpu", data_dir=tmp_path, image_size=24)
    artifacts.save_model(settings, "model-a", build_model_a(24, filters=(4,), dense_units=4))
    loads = []
    real_load = artifacts.keras.models.load_model
    monkeypatch.setattr(artifacts.keras.models, "load_model", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    model, fitted, source = model_choice.for_lesson(settings, "model-a")
    assert model.input_shape[1] == 24 and fitted is settings and len(loads) == 1
    assert source.startswith("the Model A this runtime trained and saved (saved in ")


def test_ci_lessons_keep_training_their_own_small_model(tmp_path, monkeypatch):
    """The ci profile (synthetic faces) trains its own model in seconds, offline; the shipped
    real-face models are not used there."""
    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path / "artifacts"))
    settings = get_settings("ci", epochs=1, synthetic_count=120, max_images=120, image_size=24, model_filters=(4,))
    chosen = model_choice.for_lesson(settings, "model-a", verbose=False)
    model, fitted, source = chosen  # a ChosenModel unpacks as (model, settings, source)
    assert fitted is settings and model.input_shape[1] == settings.image_size == 24
    assert "trained in this runtime" in source and "synthetic" in source
    assert chosen.age_interval is None  # only the shipped models carry a calibrated interval
    assert (settings.artifacts_dir / "model_a.keras").is_file()  # trained and saved by this runtime


def test_the_cli_takes_a_course_model_name_or_a_file(tmp_path, offline):
    chosen = model_choice.for_cli("model-a")
    assert chosen.model.input_shape[1] == cm.entry("model-a")["input_size"] == chosen.settings.image_size
    assert chosen.settings.flip_tta == cm.architecture_settings("model-a").flip_tta  # its recipe's scoring
    deploy.save_model(build_model_a(32, filters=(4,), dense_units=4), tmp_path / "mine.keras")
    mine = model_choice.for_cli(tmp_path / "mine.keras", get_settings("ci"))
    assert mine.settings.image_size == 32 and "mine.keras" in mine.source
    with pytest.raises(cm.CourseModelError, match="no course model called 'model-z'"):
        model_choice.for_cli("model-z")
    assert model_choice.names_a_model("model-z") and not model_choice.names_a_model("model_a.keras")


def test_demo_page_uses_the_shipped_model_with_its_card(offline):
    chosen, about = model_choice.for_demo()
    entry = cm.entry("model-b")
    assert chosen.model.input_shape[1] == entry["input_size"]
    assert "agecourse-model-card" in about and "model-b" in about
    assert f"test age MAE {entry['test']['age_mae']:.2f} years" in about
    assert "non-commercial" in about and "Intended use" in about and "Known gaps" in about


def test_demo_model_prefers_an_explicit_file_then_falls_back_to_a_saved_one(tmp_path, monkeypatch):
    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path / "art"))
    model = build_model_a(32, filters=(4,), dense_units=4)
    deploy.save_model(model, tmp_path / "mine.keras")
    settings = get_settings("ci", image_size=32, demo_model=str(tmp_path / "mine.keras"))
    chosen, about = model_choice.for_demo(settings=settings)
    assert "mine.keras" in about and deploy.input_size(chosen.model) == (32, 32)
    with pytest.raises(deploy.ModelLoadError, match="absent.keras: no such model file"):
        model_choice.for_demo(settings=settings.replace(demo_model=str(tmp_path / "absent.keras")))
    # A broken shipped model: the page says why and uses a model this runtime saved (one that fits).
    settings = settings.replace(demo_model=None)
    deploy.save_model(model, artifacts.model_path(settings, "model-a"))
    deploy.save_model(model, artifacts.model_path(settings, "model-b"))  # 32 px: not the profile's Model B size
    monkeypatch.setattr(cm, "FOLDER", tmp_path / "no-package-data")
    chosen, about = model_choice.for_demo(settings=settings)
    assert "The shipped model could not be used" in about and "is missing" in about
    assert chosen.source.startswith("Model A trained in the 'ci' profile"), "a Model B that does not fit is skipped"


def test_only_model_choice_imports_both_artifacts_and_course_models():
    both = []
    for path in sorted((ROOT / "agecourse").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        uses_artifacts = "agecourse.artifacts" in text or "import artifacts" in text or "artifacts," in text
        uses_registry = "course_models" in text
        if uses_artifacts and uses_registry and "import" in text:
            imports = [
                line
                for line in text.splitlines()
                if line.lstrip().startswith(("import ", "from ")) and ("artifacts" in line or "course_models" in line)
            ]
            if any("artifacts" in line for line in imports) and any("course_models" in line for line in imports):
                both.append(path.relative_to(ROOT).as_posix())
    assert both == ["agecourse/model_choice.py"]
