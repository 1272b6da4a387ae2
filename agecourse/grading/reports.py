"""Reports of a graded batch (``grades.csv``, ``totals.csv``, one feedback file per student) and
the command line (``agecourse grade`` / ``python -m agecourse.grading``).

Part of :mod:`agecourse.grading`.
"""

from __future__ import annotations

import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agecourse.grading.analysis import (
    MANUAL_COLUMNS,
    write_csv,
    write_item_analysis,
    write_totals,
)
from agecourse.grading.batch import (
    CHECK_COLUMNS,
    GRADE_COLUMNS,
    NO_ANSWER,
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
    """Write ``grades.csv``, ``totals.csv``, ``checks.csv``, ``manual.csv`` (written answers for the
    instructor to mark), ``feedback/STUDENT.md`` and the item analysis; returns their paths."""
    out = Path(out_dir)
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    grades = sorted(grades, key=lambda g: (g.submission.student, g.submission.file))
    paths = {name: out / f"{name}.csv" for name in ("grades", "checks", "manual")}
    rows = [row for grade in grades for row in grade.rows()]
    write_csv(paths["grades"], GRADE_COLUMNS, rows)
    write_csv(paths["checks"], CHECK_COLUMNS, [row for grade in grades for row in grade.check_rows()])
    manual = [
        {
            "student": r["student"],
            "file": r["file"],
            "exercise": r["exercise"],
            "question": r["question"],
            "max_points": r["max_points"],
            "points": "",
            "answer": r["message"],
        }
        for r in rows
        if r["kind"] == "manual"
    ]
    write_csv(paths["manual"], MANUAL_COLUMNS, manual)
    status = {(g.submission.student, g.submission.file): (g.status, g.seconds) for g in grades}
    paths["totals"] = write_totals(rows, status, out / "totals.csv")
    students: dict[str, list[NotebookGrade]] = {}
    for g in grades:
        students.setdefault(g.submission.student, []).append(g)
    for student, items in students.items():
        path = out / "feedback" / f"{_safe_name(student)}.md"
        path.write_text(feedback_text(student, items), encoding="utf-8")
        paths[f"feedback:{student}"] = path
    paths.update(write_item_analysis(out))
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
        for question, best in g.written_max.items():
            lines += [
                f"- {question} ({g.titles.get(question, question)}): written answer, marked by your "
                f"instructor (up to {_fmt(best)} points). You wrote:",
                "",
                f"  > {g.written.get(question, NO_ANSWER)}",
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
