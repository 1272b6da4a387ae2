"""Tests of agecourse.grading (exercise checks and batch grading; lesson exercises 01-13).

Fast unit tests of the checks and the student's grader come first. The batch tests then grade a
folder of crafted broken submissions, all built from ``solutions/01_load.ipynb`` in one
:func:`grade_folder` call, and compare the CSV rows with what each breakage should give.
"""

from __future__ import annotations

import csv
import hashlib
import json
import tempfile
from pathlib import Path

import nbformat
import pytest

from agecourse import grading
from agecourse.grading import (
    CheckFailed,
    Grader,
    Submission,
    Suite,
    close,
    detect_exercise,
    find_submissions,
    grade_folder,
    raises,
    run_check,
    same,
)

ROOT = Path(__file__).resolve().parents[1]
SOLUTION_01 = ROOT / "solutions" / "01_load.ipynb"


# --- assertions and single checks ----------------------------------------------------------------


def test_same_and_close_explain_the_difference():
    same((1, 2), (1, 2), "pair")
    with pytest.raises(CheckFailed, match=r"answer: expected 3, got None \(does the function end with a `return`"):
        same(None, 3, "answer")
    close([0.1, 0.2], [0.1, 0.2000001], "values")
    with pytest.raises(CheckFailed, match=r"expected shape \(2,\), got shape \(3,\)"):
        close([1, 2, 3], [1, 2], "values")
    with pytest.raises(CheckFailed, match="expected a number"):
        close("abc", 1.0, "value")


def test_raises_reports_a_missing_or_wrong_exception():
    with raises(ValueError, "f()"):
        raise ValueError("bad")
    nothing = pytest.raises(CheckFailed, match=r"f\(\): expected ValueError, but nothing was raised")
    with nothing, raises(ValueError, "f()"):
        pass
    other = pytest.raises(CheckFailed, match="expected ValueError, but it raised KeyError")
    with other, raises(ValueError, "f()"):
        raise KeyError("k")


def _one_check(func, hint: str = "the hint") -> grading.Check:
    suite = Suite("99_demo")
    suite.check("q1", "the check", hint=hint)(func)
    return suite.checks[0]


def test_run_check_explains_every_kind_of_failure():
    def needs_f(f):
        same(f(2), 4, "f(2)")

    check = _one_check(needs_f)
    passed = run_check(check, {"f": lambda x: x * 2}, timeout=10, grading=False)
    assert passed.passed and passed.earned == 1.0
    wrong = run_check(check, {"f": lambda x: x + 1}, timeout=10, grading=False)
    assert (wrong.passed, wrong.earned, wrong.message, wrong.hint) == (
        False,
        0.0,
        "f(2): expected 4, got 3",
        "the hint",
    )
    assert "`f` is not defined" in run_check(check, {}, timeout=10, grading=False).message
    assert "`f` is still `...`" in run_check(check, {"f": ...}, timeout=10, grading=False).message

    def boom(x):
        raise ZeroDivisionError("division by zero")

    crashed = run_check(check, {"f": boom}, timeout=10, grading=False)
    assert crashed.message.startswith("your code raised ZeroDivisionError: division by zero")

    def leave(x):
        raise SystemExit(2)

    assert run_check(check, {"f": leave}, timeout=10, grading=False).message == "your code called sys.exit(2)"


def test_run_check_stops_an_endless_loop():
    def spin(x):
        while True:
            pass

    outcome = run_check(_one_check(lambda f: f(1)), {"f": spin}, timeout=0.3, grading=True)
    assert not outcome.passed
    assert "took longer than 0.3 s" in outcome.message


def test_live_suite_runs_checks_as_they_are_defined():
    namespace = {"f": lambda x: x}
    check = Suite("99_demo", live=namespace).check
    check("q1", "identity")(lambda f: same(f(1), 1, "f(1)"))
    with pytest.raises(CheckFailed, match=r"q1: doubles: f\(1\): expected 2, got 1"):
        check("q1", "doubles")(lambda f: same(f(1), 2, "f(1)"))


