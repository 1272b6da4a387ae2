"""Every lesson notebook follows the course template and is stored without outputs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_thirteen_lessons_in_order():
    numbers = [int(p.name[:2]) for p in LESSONS]
    missing = sorted(set(range(1, 14)) - set(numbers))
    assert not missing, f"lessons missing from notebooks/: {missing}"
    assert numbers == list(range(1, 14)), f"lessons out of order or extra: {numbers}"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_template(path):
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    first = nb.cells[0].source
    own = f"/blob/[^/]+/notebooks/{re.escape(path.name)}"
    assert re.search(r"colab\.research\.google\.com/github/[^\"]+" + own, first), "Colab badge to its own path"
    assert re.search(r"^# ", first, re.M), "a title"
    assert "## Learning objectives" in text
    assert "## Summary" in text
    assert re.search(r"exercises/\S*" + path.name[:2], text), "a pointer to its exercises"
    setup = [c for c in nb.cells if c.cell_type == "code" and "setup(lesson=" in c.source]
    assert setup, "a setup cell calling agecourse.notebook.setup"
    assert f"setup(lesson={int(path.name[:2])}" in setup[0].source
    assert 'if "google.colab" in sys.modules' in setup[0].source and "%pip install" in setup[0].source


@pytest.mark.parametrize("path", sorted(ROOT.glob("*/**/*.ipynb")), ids=lambda p: str(p.relative_to(ROOT)))
def test_stored_without_outputs(path):
    if ".venv" in path.parts or "build" in path.parts:
        pytest.skip("not a course notebook")
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name} has outputs"


def test_badges_up_to_date():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "badges.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- badges: one setting, each badge to its own notebook ------------------------------------

sys.path.insert(0, str(ROOT / "scripts"))
import badges  # noqa: E402

from agecourse.notebook import COURSE_REF, COURSE_REPO, setup  # noqa: E402
from agecourse.notebook import LESSONS as LESSON_NAMES  # noqa: E402


@pytest.mark.parametrize("path", badges.notebooks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_badge_opens_its_own_notebook(path):
    first = nbformat.read(path, as_version=4).cells[0].source
    own = (
        f"https://colab.research.google.com/github/{COURSE_REPO}/blob/{COURSE_REF}/{path.relative_to(ROOT).as_posix()}"
    )
    links = re.findall(r"https://colab\.research\.google\.com/github/[^\"\s)]+", first)
    assert links == [own], f"{path.name}: badge links {links}, expected {own}"


def test_lesson_names_match_the_notebooks():
    existing = {p.stem for p in LESSONS}
    assert existing <= set(LESSON_NAMES.values()), "agecourse.notebook.LESSONS names every lesson file"
    for number, name in LESSON_NAMES.items():
        assert name.startswith(f"{number:02d}_")
        if name in existing:
            badge = badges.badge(ROOT / "notebooks" / f"{name}.ipynb")
            assert badge in nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", 4).cells[0].source + "\n\n"


def test_readme_badges_are_generated_from_the_setting_and_checked():
    text = badges.readme_badges()
    assert badges.readme_problems(text) == []
    assert f"mybinder.org/v2/gh/{COURSE_REPO}/{COURSE_REF}?urlpath=voila%2Frender%2Fdemo%2Fapp.ipynb" in text
    assert f"mybinder.org/v2/gh/{COURSE_REPO}/{COURSE_REF}?labpath=notebooks%2F01_load.ipynb" in text
    wrong_ref = text.replace(f"/{COURSE_REF}/", "/old-tag/").replace(f"/{COURSE_REF}?", "/old-tag?")
    assert len(badges.readme_problems(wrong_ref)) == 3
    missing = f"https://colab.research.google.com/github/{COURSE_REPO}/blob/{COURSE_REF}/notebooks/99_none.ipynb"
    assert badges.readme_problems(missing) == [f"{missing}: notebooks/99_none.ipynb does not exist"]


# --- the setup cell -----------------------------------------------------------------------


@pytest.fixture
def restore_policy():
    import keras

    yield
    keras.mixed_precision.set_global_policy("float32")


def fake_gpus(monkeypatch, count: int) -> None:
    import tensorflow as tf

    devices = [tf.config.PhysicalDevice(name=f"/physical_device:GPU:{i}", device_type="GPU") for i in range(count)]
    real = tf.config.list_physical_devices
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: devices if kind == "GPU" else real(kind))


def test_setup_in_ci_prints_the_profile_and_uses_float32(capsys, restore_policy):
    import keras

    settings = setup(lesson=12, profile="ci")
    out = capsys.readouterr().out
    assert settings.profile == "ci"
    assert "Lesson 12_bias | profile 'ci'" in out and "precision float32" in out and "tensorflow" in out
    assert keras.mixed_precision.global_policy().name == "float32"


def test_setup_turns_on_mixed_precision_only_in_the_gpu_profile_with_a_gpu(monkeypatch, capsys, restore_policy):
    import keras

    fake_gpus(monkeypatch, 1)
    setup(lesson=8, profile="gpu")
    assert keras.mixed_precision.global_policy().name == "mixed_float16"
    assert "GPU: /physical_device:GPU:0" in capsys.readouterr().out
    setup(lesson=8, profile="cpu", quiet=True)
    assert keras.mixed_precision.global_policy().name == "float32"


def test_setup_warns_when_the_gpu_profile_has_no_gpu(monkeypatch, restore_policy):
    import keras

    fake_gpus(monkeypatch, 0)
    with pytest.warns(UserWarning, match="asks for mixed precision but no GPU"):
        setup(lesson=8, profile="gpu", quiet=True)
    assert keras.mixed_precision.global_policy().name == "float32"


def test_setup_warns_clearly_on_colab_without_a_gpu(monkeypatch, restore_policy):
    import types

    fake_gpus(monkeypatch, 0)
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    with pytest.warns(UserWarning, match=r"no GPU.*Runtime > Change runtime type > GPU"):
        setup(lesson=1, profile="ci", quiet=True)


def test_setup_cell_installs_the_matching_package_only_on_colab():
    for path in badges.notebooks():
        nb = nbformat.read(path, as_version=4)
        cells = [c.source for c in nb.cells if c.cell_type == "code" and "%pip install" in c.source]
        for source in cells:
            lines = source.splitlines()
            (index,) = [i for i, line in enumerate(lines) if "%pip install" in line]
            assert lines[index].startswith("    ") and 'if "google.colab" in sys.modules' in lines[index - 1], path
            assert lines[index].strip() == badges.install_line(), f"{path.name}: install line differs from the badge's"


def test_setup_keeps_tensorflows_start_up_lines_out_of_the_lesson():
    """The setup cell in a fresh process without TF_CPP_MIN_LOG_LEVEL (what a student's kernel has):
    TensorFlow's start-up lines (absl, oneDNN, CUDA stubs, cpu_feature_guard) do not reach stderr,
    which Jupyter would show in the cell's output, and later TensorFlow work stays quiet too."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(ROOT)
    code = (
        "from agecourse.notebook import setup\n"
        "setup(lesson=1, profile='ci', quiet=True)\n"
        "import keras, tensorflow as tf\n"
        "keras.layers.Dense(2)(tf.zeros((1, 3)))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, env=env)
    assert run.returncode == 0, run.stderr
    tf_lines = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:\d\d|WARNING: All log messages before absl)|oneDNN|cpu_feature")
    assert [line for line in run.stderr.splitlines() if tf_lines.search(line)] == []
