"""One source: a function a lesson shows is the function the package ships.

A lesson that teaches a technique defines its functions on the page, in a code cell whose first line
is ``# One source: agecourse/<module>.py ...``; the package ships the same definitions. This test
compares each such definition with the package's, as syntax trees (``ast.dump``) with docstrings
left out, so a change to either copy alone fails here. :data:`SHOWN` lists what each lesson must
show, so deleting a cell from a lesson fails too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "agecourse"
MARKER = re.compile(r"^# One source: agecourse/(\w+)\.py\b")

# lesson notebook -> {function shown on the page: package module that ships it}
SHOWN = {
    "02_explore": {"plot_distributions": "explore"},
    "03_preprocess": {"make_dataset": "data"},
    "04_balance": {
        "cap_ages": "balance",
        "downsample": "balance",
        "upsample": "balance",
        "band_weights": "balance",
        "add_sample_weights": "balance",
    },
    "05_augment": {"make_augmentation": "augment"},
    "06_build_cnn": {"conv_block": "models", "add_heads": "models", "build_model_a": "models"},
    "07_compile": {"make_age_loss": "models", "compile_model": "models"},
    "08_train": {"cosine_schedule": "training", "make_callbacks": "training", "model_a_hypermodel": "tuning"},
    "09_evaluate": {
        "age_metrics": "evaluate",
        "bootstrap_intervals": "evaluate",
        "conformal_half_width": "conformal",
        "interval_bounds": "conformal",
        "with_intervals": "conformal",
        "band_half_widths": "conformal",
        "reliability_table": "calibration",
        "expected_calibration_error": "calibration",
        "fit_temperature": "calibration",
        "apply_temperature": "calibration",
        "top_losses": "explain",
        "plot_top_losses": "explain",
    },
    "10_transfer": {"set_trainable_top": "transfer", "split_model": "transfer", "cached_features": "transfer_training"},
    "11_gradcam": {
        "make_gradcam_model": "explain",
        "head_logits": "explain",
        "gradcam_score": "explain",
        "make_gradcam_heatmaps": "explain",
    },
    "12_bias": {"per_group": "bias", "group_intervals": "bias", "fairness_gaps": "bias"},
    "13_deploy": {
        "similarity_transform": "faces",
        "align_face": "faces",
        "to_model_input": "deploy",
        "export_tflite": "deploy",
    },
}


def _without_docstrings(node: ast.AST) -> ast.AST:
    """A copy of a definition with every docstring removed (the lesson's prose replaces them)."""
    node = ast.parse(ast.unparse(node)).body[0]
    for item in ast.walk(node):
        body = getattr(item, "body", None)
        if (
            isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            item.body = body[1:] or [ast.Pass()]
    return node


def definitions(source: str) -> dict[str, str]:
    """Top-level function and class definitions of some Python source: name -> ``ast.dump``."""
    tree = ast.parse(source)
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {node.name: ast.dump(_without_docstrings(node)) for node in tree.body if isinstance(node, kinds)}


def lesson_definitions(notebook: Path) -> dict[str, tuple[str, str, int]]:
    """Definitions in a lesson's one-source cells: name -> (module, ``ast.dump``, lines of code)."""
    found = {}
    for cell in nbformat.read(notebook, as_version=4).cells:
        match = MARKER.match(cell.source) if cell.cell_type == "code" else None
        if not match:
            continue
        lines = {name: 0 for name in definitions(cell.source)}
        for node in ast.parse(cell.source).body:
            if getattr(node, "name", None) in lines:
                lines[node.name] = node.end_lineno - node.lineno + 1
        for name, dump in definitions(cell.source).items():
            found[name] = (match.group(1), dump, lines[name])
    return found


def problems(notebook: Path, shown: dict[str, str], package: Path = PACKAGE) -> list[str]:
    """Every way a lesson and the package disagree: a listed function missing from the lesson or from
    the package, shipped in another module than listed, or a different definition."""
    found = lesson_definitions(notebook)
    issues = []
    for name, module in shown.items():
        if name not in found:
            issues.append(f"{notebook.name}: does not show {name} in a one-source cell")
            continue
        marked, dump, _ = found[name]
        if marked != module:
            issues.append(f"{notebook.name}: {name} is marked as agecourse/{marked}.py, expected {module}.py")
        shipped = definitions((package / f"{module}.py").read_text()).get(name)
        if shipped is None:
            issues.append(f"agecourse/{module}.py has no {name} (shown in {notebook.name})")
        elif shipped != dump:
            issues.append(f"{name}: {notebook.name} and agecourse/{module}.py define it differently")
    return issues


@pytest.mark.parametrize("lesson", sorted(SHOWN))
def test_lesson_shows_the_code_the_package_ships(lesson):
    assert problems(ROOT / "notebooks" / f"{lesson}.ipynb", SHOWN[lesson]) == []


@pytest.mark.parametrize("lesson", sorted(SHOWN))
def test_every_one_source_definition_is_listed_and_readable(lesson):
    found = lesson_definitions(ROOT / "notebooks" / f"{lesson}.ipynb")
    assert set(found) == set(SHOWN[lesson]), "list every function a one-source cell defines in SHOWN"
    too_long = {name: n for name, (_, _, n) in found.items() if n > 45}
    assert not too_long, f"split these into smaller functions (lines): {too_long}"


def _edit_lesson_copy(source: Path, dest: Path, name: str, old: str, new: str) -> None:
    """Write a copy of a lesson with ``old`` replaced by ``new`` in the one-source cell defining ``name``."""
    nb = nbformat.read(source, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and MARKER.match(c.source) and f"def {name}(" in c.source]
    assert len(cells) == 1 and old in cells[0].source, f"{name} / {old!r} not found in {source.name}"
    cells[0].source = cells[0].source.replace(old, new, 1)
    nbformat.write(nb, dest)


@pytest.mark.parametrize(
    ("lesson", "name", "old", "new"),
    [
        ("06_build_cnn", "conv_block", 'padding="same"', 'padding="valid"'),
        ("11_gradcam", "gradcam_score", "1.0, -1.0", "-1.0, 1.0"),
        ("03_preprocess", "make_dataset", "ds.batch(batch_size)", "ds.batch(batch_size, drop_remainder=True)"),
    ],
)
def test_a_lesson_copy_edited_alone_fails(tmp_path, lesson, name, old, new):
    copy = tmp_path / f"{lesson}.ipynb"
    _edit_lesson_copy(ROOT / "notebooks" / f"{lesson}.ipynb", copy, name, old, new)
    module = SHOWN[lesson][name]
    assert problems(copy, SHOWN[lesson]) == [f"{name}: {copy.name} and agecourse/{module}.py define it differently"]


def test_a_package_copy_edited_alone_fails(tmp_path):
    package = tmp_path / "agecourse"
    package.mkdir()
    source = (PACKAGE / "models.py").read_text()
    edited = source.replace('padding="same"', 'padding="valid"', 1)
    assert edited != source
    (package / "models.py").write_text(edited)
    lesson = ROOT / "notebooks" / "06_build_cnn.ipynb"
    assert problems(lesson, SHOWN["06_build_cnn"], package) == [
        "conv_block: 06_build_cnn.ipynb and agecourse/models.py define it differently"
    ]


def test_docstrings_and_comments_may_differ_code_may_not():
    shipped = 'def f(x):\n    """Long docstring."""\n    return x + 1  # comment\n'
    assert definitions(shipped) == definitions("def f(x):\n    return x + 1\n")
    assert definitions(shipped) != definitions("def f(x):\n    return x + 2\n")
