"""The package's shape: no import cycles (counting imports inside functions too), every module
importable on its own, every module listed in the package's module table."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import agecourse

PACKAGE = Path(agecourse.__file__).resolve().parent


def module_names() -> list[str]:
    """Every module of the package, dotted (``agecourse.data``), the package itself excluded."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if len(parts) > 1:
            names.append(".".join(parts))
    return names


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports, wherever in the module the import statement is."""
    known = set(module_names())
    graph = {}
    for name in known:
        path = PACKAGE.parent.joinpath(*name.split("."))
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.add(node.module)
                targets |= {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
        graph[name] = (targets & known) - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as ``[a, b, ..., a]``, or ``None`` when there is none."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_find_cycle_finds_a_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles():
    graph = import_graph()
    assert "agecourse.archive" in graph["agecourse.data"]  # the graph sees the package's imports
    assert find_cycle(graph) is None


def test_every_module_imports_in_a_fresh_interpreter():
    names = [name for name in module_names() if name != "agecourse.__main__"]  # that one runs the CLI
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    done = subprocess.run(
        [sys.executable, "-c", code, *names], capture_output=True, text=True, timeout=300, cwd=PACKAGE.parent
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_package_docstring_lists_every_module_once():
    listed = re.findall(r"^``(\w+)``  ", agecourse.__doc__, re.M)  # the rows of the module table
    modules = sorted(
        path.stem if path.is_file() else path.name
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" and not path.name.startswith("__")) or (path / "__init__.py").is_file()
    )
    assert sorted(listed) == modules


MAX_LINES = 650


def test_modules_stay_small():
    too_long = {}
    for name in module_names():
        path = PACKAGE.parent.joinpath(*name.split("."))
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES and ".exercise_tests." not in name:
            too_long[name] = lines
    assert too_long == {}, f"split these modules (more than {MAX_LINES} lines): {too_long}"
