"""Prose stays true: every ``agecourse`` function, class or module a lesson's markdown names exists.

A lesson names package code in two ways: ``agecourse.module.name`` (anywhere in its text) and
```module.name``` in backticks, where ``module`` is a module of the package or the name the lesson
imports it under (``from agecourse import evaluate as ev`` makes ```ev.score``` a reference); and
```settings.field``` names a field of :class:`agecourse.config.Settings`. Each reference is resolved
by importing the module and looking the attribute chain up; a name that does not exist (renamed,
removed, never written) fails the test with the lesson and the reference.
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import re
from pathlib import Path

import pytest

import agecourse

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
LESSONS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
MODULES = {info.name for info in pkgutil.iter_modules(agecourse.__path__)}

_QUALIFIED = re.compile(r"\bagecourse((?:\.\w+)+)")
_BACKTICKS = re.compile(r"`([^`\n]+)`")
_DOTTED = re.compile(r"^(\w+)((?:\.\w+)+)")


def _cells(path: Path, kind: str) -> list[str]:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == kind]


def module_aliases(code_cells: list[str]) -> dict[str, str]:
    """``{name in the lesson: agecourse module}`` from the lesson's imports (``from agecourse import
    evaluate as ev``, ``import agecourse.transfer as tr``), plus every module under its own name."""
    aliases = {name: name for name in MODULES}
    for source in code_cells:
        lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
        try:
            tree = ast.parse("\n".join(lines))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "agecourse":
                aliases.update({a.asname or a.name: a.name for a in node.names if a.name in MODULES})
            elif isinstance(node, ast.Import):
                for a in node.names:
                    parts = a.name.split(".")
                    if parts[0] == "agecourse" and len(parts) == 2 and a.asname:
                        aliases[a.asname] = parts[1]
    return aliases


def references(markdown: str, aliases: dict[str, str]) -> set[str]:
    """Dotted ``agecourse`` names the text refers to, each written out as ``agecourse.module.name``."""
    found = {f"agecourse{match.group(1)}" for match in _QUALIFIED.finditer(markdown)}
    for code in _BACKTICKS.findall(markdown):
        match = _DOTTED.match(code.strip())
        if match and match.group(1) in aliases:
            found.add(f"agecourse.{aliases[match.group(1)]}{match.group(2)}")
        elif match and match.group(1) == "settings":  # the lessons' Settings object
            found.add(f"agecourse.config.Settings.{match.group(2).split('.')[1]}")
    return {name.rstrip(".") for name in found}


def missing(reference: str) -> str:
    """Why ``agecourse.module.name...`` does not resolve ("" when it does)."""
    parts = reference.split(".")
    if len(parts) < 2:
        return ""
    try:
        target = importlib.import_module(".".join(parts[:2]))
    except ModuleNotFoundError:
        return f"no module {'.'.join(parts[:2])}"
    for depth, attribute in enumerate(parts[2:], start=2):
        names = set(dir(target)) | set(getattr(target, "__dataclass_fields__", {}))  # fields without defaults
        if attribute.endswith("_") and any(name.startswith(attribute) for name in names):
            return ""  # `settings.transfer_*`: a family of fields
        if attribute in names and not hasattr(target, attribute):
            return ""  # a dataclass field without a default
        if not hasattr(target, attribute):
            try:  # a sub-module (agecourse.grading.report) is not an attribute until imported
                target = importlib.import_module(".".join(parts[: depth + 1]))
                continue
            except ModuleNotFoundError:
                return f"{'.'.join(parts[:depth])} has no {attribute!r}"
        target = getattr(target, attribute)
    return ""


def test_references_and_aliases_are_found_and_resolved():
    aliases = module_aliases(["from agecourse import evaluate as ev\nimport agecourse.transfer as tr\n%pip x"])
    text = "Call `ev.score(model, ...)`, `tr.split_model`, `settings.flip_tta`, see agecourse.config.get_settings."
    assert references(text, aliases) == {
        "agecourse.evaluate.score",
        "agecourse.transfer.split_model",
        "agecourse.config.Settings.flip_tta",
        "agecourse.config.get_settings",
    }
    assert missing("agecourse.config.Settings.flip_tta") == ""
    assert missing("agecourse.config.Settings.epochs") == "" and missing("agecourse.config.Settings.transfer_") == ""
    assert missing("agecourse.config.Settings.extra") == "agecourse.config.Settings has no 'extra'"
    assert missing("agecourse.evaluate.score") == ""
    assert missing("agecourse.evaluate.no_such_function") == "agecourse.evaluate has no 'no_such_function'"
    assert missing("agecourse.nonexistent.thing") == "no module agecourse.nonexistent"


@pytest.mark.parametrize("lesson", LESSONS, ids=[path.stem for path in LESSONS])
def test_lesson_prose_names_only_existing_package_code(lesson: Path):
    aliases = module_aliases(_cells(lesson, "code"))
    wrong = {}
    for markdown in _cells(lesson, "markdown"):
        for reference in sorted(references(markdown, aliases)):
            problem = missing(reference)
            if problem:
                wrong[reference] = problem
    assert not wrong, f"{lesson.name} names package code that does not exist: {wrong}"


# --- numbers ------------------------------------------------------------------------------------

# A number with a unit in a lesson's text ("224 px", "95 %", "81 years").
_NUMBER = re.compile(
    r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)\s?(%|(?:years?|MB|GB|min(?:utes)?|seconds|px|faces|images|epochs|points)\b)"
)
# Text between <!-- bench:NAME --> markers is written from a results file (scripts and bench_report).
_GENERATED = re.compile(r"<!-- bench:(\w+) -->.*?<!-- /bench:\1 -->", re.S)
# Worked examples whose numbers are part of the example (not measurements, not settings), per lesson.
EXAMPLES = {
    "11_gradcam": {"45 years": "an example prediction in the text"},
}


def known_numbers() -> set[float]:
    """Numbers the package holds: every profile's settings and the constants lessons describe."""
    from agecourse import balance, bias, conformal, faces
    from agecourse.config import PROFILES, get_settings

    numbers: set[float] = {95.0, faces.CHIP_SIDE, balance.QUICK_EPOCHS, balance.QUICK_BUDGET_S, bias.MIN_GROUP_SIZE}
    numbers.add(round(100 * conformal.INTERVAL_LEVEL, 6))
    for profile in PROFILES:
        for value in vars(get_settings(profile)).values():
            values = value if isinstance(value, (tuple, list)) else (value,)
            numbers |= {float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return numbers


def code_numbers(code_cells: list[str]) -> set[float]:
    """Every number literal in a lesson's code (the prose may describe what its cells do)."""
    found = set()
    for source in code_cells:
        found |= {float(n.replace("_", "")) for n in re.findall(r"(?<![\w.])\d[\d_]*(?:\.\d+)?", source)}
    return found


def stated_numbers(markdown: str) -> list[tuple[str, float]]:
    """``(text, value)`` of every number with a unit that the text states outside generated blocks."""
    text = _GENERATED.sub("", markdown)
    return [(m.group(0), float(m.group(1).replace(",", ""))) for m in _NUMBER.finditer(text)]


def test_stated_numbers_are_found_outside_generated_blocks_only():
    text = "A 224 px image, 95 % intervals; <!-- bench:photo -->MAE 4.64 years<!-- /bench:photo --> and 1,200 faces."
    assert stated_numbers(text) == [("224 px", 224.0), ("95 %", 95.0), ("1,200 faces", 1200.0)]
    assert code_numbers(["cap_ages(train, max_age=80)\nx = 23_708"]) == {80.0, 23708.0}
    assert 4.59 not in known_numbers()  # a measured MAE is not a setting: typed into a lesson, it fails


@pytest.mark.parametrize("lesson", LESSONS, ids=[path.stem for path in LESSONS])
def test_numbers_in_a_lessons_text_come_from_its_code_the_settings_or_a_results_block(lesson: Path):
    """A number the text states is a setting or package constant, a value the lesson's own cells use,
    a worked example listed in :data:`EXAMPLES`, or text generated from a results file; anything else
    (a measurement typed by hand, a setting that has since moved) fails with the lesson and the text."""
    allowed = known_numbers() | code_numbers(_cells(lesson, "code"))
    examples = EXAMPLES.get(lesson.stem, {})
    typed = [
        text
        for markdown in _cells(lesson, "markdown")
        for text, value in stated_numbers(markdown)
        if value not in allowed and text not in examples
    ]
    assert not typed, f"{lesson.name} states numbers nothing in the package or its cells holds: {typed}"


# --- functions the text names -----------------------------------------------------------------

_LESSON_MENTION = re.compile(r"\blessons? \d\d", re.I)
# Package functions a lesson's text explains without its cells calling them directly (the cells call the
# function that runs them), per lesson, with what they are to the lesson.
DESCRIBED = {
    "10_transfer": {
        "agecourse.transfer_training.train_two_phase_cached": "what recipes.train_cached_for runs",
        "agecourse.transfer_training.run_phases": "the phase loop of both trainers",
    },
    "12_bias": {"agecourse.balance.add_group_weights": "the benchmark's arm b, read from its results"},
}


def _resolve(reference: str):
    """The object ``agecourse.module.name...`` names (None when it does not resolve)."""
    parts = reference.split(".")
    try:
        target = importlib.import_module(".".join(parts[:2]))
    except ModuleNotFoundError:
        return None
    for attribute in parts[2:]:
        target = getattr(target, attribute, None)
    return target


def unused_functions(lesson: Path) -> list[str]:
    """Package functions and classes the lesson's text names in a sentence that names no other lesson,
    that its code cells never use (and :data:`DESCRIBED` does not list)."""
    code = "\n".join(_cells(lesson, "code"))
    aliases = module_aliases(_cells(lesson, "code"))
    unused = []
    for markdown in _cells(lesson, "markdown"):
        for sentence in re.split(r"(?<=[.!?])\s+|\n\n", markdown):
            if _LESSON_MENTION.search(sentence):
                continue  # "lesson 12 calls `bias.group_metrics`": a reference to another lesson
            for reference in sorted(references(sentence, aliases)):
                if not callable(_resolve(reference)) or reference in DESCRIBED.get(lesson.stem, {}):
                    continue  # settings fields and constants are data, not functions
                if not re.search(rf"\b{re.escape(reference.rsplit('.', 1)[1])}\b", code):
                    unused.append(reference)
    return unused


@pytest.mark.parametrize("lesson", LESSONS, ids=[path.stem for path in LESSONS])
def test_functions_a_lessons_text_names_are_used_by_its_cells(lesson: Path):
    """The drift this catches: prose saying "`artifacts.get_model_a` loads the model" while the cells
    call another function."""
    assert not unused_functions(lesson), f"{lesson.name}'s text names functions its cells do not use"


def test_a_function_named_but_not_called_is_reported(tmp_path):
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": "`artifacts.get_model` loads the model."},
        {"cell_type": "markdown", "metadata": {}, "source": "Lesson 12 uses `bias.group_metrics`."},
        {
            "cell_type": "code",
            "metadata": {},
            "source": "from agecourse import model_choice\nmodel_choice.for_lesson(s)",
        },
    ]
    lesson = tmp_path / "99_drift.ipynb"
    lesson.write_text(json.dumps({"cells": cells}), encoding="utf-8")
    assert unused_functions(lesson) == ["agecourse.artifacts.get_model"]
