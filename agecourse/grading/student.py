"""The student's side: ``grader = Grader("01_load")`` in an exercise notebook, and the grading
mode the batch grader switches a kernel into (results recorded to a file).

Part of :mod:`agecourse.grading`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from agecourse.grading.checks import (
    CHECK_TIMEOUT_ENV,
    DEFAULT_CHECK_TIMEOUT,
    DEFAULT_GRADING_CHECK_TIMEOUT,
    EXERCISE_ENV,
    RESULTS_ENV,
    QuestionResult,
    _fmt,
    load_suite,
    placeholder_reason,
    run_question,
)

# --- the student's grader ----------------------------------------------------------------------


def _grading_exercise() -> str | None:
    return os.environ.get(EXERCISE_ENV) if os.environ.get(RESULTS_ENV) else None


def _record(result: QuestionResult, where: str) -> None:
    """Append a result to the grading results file (grading mode only); flushed at once so that a
    crash later in the notebook cannot lose it."""
    entry = dict(result.to_json(), where=where)
    with open(os.environ[RESULTS_ENV], "a", encoding="utf-8") as out:
        out.write(json.dumps(entry) + "\n")


def _recorded_questions() -> set[str]:
    path = Path(os.environ[RESULTS_ENV])
    if not path.exists():
        return set()
    return {json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


class Grader:
    """What an exercise notebook's setup cell creates: ``grader = Grader("01_load")``.

    ``grader.check("q1")`` runs the public checks of question 1 and shows which passed; when the
    notebook is graded, the same call runs the hidden checks too and records the score.
    """

    def __init__(self, exercise: str, check_timeout: float | None = DEFAULT_CHECK_TIMEOUT):
        self.grading = _grading_exercise() is not None
        # When grading, the grader decides which exercise this is, whatever the notebook says.
        self.exercise = _grading_exercise() or exercise
        self.suite = load_suite(self.exercise)
        self.check_timeout = float(os.environ.get(CHECK_TIMEOUT_ENV, 0) or 0) or check_timeout

    def __repr__(self) -> str:
        points = _fmt(self.suite.max_points())
        return (
            f"Grader for exercises/{self.exercise}.ipynb: questions {', '.join(self.suite.questions)} "
            f"({points} points). Run grader.check('q1') after answering question 1."
        )

    def answered(self, question: str, *names: str, namespace: dict[str, Any] | None = None) -> bool:
        """True when the answer(s) a cell builds on exist; otherwise say which question they come from.

        A cell that uses an earlier answer starts with ``if grader.answered("q2", "scan_names"):``.
        When ``scan_names`` is not defined yet or is still the exercise's placeholder (``...``, or a
        function whose body is only ``...``), this prints that the cell was skipped, which question
        to answer first, and returns False, so an untouched notebook runs to the end without a
        traceback. Without ``names`` it looks at every variable the question's checks read.
        """
        namespace = namespace if namespace is not None else sys._getframe(1).f_globals
        if not names:
            names = tuple(dict.fromkeys(n for c in self.suite.checks_of(question) for n in c.needs))
            if not names:
                raise ValueError(f"exercise {self.exercise} has no auto-graded question {question!r}")
        waiting = []
        for name in names:
            if name not in namespace:
                waiting.append(f"`{name}` is not defined yet")
            elif (reason := placeholder_reason(namespace[name])) is not None:
                waiting.append(f"`{name}` {reason}")
        if not waiting:
            return True
        number = question.removeprefix("q")
        print(
            f"Skipped: this cell needs your answer to question {number} ({'; '.join(waiting)}). "
            f"Answer question {number}, run its cells, then run this cell again."
        )
        return False

    def check(self, question: str, namespace: dict[str, Any] | None = None) -> QuestionResult:
        """Check one question against the calling notebook's variables (or ``namespace``)."""
        namespace = namespace if namespace is not None else sys._getframe(1).f_globals
        result = run_question(
            self.suite,
            question,
            namespace,
            include_hidden=self.grading,
            timeout=self.check_timeout,
            grading=self.grading,
        )
        if self.grading:
            _record(result, "check cell")
        return result

    def check_all(self, namespace: dict[str, Any] | None = None) -> str:
        """Check every question; returns (and a notebook shows) one block of feedback per question."""
        namespace = namespace if namespace is not None else sys._getframe(1).f_globals
        results = [self.check(q, namespace) for q in self.suite.questions]
        total = sum(r.points for r in results)
        best = sum(r.max_points for r in results)
        text = "\n\n".join(r.feedback() for r in results)
        return _Text(
            f"{text}\n\nPublic checks: {_fmt(total)} of {_fmt(best)} points."
            if not self.grading
            else f"{text}\n\nTotal: {_fmt(total)} of {_fmt(best)} points."
        )


class _Text(str):
    """A string that a notebook displays as plain text rather than as a quoted repr."""

    def __repr__(self) -> str:
        return str(self)


def grade_remaining(namespace: dict[str, Any]) -> None:
    """Grading mode only: check every question that no check cell recorded (the batch grader adds
    a last cell that calls this, so a deleted check cell still gets its question graded)."""
    exercise = _grading_exercise()
    if exercise is None:
        raise RuntimeError(f"grade_remaining() is for the batch grader only ({RESULTS_ENV} is not set)")
    suite = load_suite(exercise)
    timeout = float(os.environ.get(CHECK_TIMEOUT_ENV, 0) or 0) or DEFAULT_GRADING_CHECK_TIMEOUT
    done = _recorded_questions()
    for question in suite.questions:
        if question not in done:
            _record(
                run_question(suite, question, namespace, include_hidden=True, timeout=timeout, grading=True),
                "end of notebook",
            )