# --- the student's grader ----------------------------------------------------------------------


def _swapped_parse_name(name: str) -> tuple[int, int, int]:
    age, gender, race = (int(v) for v in name.split("_")[:3])
    return age, race, gender


def test_student_check_shows_public_checks_with_hints_only(monkeypatch):
    monkeypatch.delenv(grading.RESULTS_ENV, raising=False)
    grader = Grader("01_load")
    assert "questions q1, q2" in repr(grader)
    result = grader.check("q1", {"parse_name": _swapped_parse_name})
    text = repr(result)
    assert all(not o.hidden for o in result.outcomes)  # hidden checks never run in a student's session
    assert result.hidden_not_run == 3
    assert "FAIL parses a plain name and a .chip.jpg name into three integers" in text
    assert "expected (25, 1, 3), got (25, 3, 1)" in text
    assert "hint: Drop the '.chip.jpg' ending" in text
    assert "(3 hidden checks will also run when your notebook is graded)" in text


def test_check_all_sums_the_public_checks(monkeypatch):
    monkeypatch.delenv(grading.RESULTS_ENV, raising=False)
    text = Grader("01_load").check_all({})
    assert text.endswith("Public checks: 0 of 4 points.")  # 4 more points come from hidden checks
    assert "`parse_name` is not defined" in text


def test_unknown_exercise_or_question_is_a_clear_error():
    with pytest.raises(ValueError, match="no checks for exercise '99_nothing'.*known: 01_load"):
        Grader("99_nothing")
    with pytest.raises(ValueError, match="has no question 'q9'"):
        Grader("01_load").check("q9", {})


def test_every_generated_suite_loads():
    exercises = grading.available_exercises()
    assert len(exercises) == 13
    for exercise in exercises:
        suite = grading.load_suite(exercise)
        assert len(suite.questions) >= 2, exercise
        assert all(suite.max_points(q) > 0 for q in suite.questions)


# --- finding and reading submissions -----------------------------------------------------------


def test_find_submissions_and_detect_exercise(tmp_path):
    (tmp_path / "ana").mkdir()
    (tmp_path / "ana" / "my work.ipynb").write_text(SOLUTION_01.read_text())
    (tmp_path / "ana" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "ana" / ".ipynb_checkpoints" / "x.ipynb").write_text("{}")
    (tmp_path / "ben_01_load.ipynb").write_text("")
    found = find_submissions(tmp_path)
    assert [(s.student, s.file) for s in found] == [("ana", "ana/my work.ipynb"), ("ben_01_load", "ben_01_load.ipynb")]
    notebook = json.loads(SOLUTION_01.read_text())
    assert detect_exercise(found[0].path, notebook) == "01_load"  # from the metadata
    notebook["metadata"] = {}
    assert detect_exercise(found[0].path, notebook) == "01_load"  # from the Grader("01_load") call
    assert detect_exercise(Path("12-bias.ipynb"), None) == "12_bias"  # from the number in the name
    assert detect_exercise(Path("homework.ipynb"), {"cells": []}) is None


def test_a_notebook_of_no_known_exercise_gets_one_row_with_the_reason(tmp_path):
    path = tmp_path / "homework.ipynb"
    path.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    grade = grading.grade_notebook(Submission(path, "homework", "homework.ipynb"))
    [row] = grade.rows()
    assert row["points"] == "0" and "cannot tell which exercise" in row["message"]


def test_output_folder_must_differ_from_submissions(tmp_path):
    with pytest.raises(ValueError, match="must not be the submissions folder"):
        grade_folder(tmp_path, tmp_path)
    with pytest.raises(FileNotFoundError, match="no .ipynb files"):
        grade_folder(tmp_path, tmp_path / "out")


def test_cli_reports_a_missing_folder(tmp_path, capsys):
    assert grading.main([str(tmp_path / "nothing"), "--out", str(tmp_path / "out")]) == 2
    assert "not a folder" in capsys.readouterr().err


# --- batch grading of crafted broken submissions -----------------------------------------------

