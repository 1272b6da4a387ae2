"""The three places that list the course's dependencies agree: ``pyproject.toml`` (pip, Colab),
the root ``environment.yml`` (conda, local) and ``binder/`` (Binder).

A stale Binder or conda environment is the most common complaint against course repositories:
this test fails as soon as a dependency is added, removed or re-pinned in one place only.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

yaml = pytest.importorskip("yaml", reason="PyYAML comes with voila (the demo extra)")

ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENTS = [ROOT / "environment.yml", ROOT / "binder" / "environment.yml"]


def load_pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirements(specs: list[str]) -> dict[str, SpecifierSet]:
    """name -> version range of requirement strings (extras and markers must not appear)."""
    result = {}
    for spec in specs:
        req = Requirement(spec)
        result[canonicalize_name(req.name)] = req.specifier
    return result


def pip_section(path: Path) -> tuple[dict, list[str]]:
    """The parsed environment file and its ``pip:`` list."""
    env = yaml.safe_load(path.read_text())
    pips = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pips) == 1, f"{path.name}: expected one pip: section"
    return env, pips[0]


def test_pyproject_has_the_demo_extra():
    extras = load_pyproject()["project"]["optional-dependencies"]
    demo = requirements(extras["demo"])
    assert {"voila", "playwright"} <= set(demo)


@pytest.mark.parametrize("path", ENVIRONMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_environment_matches_pyproject(path):
    project = load_pyproject()["project"]
    core = requirements(project["dependencies"])
    extras = {
        name: spec
        for group in project["optional-dependencies"].values()
        for name, spec in requirements([s for s in group if not s.startswith("agecourse")]).items()
    }
    env, pip = pip_section(path)
    listed = requirements(pip)
    missing = sorted(set(core) - set(listed))
    assert not missing, f"{path.name} lacks pyproject dependencies: {missing}"
    for name, spec in listed.items():
        expected = core.get(name, extras.get(name))
        assert expected is not None, f"{path.name} lists {name}, which pyproject.toml does not declare"
        assert spec == expected, f"{path.name}: {name}{spec} but pyproject.toml says {name}{expected}"
    assert "voila" in listed and "ipywidgets" in listed, "the demo page and the widgets need voila and ipywidgets"

    python = [d for d in env["dependencies"] if isinstance(d, str) and re.match(r"python\b", d)]
    assert len(python) == 1, f"{path.name}: pin one Python version"
    version = re.search(r"[\d.]+", python[0]).group()
    assert version in SpecifierSet(project["requires-python"]), f"Python {version} vs {project['requires-python']}"


def test_both_environment_files_list_the_same_packages():
    (_, first), (_, second) = (pip_section(p) for p in ENVIRONMENTS)
    assert requirements(first) == requirements(second)


def test_binder_installs_the_package_and_uses_the_cpu_profile():
    post_build = (ROOT / "binder" / "postBuild").read_text()
    assert re.search(r"pip install [^\n]*\s\.\s*$", post_build, re.M), "postBuild must pip install the package"
    assert (ROOT / "binder" / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"
    start = (ROOT / "binder" / "start").read_text()
    assert "AGECOURSE_PROFILE" in start and start.rstrip().endswith('exec "$@"')
    assert (ROOT / "binder" / "start").stat().st_mode & 0o111, "start must be executable"


def test_demo_notebook_exists_for_the_binder_badge():
    assert (ROOT / "demo" / "app.ipynb").is_file()
