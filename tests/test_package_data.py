"""Package data: what lessons, the CLI and the demo read ships inside the package (a non-editable
install on Colab has no ``bench/`` folder), written by its one writer, and the Colab-stack check's
own logic (scripts/colab_check.py, which .ci/run runs in a Colab-like environment)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from agecourse import results

ROOT = Path(__file__).resolve().parents[1]
SHARED_FREEZE = ROOT.parent / "shared" / "colab" / "pip-freeze.gpu.txt"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", results.FILES)
def test_shipped_results_are_the_benchmarks_files(name):
    """``scripts/write_package_data.py results`` copies them; a benchmark rerun without the copy fails here."""
    source = ROOT / "bench" / "results" / name
    assert results.path(name).read_bytes() == source.read_bytes(), (
        f"agecourse/results/{name} differs from bench/results/{name}: run python scripts/write_package_data.py results"
    )
    assert results.load(name) == json.loads(source.read_text())


def test_each_lesson_quotes_its_published_run_time(capsys):
    """The setup cell prints the shipped timing of its lesson (seconds and peak memory, as the
    notebook benchmark recorded them) and says "not measured" where no run covers it."""
    from agecourse import notebook

    line = notebook.lesson_time(8)
    parts = dict(part.split(": ", 1) for part in line.split("; "))
    for label, name in (
        ("ci profile, synthetic faces", "notebooks_ci"),
        ("cpu profile, synthetic faces", "notebooks_cpu"),
        ("cpu profile, real faces", "notebooks_cpu_utkface"),
    ):
        run = results.load(name)
        record = next(r for r in run["lessons"].values() if r["lesson"] == 8 and r["status"] == "ok")
        assert parts[label].startswith(
            f"{record['seconds'] / 60:.1f} min, peak memory {record['peak_rss_mb'] / 1000:.1f} GB"
        )
        assert run["when"][:10] in parts[label]
    assert parts["gpu profile"] == "not measured"
    assert notebook.lesson_time(99) == "not measured"
    assert notebook.lesson_time(8, timings=(("gpu profile", "notebooks_gpu"),)) == "not measured"
    notebook.setup(lesson=8, profile="ci")
    assert f"this lesson's published run time: {line}" in capsys.readouterr().out


def test_unknown_or_broken_results_files_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="no shipped results file 'tuning.json'"):
        results.path("tuning")
    (tmp_path / "bias.json").write_text("{broken")
    monkeypatch.setattr(results, "FOLDER", tmp_path)
    with pytest.raises(ValueError, match=f"{tmp_path / 'bias.json'}: not a JSON file"):
        results.load("bias")
    (tmp_path / "bias.json").unlink()
    with pytest.raises(FileNotFoundError, match="the shipped results file is missing"):
        results.load("bias")


def test_package_data_globs_cover_every_data_file_of_the_package():
    """pyproject's package-data patterns reach every non-Python file inside ``agecourse/``, so a
    non-editable install (the setup cell's) brings them (the Colab check installs that way)."""
    import tomllib
    from fnmatch import fnmatch

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    package_root = ROOT / "agecourse"
    data = [
        p
        for p in package_root.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    ]
    assert data, "the package ships no data"
    for path in data:
        package = ".".join(path.parent.relative_to(ROOT).parts)
        globs = patterns.get(package, [])
        assert any(fnmatch(path.name, g) for g in globs), f"{path} is not package data of {package} ({globs})"


def test_no_lesson_reads_the_repository_checkout():
    """A lesson opened from a Colab badge has the package, not the repository: no cell may read
    ``bench/`` or another path of the checkout."""
    offenders = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for index, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] == "code" and re.search(r"""["'](\.\./)?bench/""", "".join(cell["source"])):
                offenders.append(f"{path.name}[{index}]")
    assert not offenders, f"cells that read the repository checkout: {offenders}"


def test_constraints_record_colabs_freeze():
    colab_check = load_script("colab_check")
    versions = colab_check.colab_versions()
    for name, version in {"tensorflow": "2.20.0", "keras": "3.13.2", "numpy": "2.1.3", "ipywidgets": "7.7.1"}.items():
        assert versions[name] == version
    if not SHARED_FREEZE.is_file():
        pytest.skip(f"{SHARED_FREEZE} is not here to compare with")
    assert versions == colab_check.colab_versions(SHARED_FREEZE), "constraints/colab.txt differs from Colab's record"


def test_the_colab_check_flags_every_changed_colab_package():
    colab_check = load_script("colab_check")
    colab = {"ipywidgets": "7.7.1", "numpy": "2.1.3", "opencv-python-headless": "5.0.0.93"}
    before = {"ipywidgets": "7.7.1", "numpy": "2.1.3", "opencv-python-headless": "5.0.0.93"}
    after = {"ipywidgets": "8.1.9", "numpy": "2.1.3", "mtcnn": "1.0.0", "agecourse": "0.9"}
    assert colab_check.changed_colab_packages(before, after, colab) == [
        "ipywidgets 7.7.1 -> 8.1.9 (Colab ships 7.7.1)",
        "opencv-python-headless 5.0.0.93 -> absent (Colab ships 5.0.0.93)",
    ]
    assert colab_check.changed_colab_packages(before, dict(before, lz4="4.4"), colab) == []
    assert colab_check.canonical("Jinja2") == "jinja2" and colab_check.canonical("ml_dtypes") == "ml-dtypes"