STUBBORN_LOOP = """import time

while True:  # an endless loop that also swallows the grader's interrupt
    try:
        time.sleep(0.1)
    except KeyboardInterrupt:
        continue"""


def _crafted(folder: Path) -> None:
    """One folder per student, each holding a 01_load.ipynb broken in one way."""
    base = nbformat.read(SOLUTION_01, as_version=4)

    def index(text: str) -> int:
        return next(i for i, c in enumerate(base.cells) if c.cell_type == "code" and text in c.source)

    q1, q2 = index("def parse_name"), index("accepted, rejected = scan_names(demo)")

    def variant(student: str, edit=None) -> None:
        nb = nbformat.from_dict(json.loads(json.dumps(base)))
        if edit:
            edit(nb.cells)
        (folder / student).mkdir()
        nbformat.write(nb, folder / student / "01_load.ipynb")

    def prepend(i: int, code: str):
        def edit(cells):
            cells[i].source = code + "\n" + cells[i].source

        return edit

    def replace(i: int, code: str):
        def edit(cells):
            cells[i].source = code

        return edit

    def swap_labels(cells):
        cells[q1].source = cells[q1].source.replace("return age, gender, race", "return age, race, gender")

    def drop_check_cells(cells):
        cells[:] = [c for c in cells if not c.source.startswith("grader.check(")]

    variant("full")
    variant("wrong_answer", swap_labels)
    variant("raises", prepend(q2, 'raise RuntimeError("student bug")'))
    variant("loop", replace(q2, "while True:\n    pass"))
    variant("stubborn_loop", replace(q2, STUBBORN_LOOP))
    variant("sys_exit", prepend(q2, "import sys\n\nsys.exit(3)"))
    variant("kills_kernel", prepend(q2, "import os\n\nos._exit(1)"))
    variant("deletes_files", prepend(q1, "import os\n\nfor _f in os.listdir('.'):\n    os.remove(_f)"))
    variant("floods_output", prepend(q1, 'print("x" * 20_000_000)'))
    variant("no_check_cells", drop_check_cells)
    variant("no_cells", lambda cells: cells.clear())
    (folder / "empty").mkdir()
    (folder / "empty" / "01_load.ipynb").write_bytes(b"")
    (folder / "not_json").mkdir()
    (folder / "not_json" / "01_load.ipynb").write_text('{"cells": [ this is not JSON', encoding="utf-8")


