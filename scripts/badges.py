"""Write every notebook's Colab badge and Colab install line from one setting.

The setting is ``COURSE_REPO`` / ``COURSE_REF`` in ``agecourse/notebook.py``. Run after changing
it, or after adding a notebook:

    python scripts/badges.py          # rewrite notebooks in place
    python scripts/badges.py --check  # exit 1 if a notebook or a README link is out of date (tests)
    python scripts/badges.py --readme # print the README's Colab and Binder badges for this setting

``--check`` also reads ``README.md``: every Colab or Binder link there must use the same repository
and ref and open a file that exists.
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
BINDER_IMAGE = "https://mybinder.org/badge_logo.svg"
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


def binder_url(target: str, voila: bool = False) -> str:
    """The Binder address that opens ``target`` (a repository path) in JupyterLab, or with
    ``voila=True`` renders it as a Voila page (the demo)."""
    base = f"https://mybinder.org/v2/gh/{COURSE_REPO}/{COURSE_REF}"
    if voila:
        return f"{base}?urlpath=voila%2Frender%2F{target.replace('/', '%2F')}"
    return f"{base}?labpath={target.replace('/', '%2F')}"


def readme_badges() -> str:
    """Markdown badges for the README: lesson 01 in Colab and Binder, and the demo page on Binder."""
    colab = f"https://colab.research.google.com/github/{COURSE_REPO}/blob/{COURSE_REF}/notebooks/01_load.ipynb"
    return "\n".join(
        [
            f"[![Open lesson 01 in Colab]({BADGE_IMAGE})]({colab})",
            f"[![Open lesson 01 on Binder]({BINDER_IMAGE})]({binder_url('notebooks/01_load.ipynb')})",
            f"[![Demo on Binder (Voila)]({BINDER_IMAGE})]({binder_url('demo/app.ipynb', voila=True)})",
        ]
    )


LINK_RE = re.compile(
    r"https://colab\.research\.google\.com/github/(?P<c_repo>[^/\s)\"]+/[^/\s)\"]+)/blob/(?P<c_ref>[^/\s)\"]+)/"
    r"(?P<c_path>[^\s)\"]+\.ipynb)"
    r"|https://mybinder\.org/v2/gh/(?P<b_repo>[^/\s)\"]+/[^/\s)\"]+)/(?P<b_ref>[^?\s)\"]+)"
    r"(?:\?(?:labpath=|urlpath=(?:voila|lab|tree)%2F(?:render%2F|tree%2F)?)(?P<b_path>[^\s)\"&]+))?"
)


def readme_problems(text: str) -> list[str]:
    """Colab / Binder links in README text that point at another repository or ref, or at a
    notebook that does not exist."""
    problems = []
    for match in LINK_RE.finditer(text):
        repo = match["c_repo"] or match["b_repo"]
        ref = match["c_ref"] or match["b_ref"]
        path = match["c_path"] or (match["b_path"] or "").replace("%2F", "/")
        if (repo, ref) != (COURSE_REPO, COURSE_REF):
            problems.append(f"{match[0]}: expected {COURSE_REPO} at {COURSE_REF}")
        if path and not (ROOT / path).is_file():
            problems.append(f"{match[0]}: {path} does not exist")
    return problems


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
    parser.add_argument("--readme", action="store_true", help="print the README badges and exit")
    args = parser.parse_args()
    if args.readme:
        print(readme_badges())
        return 0
    stale = []
    for path in notebooks():
        if args.check:
            nb = nbformat.read(path, as_version=4)
            installs = [m.group() for c in nb.cells if c.cell_type == "code" for m in INSTALL_RE.finditer(c.source)]
            if not nb.cells[0].source.startswith(badge(path)) or any(i != install_line() for i in installs):
                stale.append(path)
        elif update(path):
            print(f"updated {path.relative_to(ROOT)}")
    for path in stale:
        print(f"stale badge or install line: {path.relative_to(ROOT)}")
    readme = ROOT / "README.md"
    problems = readme_problems(readme.read_text()) if args.check and readme.exists() else []
    for problem in problems:
        print(f"README.md: {problem}")
    return 1 if stale or problems else 0


if __name__ == "__main__":
    sys.exit(main())
