"""No dead code: every top-level function and class of the package is used somewhere outside the
tests (another module, a lesson, an exercise, the demo, a benchmark or a script). A function only
the tests call is a function nobody needs."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USERS = (
    "agecourse/**/*.py",
    "bench/*.py",
    "scripts/*.py",
    "notebooks/*.ipynb",
    "exercises-src/*.ipynb",
    "demo/*.ipynb",
)


def definitions() -> list[tuple[Path, str]]:
    """``(module, name)`` of every top-level function and class of the package."""
    found = []
    for path in sorted((ROOT / "agecourse").rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found.append((path, node.name))
    return found


def test_every_package_function_is_used_outside_the_tests():
    sources = {path: path.read_text(encoding="utf-8") for pattern in USERS for path in ROOT.glob(pattern)}
    unused = []
    for module, name in definitions():
        word = re.compile(rf"\b{re.escape(name)}\b")
        uses = sum(len(word.findall(text)) for text in sources.values()) - 1  # less the definition itself
        if uses < 1:
            unused.append(f"{module.relative_to(ROOT)}: {name}")
    assert not unused, f"used nowhere but in tests (remove them): {unused}"