def _fingerprint(folder: Path) -> dict[str, str]:
    """Every file's SHA-256 and every folder, by relative path."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder"
        for p in folder.rglob("*")
    }


@pytest.fixture(scope="module")
def broken(tmp_path_factory) -> dict:
    """Grade the crafted submissions once (one batch, two workers)."""
    root = tmp_path_factory.mktemp("broken")
    submissions, out, scratch = root / "submissions", root / "out", root / "tmp"
    submissions.mkdir()
    scratch.mkdir()
    _crafted(submissions)
    before = _fingerprint(submissions)
    saved = tempfile.tempdir
    tempfile.tempdir = str(scratch)  # where grade_notebook makes its scratch folders
    try:
        grades = grade_folder(submissions, out, timeout=40, cell_timeout=12, workers=2, verbose=False)
    finally:
        tempfile.tempdir = saved
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {
        "grades": grades,
        "rows": {(r["student"], r["question"]): r for r in rows},
        "csv": (out / "grades.csv").read_text(encoding="utf-8"),
        "out": out,
        "scratch": scratch,
        "before": before,
        "after": _fingerprint(submissions),
    }


EXPECTED = {
    # student: (q1 points, q2 points, a phrase of the q2 message)
    "full": ("5", "3", "all 3 checks passed"),
    "wrong_answer": ("3", "1", "accepted rows hold each file's name and labels"),  # q2 uses parse_name
    "raises": ("5", "0", "`n_accepted`, `rejected_files` are not defined"),
    "loop": ("5", "0", "`n_accepted`, `rejected_files` are not defined"),
    "stubborn_loop": ("5", "0", "not graded: the notebook ran past the 40 s time limit and was stopped"),
    "sys_exit": ("5", "0", "`n_accepted`, `rejected_files` are not defined"),
    "kills_kernel": ("5", "0", "not graded: the kernel stopped"),
    "deletes_files": ("5", "3", "all 3 checks passed"),
    "floods_output": ("5", "3", "all 3 checks passed"),
    "no_check_cells": ("5", "3", "all 3 checks passed"),
    "no_cells": ("0", "0", "`n_accepted`, `rejected_files`, `demo` are not defined"),
    "empty": ("0", "0", "not a valid notebook: the file is empty"),
    "not_json": ("0", "0", "not a valid notebook"),
}


def test_every_crafted_submission_gets_its_expected_rows(broken):
    print(broken["csv"])  # shown with pytest -s: the CSV quoted in the grading documentation
    rows = broken["rows"]
    assert {student for student, _ in rows} == set(EXPECTED)
    for student, (q1, q2, phrase) in EXPECTED.items():
        assert rows[student, "q1"]["kind"] == rows[student, "q2"]["kind"] == "auto"
        assert rows[student, "q1"]["max_points"] == "5" and rows[student, "q2"]["max_points"] == "3"
        assert (rows[student, "q1"]["points"], rows[student, "q2"]["points"]) == (q1, q2), student
        assert phrase in rows[student, "q2"]["message"], (student, rows[student, "q2"]["message"])


def test_crafted_rows_name_what_failed(broken):
    rows = broken["rows"]
    assert "expected (25, 1, 3), got (25, 3, 1)" in rows["wrong_answer", "q1"]["message"]
    assert "[hidden] agrees with agecourse.data.parse_filename" in rows["wrong_answer", "q1"]["message"]
    assert "`parse_name` is not defined" in rows["no_cells", "q1"]["message"]
    assert "does not appear to be JSON" in rows["not_json", "q1"]["message"]
    assert "[cells that raised: cell 11: RuntimeError: student bug]" in rows["raises", "q2"]["message"]
    assert "time limit per cell" in rows["loop", "q2"]["message"]
    assert "cells that raised" not in rows["wrong_answer", "q2"]["message"]


def test_feedback_files_say_which_cell_failed_and_why(broken):
    feedback = broken["out"] / "feedback"
    assert sorted(p.stem for p in feedback.glob("*.md")) == sorted(EXPECTED)
    raises_text = (feedback / "raises.md").read_text()
    assert "Score: 5 of 8 points. Run: ran to the end." in raises_text
    assert "RuntimeError: student bug" in raises_text
    assert "FAIL [hidden]" not in (feedback / "full.md").read_text()
    assert "time limit per cell" in (feedback / "loop.md").read_text()
    assert "SystemExit: 3" in (feedback / "sys_exit.md").read_text()
    totals = list(csv.DictReader((broken["out"] / "totals.csv").open(encoding="utf-8")))
    assert {t["student"]: t["points"] for t in totals}["full"] == "8"


def test_grading_leaves_submissions_and_temp_folder_untouched(broken):
    assert broken["after"] == broken["before"]
    assert list(broken["scratch"].iterdir()) == []  # every scratch copy removed
    assert sorted(p.name for p in broken["out"].iterdir()) == [
        "checks.csv",
        "feedback",
        "grades.csv",
        "item_analysis.csv",
        "item_analysis.png",
        "manual.csv",
        "totals.csv",
    ]
    assert all(g.seconds < 40 + 15 for g in broken["grades"])  # the time limit held


# --- written answers, the instructor's marks and the item analysis -----------------------------


def test_written_answers_become_manual_rows_and_feedback(broken):
    rows = broken["rows"]
    full, empty = rows["full", "q3"], rows["no_cells", "q3"]
    assert (full["kind"], full["points"], full["max_points"]) == ("manual", "", "2")
    assert full["message"].startswith("A guessed field would put a label into training")  # the model answer
    assert (empty["kind"], empty["message"]) == ("manual", "(no answer)")
    text = (broken["out"] / "feedback" / "full.md").read_text()
    assert "q3 (Why not fix broken names by hand?): written answer, marked by your instructor (up to 2 points)" in text
    manual = list(csv.DictReader((broken["out"] / "manual.csv").open(encoding="utf-8")))
    assert {r["student"] for r in manual} == set(EXPECTED) and all(r["points"] == "" for r in manual)
    totals = {t["student"]: t for t in csv.DictReader((broken["out"] / "totals.csv").open(encoding="utf-8"))}
    assert (totals["full"]["points"], totals["full"]["max_points"], totals["full"]["manual_pending"]) == (
        "8",
        "10",
        "1",
    )


def test_merge_manual_adds_the_instructors_marks(broken, tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(broken["out"], out)
    manual = list(csv.DictReader((out / "manual.csv").open(encoding="utf-8")))
    for r in manual:
        r["points"] = {"full": "2", "wrong_answer": "1.5"}.get(r["student"], "")
    marks = tmp_path / "marks.csv"
    with open(marks, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, list(manual[0]))
        writer.writeheader()
        writer.writerows(manual)
    assert grading.main(["--merge-manual", str(marks), "--out", str(out)]) == 0
    totals = {t["student"]: t for t in csv.DictReader((out / "totals.csv").open(encoding="utf-8"))}
    assert (totals["full"]["points"], totals["full"]["manual_pending"]) == ("10", "0")
    assert (totals["wrong_answer"]["points"], totals["wrong_answer"]["max_points"]) == ("5.5", "10")
    assert totals["loop"]["manual_pending"] == "1"
    rows = {(r["student"], r["question"]): r for r in csv.DictReader((out / "grades.csv").open(encoding="utf-8"))}
    assert rows["full", "q3"]["points"] == "2" and rows["full", "q1"]["points"] == "5"
    items = {r["question"]: r for r in csv.DictReader((out / "item_analysis.csv").open(encoding="utf-8"))}
    assert (items["q3"]["kind"], items["q3"]["graded"], items["q3"]["mean_points"]) == ("manual", "2", "1.75")

    manual[0]["points"] = "3"  # above the maximum of 2
    with open(marks, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, list(manual[0]))
        writer.writeheader()
        writer.writerows(manual)
    with pytest.raises(ValueError, match=r"marks.csv, line 2: points 3 outside 0-2 for q3"):
        grading.merge_manual(marks, out)
    with pytest.raises(FileNotFoundError, match="nothing.csv: no such file"):
        grading.merge_manual(tmp_path / "nothing.csv", out)


def test_item_analysis_per_question(broken):
    rows = list(csv.DictReader((broken["out"] / "grades.csv").open(encoding="utf-8")))
    items = {r["question"]: r for r in csv.DictReader((broken["out"] / "item_analysis.csv").open(encoding="utf-8"))}
    assert set(items) == {"q1", "q2"}  # the written q3 has no marks yet
    q1 = [float(r["points"]) for r in rows if r["question"] == "q1"]
    assert int(items["q1"]["graded"]) == len(q1) == len(EXPECTED)
    assert float(items["q1"]["mean_points"]) == pytest.approx(sum(q1) / len(q1), abs=1e-3)
    assert float(items["q1"]["full_marks_share"]) == pytest.approx(sum(p == 5 for p in q1) / len(q1), abs=1e-3)
    # wrong_answer and no_cells both fail these two q1 checks; every other q1 check fails once (no_cells)
    assert items["q1"]["most_failed_check"] in {
        "parses a plain name and a .chip.jpg name into three integers",
        "agrees with agecourse.data.parse_filename on valid names",
    }
    assert items["q1"]["most_failed_count"] == "2"
    assert (broken["out"] / "item_analysis.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_merge_manual_without_submissions_folder_is_a_clear_error(tmp_path, capsys):
    assert grading.main(["--out", str(tmp_path)]) == 2
    assert "give the folder of submissions" in capsys.readouterr().err
