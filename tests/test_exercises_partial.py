"""Partly answered exercises are graded per question, through the real grader's command line.

Two notebooks, each with one question answered (the solution's cells of that question spliced into
the untouched exercise): that question gets its full points, every other auto-graded question
"not answered yet" and 0 points, the written ones "(no answer)", and no cell raises.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import nbformat

from agecourse import grading

ROOT = Path(__file__).resolve().parents[1]
HEADING = re.compile(r"^## Question (\d+) — ", re.M)
# (exercise, the one question answered): questions that need no earlier answer, in cheap notebooks.
ANSWERED = {"03_preprocess": "q2", "12_bias": "q2"}


def _answer_one(name: str, question: str) -> nbformat.NotebookNode:
    """The untouched exercise with the solution's cells of ``question`` in place of the placeholders."""
    exercise = nbformat.read(ROOT / "exercises" / f"{name}.ipynb", as_version=4)
    solution = nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4)
    assert [c.id for c in exercise.cells] == [c.id for c in solution.cells]
    current = None
    for i, cell in enumerate(exercise.cells):
        heading = HEADING.search(cell.source) if cell.cell_type == "markdown" else None
        if heading:
            current = f"q{heading.group(1)}"
        elif current == question and cell.cell_type == "code":
            exercise.cells[i] = solution.cells[i]
    return exercise


def test_one_answer_gets_its_points_and_the_rest_not_answered_yet(tmp_path):
    submissions = tmp_path / "submissions" / "student"
    submissions.mkdir(parents=True)
    for name, question in ANSWERED.items():
        nbformat.write(_answer_one(name, question), submissions / f"{name}.ipynb")
    out = tmp_path / "out"
    status = grading.main([str(tmp_path / "submissions"), "--out", str(out), "--workers", "2"])
    assert status == 0
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with open(out / "totals.csv", newline="", encoding="utf-8") as f:
        totals = {row["exercise"]: row for row in csv.DictReader(f)}
    for name, answered in ANSWERED.items():
        suite = grading.load_suite(name)
        mine = {row["question"]: row for row in rows if row["exercise"] == name}
        assert sorted(mine) == sorted([*suite.questions, *suite.written]), name
        assert totals[name]["status"] == "ran to the end", totals[name]
        assert float(totals[name]["points"]) == suite.max_points(answered), totals[name]
        for question, row in mine.items():
            if row["kind"] == "manual":
                assert row["message"] == "(no answer)", row
            elif question == answered:
                assert row["points"] == row["max_points"] == f"{suite.max_points(question):g}", row
                assert row["message"].startswith("all "), row
            else:
                assert row["points"] == "0", row
                assert row["message"].startswith("not answered yet: "), row
                assert "cells that raised" not in row["message"], row
        feedback = (out / "feedback" / "student.md").read_text(encoding="utf-8")
        assert f"{answered} (" in feedback and "not answered yet" in feedback
