"""Reports of a graded batch (``grades.csv``, ``totals.csv``, one feedback file per student) and
the command line (``agecourse grade`` / ``python -m agecourse.grading``).

Part of :mod:`agecourse.grading`.
"""

from __future__ import annotations

import csv
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agecourse.grading.batch import (
    GRADE_COLUMNS,
    TOTAL_COLUMNS,
    NotebookGrade,
    Submission,
    find_submissions,
    grade_notebook,
)
from agecourse.grading.checks import (
    DEFAULT_CELL_TIMEOUT,
    DEFAULT_GRADING_CHECK_TIMEOUT,
    DEFAULT_TIMEOUT,
    _fmt,
    load_suite,
)

# --- reports -----------------------------------------------------------------------------------


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "student"


def write_reports(grades: list[NotebookGrade], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``grades.csv``, ``totals.csv`` and ``feedback/STUDENT.md``; returns their paths."""
    out = Path(out_dir)
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    grades = sorted(grades, key=lambda g: (g.submission.student, g.submission.file))
    grades_csv, totals_csv = out / "grades.csv", out / "totals.csv"
    with open(grades_csv, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, GRADE_COLUMNS)
        writer.writeheader()
        for grade in grades:
            writer.writerows(grade.rows())
    with open(totals_csv, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, TOTAL_COLUMNS)
        writer.writeheader()
        for g in grades:
            writer.writerow(
                {
                    "student": g.submission.student,
                    "file": g.submission.file,
                    "exercise": g.submission.exercise or "",
                    "points": _fmt(g.points),
                    "max_points": _fmt(sum(g.max_points.values())),
                    "status": g.status,
                    "seconds": g.seconds,
                }
            )
    students: dict[str, list[NotebookGrade]] = {}
    for g in grades:
        students.setdefault(g.submission.student, []).append(g)
    paths = {"grades": grades_csv, "totals": totals_csv}
    for student, items in students.items():
        path = out / "feedback" / f"{_safe_name(student)}.md"
        path.write_text(feedback_text(student, items), encoding="utf-8")
        paths[f"feedback:{student}"] = path
    return paths


def feedback_text(student: str, grades: list[NotebookGrade]) -> str:
    """The feedback file of one student: per notebook, the score, each check, and what went wrong."""
    lines = [f"# Feedback for {student}", ""]
    for g in grades:
        best = sum(g.max_points.values())
        lines += [
            f"## {g.submission.file}" + (f" (exercise {g.submission.exercise})" if g.submission.exercise else ""),
            "",
            f"Score: {_fmt(g.points)} of {_fmt(best)} points. Run: {g.status}.",
            "",
        ]
        by_question = {r.question: r for r in g.questions}
        for question in g.max_points:
            if question in by_question:
                lines += ["```", by_question[question].feedback(), "```", ""]
            else:
                lines += [
                    f"- {question} ({g.titles.get(question, question)}): 0 of "
                    f"{_fmt(g.max_points[question])} points, {g.missing.get(question, g.status)}",
                    "",
                ]
        if g.cell_errors:
            lines += ["Cells that raised an error:", ""]
            lines += [f"- cell {e['cell']} (`{e['source']}`): {e['error']}" for e in g.cell_errors]
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def grade_folder(
    submissions: str | os.PathLike,
    out_dir: str | os.PathLike,
    exercise: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    cell_timeout: float = DEFAULT_CELL_TIMEOUT,
    check_timeout: float = DEFAULT_GRADING_CHECK_TIMEOUT,
    workers: int = 1,
    verbose: bool = True,
) -> list[NotebookGrade]:
    """Grade every notebook under ``submissions`` and write the reports into ``out_dir``.

    ``workers`` notebooks run at the same time (each in its own kernel). Nothing is written outside
    ``out_dir`` except scratch folders in the system temporary folder, removed afterwards.
    """
    submissions, out = Path(submissions), Path(out_dir)
    if out.resolve() == submissions.resolve():
        raise ValueError(f"{out}: the output folder must not be the submissions folder")
    if exercise is not None:
        load_suite(exercise)  # a clear error now rather than one per notebook
    found = find_submissions(submissions, exclude=out)
    if not found:
        raise FileNotFoundError(f"{submissions}: no .ipynb files to grade")
    lock = threading.Lock()

    def one(sub: Submission) -> NotebookGrade:
        grade = grade_notebook(
            sub, timeout=timeout, cell_timeout=cell_timeout, check_timeout=check_timeout, exercise=exercise
        )
        if verbose:
            with lock:
                print(
                    f"{sub.file}: {sub.exercise or '?'} {_fmt(grade.points)}/{_fmt(sum(grade.max_points.values()))}"
                    f" in {grade.seconds:.1f} s ({grade.status})",
                    flush=True,
                )
        return grade

    with ThreadPoolExecutor(max(1, workers)) as pool:
        grades = list(pool.map(one, found))
    write_reports(grades, out)
    return grades
