"""Author lesson notebooks with the course template (badge, title, objectives, setup, summary,
exercises pointer), so every lesson starts and ends the same way.

Usage from an authoring script::

    from nbbuild import lesson, md, code
    lesson(1, "load", "Load UTKFace", objectives=[...], cells=[md("## Parse a name"), code("...")],
           summary=[...])

The written ``.ipynb`` is the source of truth afterwards; edit it in Jupyter as usual and run
``python scripts/badges.py`` if the repository setting changes.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]

SETUP = """# Setup: on Colab, install the course package at the version that matches this notebook.
# Locally and on Binder it is already installed (see the README), so nothing is downloaded.
import sys

if "google.colab" in sys.modules:
    %pip install -q "agecourse @ git+https://github.com/agecourse/agecourse@main"

from agecourse.notebook import setup

settings = setup(lesson={number})  # profile (ci / cpu / gpu), seed, versions, GPU check"""


def md(text: str):
    """A markdown cell."""
    return new_markdown_cell(text.strip("\n"))


def code(text: str):
    """A code cell."""
    return new_code_cell(text.strip("\n"))


def lesson(
    number: int,
    slug: str,
    title: str,
    objectives: list[str],
    cells: list,
    summary: list[str],
    intro: str = "",
    exercise_hint: str = "",
) -> Path:
    """Write ``notebooks/NN_slug.ipynb`` with the standard head and tail around ``cells``."""
    name = f"{number:02d}_{slug}.ipynb"
    head = [
        md(f"# Lesson {number:02d} — {title}\n\n{intro}".rstrip()),
        md("## Learning objectives\n\n" + "\n".join(f"- {o}" for o in objectives)),
        md(
            "## Setup\n\nRun this cell first. It picks the **profile** (`ci`, `cpu` or `gpu`, see "
            "`agecourse.config`), seeds everything and prints versions. Set `AGECOURSE_DATA` to a folder or "
            "archive of UTKFace to use real faces; without it the lesson uses *synthetic* faces."
        ),
        code(SETUP.format(number=number)),
    ]
    tail = [
        md("## Summary\n\n" + "\n".join(f"- {s}" for s in summary)),
        md(
            f"## Exercises\n\nPractise this lesson in [`exercises/{name}`](../exercises/{name}) "
            f"(solutions for instructors in `solutions/`). {exercise_hint}".rstrip()
        ),
    ]
    nb = new_notebook(cells=head + list(cells) + tail)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["colab"] = {"provenance": [], "gpuType": "T4"}
    nb.metadata["accelerator"] = "GPU"
    path = ROOT / "notebooks" / name
    nbformat.write(nb, path)
    import subprocess
    import sys

    subprocess.run([sys.executable, str(ROOT / "scripts" / "badges.py")], check=True, capture_output=True)
    return path
