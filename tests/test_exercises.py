"""Tests of the exercises of lessons 01-13 and of scripts/build_exercises.py, which generates them.

* the committed exercises/, solutions/ and agecourse/exercise_tests/ are what the sources give;
* every exercise has at least two graded questions, each saying what to do, what is given and how
  it is checked, with a check cell after it; students never see solutions or hidden checks;
* every solution scores full marks, and every untouched exercise runs to the end without an error
  with each question reported "not answered yet" (0 points), each graded in one batch (one
  :func:`agecourse.grading.grade_folder` call, two notebooks at a time);
* every declared wrong answer (the solution with one typical mistake) loses points, with feedback
  naming the mistake (:mod:`agecourse.grading.mutants`, run in this process).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agecourse import grading
from agecourse.grading.checks import written_marker
from agecourse.grading.mutants import run_wrong_answers

ROOT = Path(__file__).resolve().parents[1]
LESSONS = [
    "01_load",
    "02_explore",
    "03_preprocess",
    "04_balance",
    "05_augment",
    "06_build_cnn",
    "07_compile",
    "08_train",
    "09_evaluate",
    "10_transfer",
    "11_gradcam",
    "12_bias",
    "13_deploy",
]


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_exercises", ROOT / "scripts" / "build_exercises.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_exercises", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


build = _load_builder()


def _cells(path: Path) -> list[dict]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [dict(c, source="".join(c["source"]) if isinstance(c["source"], list) else c["source"]) for c in cells]


# --- the build ---------------------------------------------------------------------------------


def test_one_source_per_lesson():
    assert sorted(p.stem for p in (ROOT / "exercises-src").glob("*.ipynb")) == LESSONS
    for folder in ("exercises", "solutions"):
        assert sorted(p.stem for p in (ROOT / folder).glob("*.ipynb")) == LESSONS
    assert grading.available_exercises() == LESSONS


def test_rebuilding_changes_nothing(tmp_path):
    build.build_all(tmp_path)
    assert build.compare(tmp_path) == []


def test_build_check_command_passes():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_exercises.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(
    shutil.which("ruff") is None and not (Path(sys.executable).parent / "ruff").exists(), reason="no ruff"
)
def test_project_is_ruff_clean():
    """Package, tests, benchmarks, lesson notebooks, exercise sources and generated checks: lint and format.

    (Generated student notebooks may import names their stripped solution used: see pyproject.toml.)"""
    ruff = str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        ruff = shutil.which("ruff")
    for command in (["check", "--no-cache"], ["format", "--check", "--no-cache"]):
        result = subprocess.run([ruff, *command, "."], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr


def test_strip_and_keep_solution():
    source = (
        "def f(x):\n"
        "    # BEGIN SOLUTION\n"
        "    return x + 1\n"
        "    # END SOLUTION\n"
        "# BEGIN SOLUTION: model = ...\n"
        "model = make(\n"
        "    1, 2\n"
        ")\n"
        "# END SOLUTION\n"
        "answer = f(1)  # SOLUTION\n"
        "answer"
    )
    assert build.strip_solution(source, "here") == (
        "def f(x):\n"
        "    # YOUR CODE HERE\n"
        "    ...\n"
        "model = ...  # YOUR CODE HERE\n"
        "answer = ...  # YOUR CODE HERE\n"
        "answer"
    )
    assert (
        build.keep_solution(source) == "def f(x):\n    return x + 1\nmodel = make(\n    1, 2\n)\nanswer = f(1)\nanswer"
    )


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("# BEGIN SOLUTION\nx = 1", "# BEGIN SOLUTION without # END SOLUTION"),
        ("x = 1\n# END SOLUTION", "# END SOLUTION without # BEGIN SOLUTION"),
        ("print(1)  # SOLUTION", "only works on 'name = value' lines"),
    ],
)
def test_broken_markers_name_the_cell(source, problem):
    with pytest.raises(build.SourceError, match=re.escape(problem)):
        build.strip_solution(source, "exercises-src/01_load.ipynb, cell 3")


def test_a_question_without_checks_is_refused(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    nb = new_notebook(
        cells=[
            new_markdown_cell("# Exercises 99"),
            new_markdown_cell("## Question 1 — One"),
            new_code_cell("x = 1  # SOLUTION"),
            new_markdown_cell("## Question 2 — Two"),
        ]
    )
    path = tmp_path / "99_demo.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(build.SourceError, match="q1 has no '# TESTS q1' cell"):
        build.build_one(path)


# --- what students and instructors get ----------------------------------------------------------


@pytest.mark.parametrize("name", LESSONS)
def test_exercise_structure(name):
    exercise, solution = _cells(ROOT / "exercises" / f"{name}.ipynb"), _cells(ROOT / "solutions" / f"{name}.ipynb")
    assert [c["cell_type"] for c in exercise] == [c["cell_type"] for c in solution]
    assert "colab.research.google.com" in exercise[0]["source"]
    assert any(f'Grader("{name}")' in c["source"] for c in exercise)
    headings = [i for i, c in enumerate(exercise) if c["cell_type"] == "markdown" and "## Question " in c["source"]]
    assert len(headings) >= 2
    written = grading.load_suite(name).written
    assert len(written) >= 1, f"{name}: at least one written question"
    for number, start in enumerate(headings, 1):
        text = exercise[start]["source"]
        end = headings[number] if number < len(headings) else len(exercise)
        for part in ("**What to do.**", "**Given.**", "**How it is checked.**"):
            assert part in text, f"{name} question {number}: no {part}"
        if f"q{number}" in written:
            assert "(written, " in text and written_marker(f"q{number}") in text
            answers = [c for c in exercise[start:end] if c["source"].startswith(written_marker(f"q{number}"))]
            assert len(answers) == 1 and answers[0]["cell_type"] == "markdown", f"{name} q{number}: one answer cell"
            continue
        assert f'grader.check("q{number}")' in text, f"{name} question {number}: no check named"
        checks = [c for c in exercise[start:end] if c["source"] == f'grader.check("q{number}")']
        assert len(checks) == 1, f"{name} question {number}: one check cell expected after it"
    markdown = "\n".join(c["source"] for c in exercise if c["cell_type"] == "markdown")
    assert "## Questionnaire (not graded)" in markdown and "## Optional extensions" in markdown
    code = "\n".join(c["source"] for c in exercise if c["cell_type"] == "code")
    assert "YOUR CODE HERE" in code
    for leak in ("SOLUTION", "@check(", "# TESTS", "hidden=True", "SOURCE ONLY"):
        assert leak not in code, f"exercises/{name}.ipynb shows {leak!r}"
    solution_code = "\n".join(c["source"] for c in solution if c["cell_type"] == "code")
    for leak in ("YOUR CODE HERE", "SOLUTION", "@check("):
        assert leak not in solution_code, f"solutions/{name}.ipynb shows {leak!r}"
    assert all(not c.get("outputs") for c in exercise + solution if c["cell_type"] == "code")


def test_at_least_26_graded_questions():
    total = sum(len(grading.load_suite(name).questions) for name in LESSONS)
    assert total >= 26
    hidden = [c for name in LESSONS for c in grading.load_suite(name).checks if c.hidden]
    assert hidden, "hidden checks catch answers fitted to the public ones"


# --- grading every solution and every untouched exercise ----------------------------------------


def _grade_all(folder: str, tmp_path_factory) -> dict[str, grading.NotebookGrade]:
    root = tmp_path_factory.mktemp(folder)
    (root / "submissions" / "student").mkdir(parents=True)
    for name in LESSONS:
        shutil.copy(ROOT / folder / f"{name}.ipynb", root / "submissions" / "student")
    grades = grading.grade_folder(
        root / "submissions", root / "out", timeout=240, cell_timeout=120, workers=2, verbose=False
    )
    return {g.submission.exercise: g for g in grades}


@pytest.fixture(scope="module")
def solution_grades(tmp_path_factory):
    return _grade_all("solutions", tmp_path_factory)


@pytest.fixture(scope="module")
def exercise_grades(tmp_path_factory):
    return _grade_all("exercises", tmp_path_factory)


def test_every_solution_scores_full_marks(solution_grades):
    assert sorted(solution_grades) == LESSONS
    for name, grade in solution_grades.items():
        assert grade.status == "ran to the end", (name, grade.status)
        assert grade.cell_errors == [], (name, grade.cell_errors)
        for row in grade.rows():
            if row["kind"] == "manual":  # the model answer, waiting for the instructor's mark
                assert row["points"] == "" and len(row["message"]) > 80, (name, row)
                continue
            assert row["points"] == row["max_points"], (name, row)


def test_every_untouched_exercise_runs_to_the_end_with_nothing_answered(exercise_grades):
    """A student's Run all before writing anything (the grader runs the ci profile, one kernel per
    notebook): no cell raises, and every auto-graded question says "not answered yet", 0 points."""
    assert sorted(exercise_grades) == LESSONS
    for name, grade in exercise_grades.items():
        assert grade.status == "ran to the end", (name, grade.status)
        assert grade.cell_errors == [], (name, grade.cell_errors)
        assert len(grade.questions) == len(grade.max_points) >= 2, name  # every question was checked
        for result in grade.questions:
            assert not result.answered, (name, result.question, result.summary())
        for row in grade.rows():
            if row["kind"] == "manual":
                assert (row["points"], row["message"]) == ("", "(no answer)"), (name, row)
                continue
            assert row["points"] == "0", (name, row)
            assert row["message"].startswith(f"{grading.NOT_ANSWERED}: "), (name, row)
            assert "Traceback" not in row["message"] and "raised" not in row["message"], (name, row)
            assert float(row["max_points"]) > 0


# --- wrong answers: the checks catch typical mistakes ----------------------------------------------


def test_every_auto_graded_question_declares_two_wrong_answers():
    for name in LESSONS:
        suite = grading.load_suite(name)
        for question in suite.questions:
            mistakes = [w for w in suite.wrong_answers if w.question == question]
            assert len(mistakes) >= 2, f"{name} {question}: {len(mistakes)} wrong answers declared"


@pytest.mark.parametrize("name", LESSONS)
def test_every_wrong_answer_loses_points_with_feedback_naming_it(name):
    results = run_wrong_answers(ROOT / "solutions" / f"{name}.ipynb")
    solutions = [r for r in results if not r.mistake]
    assert [r.question for r in solutions] == grading.load_suite(name).questions
    for r in solutions:
        assert not r.lost_points, f"{name} {r.question}: the solution itself lost points: {r.feedback}"
    wrong = [r for r in results if r.mistake]
    assert len(wrong) >= 2 * len(solutions)
    for r in wrong:
        assert r.lost_points, f"{name} {r.question} wrong answer {r.mistake!r} scored full marks"
        assert r.named, f"{name} {r.question} {r.mistake!r}: feedback does not say {r.says!r}: {r.feedback}"


def test_a_stale_wrong_answer_breaks_the_build(tmp_path):
    import nbformat

    source = nbformat.read(ROOT / "exercises-src" / "07_compile.ipynb", as_version=4)
    for cell in source.cells:
        if cell.source.startswith("# TESTS q2"):
            cell.source += '\nwrong("q2", "stale", "text that is not in the solution", "x", says="x")'
    path = tmp_path / "07_compile.ipynb"
    nbformat.write(source, path)
    with pytest.raises(build.SourceError, match="'text that is not in the solution' occurs 0 times"):
        build.build_one(path)
