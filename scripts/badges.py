"""Write every notebook's Colab badge and Colab install line from one setting.

The setting is ``COURSE_REPO`` / ``COURSE_REF`` in ``agecourse/notebook.py``. Run after changing
it, or after adding a notebook:

    python scripts/badges.py          # rewrite notebooks in place
    python scripts/badges.py --check  # exit 1 if any notebook is out of date (used by the tests)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from agecourse.notebook import COURSE_REF, COURSE_REPO  # noqa: E402

BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE_RE = re.compile(r"^<a href=\"https://colab\.research\.google\.com/github/[^\"]*\"[^>]*>.*?</a>\n*", re.S)
INSTALL_RE = re.compile(r'%pip install -q "agecourse @ git\+https://github\.com/[^"@]+@[^"]+"')


def badge(path: Path) -> str:
    """The badge HTML for one notebook: opens that notebook's own path in Colab."""
    rel = path.resolve().relative_to(ROOT).as_posix()
    url = f"https://colab.research.google.com/github/{COURSE_REPO}/blob/{COURSE_REF}/{rel}"
    return f'<a href="{url}" target="_parent"><img src="{BADGE_IMAGE}" alt="Open In Colab"/></a>\n\n'


def install_line() -> str:
    """The Colab-only install line of the setup cell, pinned to the same repository and ref."""
    return f'%pip install -q "agecourse @ git+https://github.com/{COURSE_REPO}@{COURSE_REF}"'


def update(path: Path) -> bool:
    """Rewrite badge and install line of one notebook; returns True if anything changed."""
    nb = nbformat.read(path, as_version=4)
    changed = False
    first = nb.cells[0]
    new_source = badge(path) + BADGE_RE.sub("", first.source)
    if first.cell_type == "markdown" and new_source != first.source:
        first.source, changed = new_source, True
    for cell in nb.cells:
        if cell.cell_type == "code" and INSTALL_RE.search(cell.source):
            fixed = INSTALL_RE.sub(install_line(), cell.source)
            if fixed != cell.source:
                cell.source, changed = fixed, True
    if changed:
        nbformat.write(nb, path)
    return changed


def notebooks() -> list[Path]:
    """Every notebook the course ships: lessons, exercises and solutions."""
    return sorted(
        p
        for folder in ("notebooks", "exercises", "solutions")
        for p in (ROOT / folder).rglob("*.ipynb")
        if ".ipynb_checkpoints" not in p.parts
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale notebooks, change nothing")
    args = parser.parse_args()
    stale = []
    for path in notebooks():
        if args.check:
            nb = nbformat.read(path, as_version=4)
            if not nb.cells[0].source.startswith(badge(path)):
                stale.append(path)
        elif update(path):
            print(f"updated {path.relative_to(ROOT)}")
    for path in stale:
        print(f"stale badge: {path.relative_to(ROOT)}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
