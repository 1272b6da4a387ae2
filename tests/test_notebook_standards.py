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
    if len(numbers) < 13:
        pytest.xfail(f"only lessons {numbers} exist so far")
    assert numbers == list(range(1, 14))


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
