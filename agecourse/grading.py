"""Exercise checks with instant feedback, and offline batch grading of submitted notebooks.

Used by the exercises of every lesson (01-13): ``exercises/NN_name.ipynb`` starts with
``grader = Grader("NN_name")`` and has a ``grader.check("q1")`` cell after each question.

Students
    :meth:`Grader.check` runs the *public* checks of one question against the notebook's variables
    and says which check failed, why, and gives a hint. Works offline, locally and on Colab: the
    checks are ordinary Python modules inside the installed package (``agecourse.exercise_tests``),
    not files next to the notebook or notebook metadata.

Instructors
    ``python -m agecourse.grading SUBMISSIONS --out OUT`` (see :func:`cmd_grade`) grades a folder of
    submitted notebooks without Docker. Each notebook is copied to a scratch folder and run top to
    bottom in a fresh Jupyter kernel, with a time limit per cell, per check and per notebook; every
    question is scored on its public *and hidden* checks. Out come ``grades.csv`` (one row per
    submission and question), ``totals.csv`` and one feedback file per student. A submission that
    raises, loops, exits, deletes files, floods the output, is empty or is not a notebook is still
    graded (0 for what failed, with the reason) and the batch goes on. Submissions are never
    modified. Grading *executes student code*: run it in a container or a throw-away VM.

Authors
    Checks are written next to the solutions in ``exercises-src/`` and extracted by
    ``scripts/build_exercises.py``; a check is a function whose parameter names are the notebook
    variables it needs::

        @check("q1", "parses a well-formed name", hint="split on '_' and convert with int()")
        def q1_plain(parse_name):
            same(parse_name("25_1_3_2017.jpg"), (25, 1, 3), "parse_name('25_1_3_2017.jpg')")

Hidden checks (``hidden=True``) are not run by the student's check cell. They are *not secret*:
the course repository is public, solutions included. They catch answers fitted to the public
checks; for secret checks, grade from a private fork.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import importlib
import inspect
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

# Environment variables that switch a kernel into grading mode (set by the batch grader only).
RESULTS_ENV = "AGECOURSE_GRADING_RESULTS"
EXERCISE_ENV = "AGECOURSE_GRADING_EXERCISE"
CHECK_TIMEOUT_ENV = "AGECOURSE_CHECK_TIMEOUT"

DEFAULT_CHECK_TIMEOUT = 60.0  # seconds for one check while a student works
DEFAULT_TIMEOUT = 600.0  # seconds for one whole notebook when grading
DEFAULT_CELL_TIMEOUT = 120.0  # seconds for one cell when grading
DEFAULT_GRADING_CHECK_TIMEOUT = 30.0  # seconds for one check when grading

_REPR_LIMIT = 160


# --- assertions for checks ---------------------------------------------------------------------


class CheckFailed(AssertionError):
    """A check found a wrong answer; the message says what was expected and what came back."""


class CheckTimeout(BaseException):
    """A check ran past its time limit (a BaseException, so a student's ``except Exception`` cannot
    swallow it)."""


def short_repr(value: Any, limit: int = _REPR_LIMIT) -> str:
    """``repr(value)`` cut to ``limit`` characters, for feedback messages."""
    try:
        text = repr(value)
    except Exception as err:  # a student's object with a broken __repr__
        text = f"<{type(value).__name__} whose repr() raised {type(err).__name__}>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def same(actual: Any, expected: Any, what: str) -> None:
    """Fail unless ``actual == expected`` (NumPy arrays and pandas objects compared element-wise)."""
    try:
        import numpy as np

        if isinstance(actual, np.ndarray) or isinstance(expected, np.ndarray):
            equal = np.shape(actual) == np.shape(expected) and bool(np.array_equal(actual, expected))
        else:
            equal = bool(actual == expected)
    except (TypeError, ValueError) as err:
        raise CheckFailed(f"{what}: cannot compare {short_repr(actual)} with {short_repr(expected)} ({err})") from None
    if not equal:
        note = " (does the function end with a `return`?)" if actual is None else ""
        raise CheckFailed(f"{what}: expected {short_repr(expected)}, got {short_repr(actual)}{note}")


def close(actual: Any, expected: Any, what: str, rtol: float = 1e-6, atol: float = 1e-6) -> None:
    """Fail unless ``actual`` is numerically close to ``expected`` (scalars or arrays of the same shape)."""
    import numpy as np

    if actual is None:
        raise CheckFailed(f"{what}: expected {short_repr(expected)}, got None (does the function end with a `return`?)")
    try:
        got = np.asarray(actual, dtype=np.float64)
        want = np.asarray(expected, dtype=np.float64)
    except (TypeError, ValueError):
        raise CheckFailed(f"{what}: expected a number or array of numbers, got {short_repr(actual)}") from None
    if got.shape != want.shape:
        raise CheckFailed(f"{what}: expected shape {want.shape}, got shape {got.shape} ({short_repr(actual)})")
    if not np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True):
        note = " (does the function end with a `return`?)" if actual is None else ""
        raise CheckFailed(f"{what}: expected {short_repr(expected)}, got {short_repr(actual)}{note}")


@contextlib.contextmanager
def raises(exception: type[BaseException] | tuple[type[BaseException], ...], what: str) -> Iterator[None]:
    """Context manager: fail unless the block raises ``exception``::

    with raises(ValueError, "parse_name('25_1.jpg')"):
        parse_name("25_1.jpg")
    """
    names = " or ".join(e.__name__ for e in (exception if isinstance(exception, tuple) else (exception,)))
    try:
        yield
    except exception:
        return
    except Exception as err:
        raise CheckFailed(f"{what}: expected {names}, but it raised {type(err).__name__}: {err}") from None
    raise CheckFailed(f"{what}: expected {names}, but nothing was raised")


# --- checks, suites and results ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Check:
    """One check of one question: a function of notebook variables that raises when wrong."""

    question: str
    description: str
    func: Callable[..., Any]
    points: float = 1.0
    hidden: bool = False
    hint: str = ""

    @property
    def needs(self) -> list[str]:
        """Names of the notebook variables the check reads (its parameter names)."""
        return list(inspect.signature(self.func).parameters)


@dataclasses.dataclass
class CheckOutcome:
    """The result of running one check."""

    description: str
    points: float
    earned: float
    hidden: bool
    passed: bool
    message: str = ""
    hint: str = ""


@dataclasses.dataclass
class QuestionResult:
    """All check outcomes of one question. Its ``repr`` is the feedback a check cell shows."""

    exercise: str
    question: str
    title: str
    outcomes: list[CheckOutcome]
    hidden_not_run: int = 0

    @property
    def points(self) -> float:
        return sum(o.earned for o in self.outcomes)

    @property
    def max_points(self) -> float:
        return sum(o.points for o in self.outcomes)

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes)

    def summary(self) -> str:
        """One line for the CSV: all passed, or the failed checks with their messages."""
        failed = [o for o in self.outcomes if not o.passed]
        if not failed:
            return f"all {len(self.outcomes)} checks passed"
        return "; ".join(f"{'[hidden] ' if o.hidden else ''}{o.description}: {o.message}" for o in failed)

    def feedback(self) -> str:
        """Several lines: each check with a tick or a cross, the reason and the hint."""
        kind = "checks" if self.hidden_not_run else "checks (public and hidden)"
        lines = [
            f"{self.question} ({self.title}): {_fmt(self.points)} of {_fmt(self.max_points)} points, "
            f"{sum(o.passed for o in self.outcomes)} of {len(self.outcomes)} {kind} passed"
        ]
        for o in self.outcomes:
            mark = "PASS" if o.passed else "FAIL"
            lines.append(f"  {mark} {'[hidden] ' if o.hidden else ''}{o.description}")
            if not o.passed:
                lines.append(f"       {o.message}")
                if o.hint:
                    lines.append(f"       hint: {o.hint}")
        if self.hidden_not_run:
            lines.append(
                f"  ({self.hidden_not_run} hidden check{'s' if self.hidden_not_run > 1 else ''} "
                "will also run when your notebook is graded)"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.feedback()

    def to_json(self) -> dict:
        return {
            "exercise": self.exercise,
            "question": self.question,
            "title": self.title,
            "outcomes": [dataclasses.asdict(o) for o in self.outcomes],
        }


def _fmt(points: float) -> str:
    return f"{points:g}"


class Suite:
    """The checks of one exercise notebook, in question order.

    ``live`` is for authors running a source notebook in ``exercises-src/``: each check then runs
    as soon as it is defined, against that namespace, and raises if it fails.
    """

    def __init__(self, exercise: str, live: dict[str, Any] | None = None):
        self.exercise = exercise
        self.titles: dict[str, str] = {}
        self.checks: list[Check] = []
        self._live = live

    def question(self, question: str, title: str) -> None:
        """Declare a question and its title (the order of declaration is the order of grading)."""
        self.titles[question] = title

    def check(
        self, question: str, description: str, points: float = 1.0, hidden: bool = False, hint: str = ""
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator registering a check of ``question``."""
        if not re.fullmatch(r"q\d+", question):
            raise ValueError(f"question names look like 'q1', not {question!r}")

        def register(func: Callable[..., Any]) -> Callable[..., Any]:
            item = Check(question, description, func, float(points), hidden, hint)
            self.titles.setdefault(question, question)
            self.checks.append(item)
            if self._live is not None:
                outcome = run_check(item, self._live, timeout=None, grading=False)
                if not outcome.passed:
                    raise CheckFailed(f"{question}: {description}: {outcome.message}")
                print(f"{question} PASS {'[hidden] ' if hidden else ''}{description}")
            return func

        return register

    @property
    def questions(self) -> list[str]:
        """Question names in order."""
        return [q for q in self.titles if any(c.question == q for c in self.checks)]

    def checks_of(self, question: str) -> list[Check]:
        return [c for c in self.checks if c.question == question]

    def max_points(self, question: str | None = None) -> float:
        """Points of one question, or of the whole exercise."""
        return sum(c.points for c in self.checks if question is None or c.question == question)


def exercise_module(exercise: str) -> str:
    """The module holding an exercise's checks: ``"01_load"`` -> ``agecourse.exercise_tests.ex01_load``."""
    if not re.fullmatch(r"\d\d_[a-z0-9_]+", exercise):
        raise ValueError(f"exercise names look like '01_load', not {exercise!r}")
    return f"agecourse.exercise_tests.ex{exercise}"


def load_suite(exercise: str) -> Suite:
    """Import the checks of one exercise from the installed package."""
    name = exercise_module(exercise)
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name not in (name, "agecourse.exercise_tests"):
            raise
        known = ", ".join(available_exercises()) or "none"
        raise ValueError(f"no checks for exercise {exercise!r} in this version of agecourse (known: {known})") from None
    return module.suite


def available_exercises() -> list[str]:
    """Exercise names that have checks in this installation, e.g. ``["01_load", ...]``."""
    folder = Path(__file__).with_name("exercise_tests")
    return sorted(p.stem[2:] for p in folder.glob("ex[0-9][0-9]_*.py"))


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`CheckTimeout` in the main thread after ``seconds`` (POSIX only; elsewhere no limit)."""
    usable = (
        seconds
        and seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise CheckTimeout(f"took longer than {seconds:g} s (an endless loop?)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _describe_error(err: BaseException) -> str:
    """``Type: message`` plus where in the student's code it was raised, when that is known."""
    text = f"{type(err).__name__}: {err}".rstrip(": ")
    tb = err.__traceback__
    where = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if "ipykernel" in filename or filename.startswith("<"):
            where = f"line {tb.tb_lineno} of {tb.tb_frame.f_code.co_name}()"
        tb = tb.tb_next
    return f"{text} (raised at {where})" if where else text


def run_check(check: Check, namespace: dict[str, Any], timeout: float | None, grading: bool) -> CheckOutcome:
    """Run one check against ``namespace``; never raises for a wrong or crashing answer."""

    def outcome(passed: bool, message: str = "") -> CheckOutcome:
        return CheckOutcome(
            check.description,
            check.points,
            check.points if passed else 0.0,
            check.hidden,
            passed,
            message,
            "" if passed else check.hint,
        )

    missing = [name for name in check.needs if name not in namespace]
    if missing:
        names = ", ".join(f"`{n}`" for n in missing)
        return outcome(
            False,
            f"{names} {'is' if len(missing) == 1 else 'are'} not defined: "
            "run the cell(s) where you define it, then this check again",
        )
    unanswered = [name for name in check.needs if namespace[name] is Ellipsis]
    if unanswered:
        names = ", ".join(f"`{n}`" for n in unanswered)
        return outcome(
            False,
            f"{names} {'is' if len(unanswered) == 1 else 'are'} still `...`: "
            "replace the `...` with your answer and run that cell",
        )
    try:
        with _time_limit(timeout):
            check.func(*(namespace[name] for name in check.needs))
    except CheckFailed as err:
        return outcome(False, str(err))
    except CheckTimeout as err:
        return outcome(False, str(err))
    except AssertionError as err:  # a plain assert in a check
        return outcome(False, str(err) or "the answer is not right")
    except SystemExit as err:
        return outcome(False, f"your code called sys.exit({err.code!r})")
    except KeyboardInterrupt:
        if not grading:
            raise
        return outcome(False, "interrupted: the cell ran past its time limit")
    except Exception as err:
        return outcome(False, f"your code raised {_describe_error(err)}")
    return outcome(True)


def run_question(
    suite: Suite,
    question: str,
    namespace: dict[str, Any],
    include_hidden: bool,
    timeout: float | None = DEFAULT_CHECK_TIMEOUT,
    grading: bool = False,
) -> QuestionResult:
    """Run the checks of one question (public only, or public and hidden)."""
    checks = suite.checks_of(question)
    if not checks:
        known = ", ".join(suite.questions)
        raise ValueError(
            f"exercise {suite.exercise} has no question {question!r} (questions: {known}); "
            "is agecourse older than this notebook? Reinstall it (see the setup cell)."
        )
    chosen = [c for c in checks if include_hidden or not c.hidden]
    outcomes = [run_check(c, namespace, timeout, grading) for c in chosen]
    return QuestionResult(
        suite.exercise,
        question,
        suite.titles.get(question, question),
        outcomes,
        hidden_not_run=len(checks) - len(chosen),
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


# --- batch grading -----------------------------------------------------------------------------

GRADE_COLUMNS = ["student", "file", "exercise", "question", "points", "max_points", "message"]
TOTAL_COLUMNS = ["student", "file", "exercise", "points", "max_points", "status", "seconds"]

_FINAL_CELL = """\
# Added by the agecourse grader: check every question whose check cell did not run.
import agecourse.grading as _agecourse_grading
_agecourse_grading.grade_remaining(globals())"""


@dataclasses.dataclass
class Submission:
    """One notebook to grade: where it is, whose it is, and which exercise it answers."""

    path: Path
    student: str
    file: str
    exercise: str | None = None


@dataclasses.dataclass
class NotebookGrade:
    """Everything grading one notebook produced."""

    submission: Submission
    status: str
    seconds: float
    questions: list[QuestionResult]
    missing: dict[str, str]  # question -> why it has no result
    cell_errors: list[dict]
    max_points: dict[str, float]
    titles: dict[str, str]

    @property
    def points(self) -> float:
        return sum(r.points for r in self.questions)

    def errors_note(self, limit: int = 3) -> str:
        """The cells that raised, in one line (added to the CSV message of every question not fully scored)."""
        shown = [f"cell {e['cell']}: {e['error']}" for e in self.cell_errors[:limit]]
        more = len(self.cell_errors) - limit
        return "cells that raised: " + "; ".join(shown) + (f"; and {more} more" if more > 0 else "")

    def rows(self) -> list[dict]:
        """CSV rows: one per question, in question order."""
        by_question = {r.question: r for r in self.questions}
        rows = []
        for question, best in self.max_points.items():
            result = by_question.get(question)
            points = result.points if result else 0.0
            message = result.summary() if result else self.missing.get(question, self.status)
            if points < best and self.cell_errors:
                message += f" [{self.errors_note()}]"
            rows.append(
                {
                    "student": self.submission.student,
                    "file": self.submission.file,
                    "exercise": self.submission.exercise or "",
                    "question": question,
                    "points": _fmt(points),
                    "max_points": _fmt(best),
                    "message": message,
                }
            )
        if not self.max_points:
            rows.append(
                {
                    "student": self.submission.student,
                    "file": self.submission.file,
                    "exercise": self.submission.exercise or "",
                    "question": "",
                    "points": "0",
                    "max_points": "0",
                    "message": self.status,
                }
            )
        return rows


def find_submissions(folder: str | os.PathLike, exclude: Path | None = None) -> list[Submission]:
    """Every ``.ipynb`` under ``folder`` (checkpoints skipped), sorted.

    Layout: ``folder/STUDENT/anything.ipynb`` (one folder per student) gives the student's name
    from the folder; ``folder/NAME.ipynb`` uses the file name without ``.ipynb``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder of submissions")
    found = []
    for path in sorted(folder.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts or not path.is_file():
            continue
        if exclude is not None and exclude.resolve() in path.resolve().parents:
            continue
        rel = path.relative_to(folder)
        student = rel.parts[0] if len(rel.parts) > 1 else path.stem
        found.append(Submission(path=path, student=student, file=rel.as_posix()))
    return found


def detect_exercise(path: Path, notebook: dict | None) -> str | None:
    """Which exercise a notebook answers: its metadata, its ``Grader("...")`` call, or its file name."""
    known = available_exercises()
    if notebook is not None:
        meta = notebook.get("metadata", {}).get("agecourse", {})
        if isinstance(meta, dict) and meta.get("exercise") in known:
            return meta["exercise"]
        for cell in notebook.get("cells", []):
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else str(source)
            match = re.search(r"Grader\(\s*['\"](\d\d_[a-z0-9_]+)['\"]", source)
            if match and match.group(1) in known:
                return match.group(1)
    for name in known:
        if name in path.name:
            return name
    match = re.match(r"(\d\d)[_\- ]", path.name)
    if match:
        candidates = [n for n in known if n.startswith(match.group(1))]
        if len(candidates) == 1:
            return candidates[0]
    return None


def _read_notebook(data: bytes) -> tuple[dict | None, str]:
    """Parse submitted bytes as a notebook; returns ``(notebook, "")`` or ``(None, reason)``."""
    import nbformat

    if not data.strip():
        return None, "not a valid notebook: the file is empty"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        return None, f"not a valid notebook: not UTF-8 text ({err})"
    try:
        notebook = nbformat.reads(text, as_version=4)
    except Exception as err:  # nbformat raises several types (JSON, schema, version); all mean "not gradable"
        reason = " ".join(str(err).split())[:200]
        return None, f"not a valid notebook: {type(err).__name__}: {reason}"
    if not isinstance(notebook.get("cells"), list):
        return None, "not a valid notebook: no list of cells"
    return notebook, ""


def _clean_for_run(notebook: dict) -> dict:
    """A copy to execute: code and markdown only, no outputs, the grading cell appended."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    cells = []
    for cell in notebook["cells"]:
        if cell.get("cell_type") == "code":
            cells.append(new_code_cell(cell.get("source", "")))
    cells.append(new_code_cell(_FINAL_CELL))
    clean = new_notebook(cells=cells)
    clean.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    # The grader only needs the sources; keep the original cell numbers for messages.
    clean.metadata["agecourse_cell_numbers"] = [
        i + 1 for i, c in enumerate(notebook["cells"]) if c.get("cell_type") == "code"
    ]
    return nbformat.from_dict(clean)


def _kill_group(pgid: int) -> None:
    """SIGKILL a process group that may already be gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def grade_notebook(
    submission: Submission,
    timeout: float = DEFAULT_TIMEOUT,
    cell_timeout: float = DEFAULT_CELL_TIMEOUT,
    check_timeout: float = DEFAULT_GRADING_CHECK_TIMEOUT,
    exercise: str | None = None,
    keep_scratch: bool = False,
) -> NotebookGrade:
    """Grade one submitted notebook in a scratch copy and a fresh kernel (the file is only read)."""
    start = time.perf_counter()
    data = submission.path.read_bytes()
    notebook, problem = _read_notebook(data)
    submission.exercise = exercise or detect_exercise(submission.path, notebook)

    def result(
        status: str, questions: list[QuestionResult], missing: dict[str, str], errors: list[dict], suite: Suite | None
    ) -> NotebookGrade:
        best = {q: suite.max_points(q) for q in suite.questions} if suite else {}
        titles = dict(suite.titles) if suite else {}
        return NotebookGrade(
            submission, status, round(time.perf_counter() - start, 1), questions, missing, errors, best, titles
        )

    if submission.exercise is None:
        known = ", ".join(available_exercises())
        status = problem or "cannot tell which exercise this notebook answers"
        return result(
            f"{status}; name the file after the exercise or pass --exercise (one of {known})", [], {}, [], None
        )
    suite = load_suite(submission.exercise)
    if notebook is None:
        return result(problem, [], dict.fromkeys(suite.questions, problem), [], suite)

    scratch = Path(tempfile.mkdtemp(prefix="agecourse-grade-"))
    try:
        work = scratch / "work"
        work.mkdir()
        (scratch / "tmp").mkdir()
        (work / Path(submission.file).name).write_bytes(data)  # the student's notebook, as if run in place
        import nbformat

        run_path = scratch / "run.ipynb"
        nbformat.write(_clean_for_run(notebook), run_path)
        results_path, status_path = scratch / "results.jsonl", scratch / "status.json"
        env = dict(os.environ)
        env.update(
            {
                RESULTS_ENV: str(results_path),
                EXERCISE_ENV: submission.exercise,
                CHECK_TIMEOUT_ENV: str(check_timeout),
                "MPLBACKEND": "Agg",
                "AGECOURSE_PROFILE": "ci",
                "AGECOURSE_ARTIFACTS": str(scratch / "artifacts"),
                # Temporary files of the student's code go to the scratch folder, removed afterwards.
                "TMPDIR": str(scratch / "tmp"),
                "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            }
        )
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env.pop("AGECOURSE_DATA", None)
        command = [
            sys.executable,
            "-m",
            "agecourse.grading",
            "_execute",
            str(run_path),
            str(work),
            str(status_path),
            str(cell_timeout),
        ]
        with open(scratch / "kernel.log", "wb") as log:
            proc = subprocess.Popen(
                command,
                cwd=scratch,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=hasattr(os, "setsid"),
            )
            try:
                proc.wait(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _stop(proc, status_path)
        state = _read_status(status_path)
        status = _run_status(state, timed_out, timeout, proc.returncode)
        questions = _read_results(results_path, suite)
        done = {r.question for r in questions}
        missing = {q: f"not graded: {status}" for q in suite.questions if q not in done}
        return result(status, questions, missing, state.get("cell_errors", []), suite)
    finally:
        if keep_scratch:
            print(f"scratch folder kept: {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def _stop(proc: subprocess.Popen, status_path: Path) -> None:
    """Make sure the runner and its kernel are gone (both run in their own process groups)."""
    if hasattr(os, "killpg"):
        _kill_group(proc.pid)
        kernel = _read_status(status_path).get("kernel_pgid")
        if kernel:
            _kill_group(int(kernel))
    elif proc.poll() is None:
        proc.kill()
    proc.wait()


def _read_status(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:  # killed while writing it
        return {}


def _run_status(state: dict, timed_out: bool, timeout: float, returncode: int | None) -> str:
    """Say in words how the run ended."""
    where = f" (in cell {state['cell']}: {state.get('source', '')})" if state.get("cell") else ""
    if timed_out:
        return f"the notebook ran past the {timeout:g} s time limit and was stopped{where}"
    if state.get("status") == "finished":
        return "ran to the end"
    if state.get("status") == "kernel died":
        return f"the kernel stopped (exit(), os._exit(), a crash or out of memory){where}"
    if state.get("status") == "error":
        return f"the grader could not run the notebook: {state.get('message', '')}"
    return f"the grader stopped unexpectedly (exit status {returncode}){where}"


def _read_results(path: Path, suite: Suite) -> list[QuestionResult]:
    """The recorded results, one per question: the last one a check cell recorded wins."""
    if not path.exists():
        return []
    chosen: dict[str, QuestionResult] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
            outcomes = [CheckOutcome(**o) for o in entry["outcomes"]]
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line the kernel did not finish writing
        question = entry["question"]
        if question not in suite.questions or entry.get("exercise") != suite.exercise:
            continue
        # Trust only the checks the grader knows: a result cannot add points it was not meant to have.
        expected = [(c.description, c.points, c.hidden) for c in suite.checks_of(question)]
        if [(o.description, o.points, o.hidden) for o in outcomes] != expected:
            continue
        for o in outcomes:
            o.earned = o.points if o.passed else 0.0
        chosen[question] = QuestionResult(suite.exercise, question, suite.titles.get(question, question), outcomes)
    return [chosen[q] for q in suite.questions if q in chosen]


# --- the runner (a child process, one per notebook) --------------------------------------------


def _execute(run_path: str, workdir: str, status_path: str, cell_timeout: str) -> int:
    """Run a prepared notebook in a fresh kernel of this Python, keeping only errors, and write
    progress to ``status_path`` as it goes. Called as ``python -m agecourse.grading _execute ...``."""
    import ipykernel.kernelspec
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError
    from traitlets import default

    notebook = nbformat.read(run_path, as_version=4)
    numbers = notebook.metadata.get("agecourse_cell_numbers", [])
    state: dict[str, Any] = {"status": "running", "cell_errors": []}

    def save() -> None:
        tmp = status_path + ".tmp"
        Path(tmp).write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, status_path)

    class CurrentPython(KernelSpecManager):
        """Always this interpreter's ipykernel, whatever kernels are installed for the user."""

        def get_kernel_spec(self, kernel_name: str):  # noqa: ANN201 - jupyter_client's signature
            return self.kernel_spec_class(
                resource_dir=ipykernel.kernelspec.RESOURCES, **ipykernel.kernelspec.get_kernel_dict()
            )

    class CurrentPythonKernel(AsyncKernelManager):
        """Starts :class:`CurrentPython` kernels (the client owns it, so it shuts the kernel down)."""

        @default("kernel_spec_manager")
        def _current_python(self) -> KernelSpecManager:
            return CurrentPython(data_dir=self.data_dir)

    class QuietClient(NotebookClient):
        """Drops every output (a flood of prints cannot fill memory); errors arrive via on_cell_error."""

        def output(self, outs, msg, display_id, cell_index):  # noqa: ANN001, ANN201 - nbclient's signature
            return None

    def cell_label(index: int) -> tuple[int | None, str]:
        number = numbers[index] if index < len(numbers) else None
        first = next((line.strip() for line in notebook.cells[index].source.splitlines() if line.strip()), "")
        return number, first[:60]

    async def on_start(notebook: Any = None) -> None:
        state["kernel_pgid"] = getattr(client.km.provisioner, "pgid", None)
        save()

    async def on_execute(cell: Any = None, cell_index: int = 0) -> None:
        state["cell"], state["source"] = cell_label(cell_index)
        save()

    async def on_error(cell: Any = None, cell_index: int = 0, execute_reply: Any = None) -> None:
        content = execute_reply.get("content", {}) if execute_reply else {}
        number, first = cell_label(cell_index)
        if number is None:
            return  # the grader's own last cell: its failures show up as missing results
        ename = content.get("ename", "Error")
        evalue = " ".join(str(content.get("evalue", "")).split())[:300]
        if ename == "KeyboardInterrupt":
            evalue = f"stopped after the {float(cell_timeout):g} s time limit per cell"
        state["cell_errors"].append({"cell": number, "source": first, "error": f"{ename}: {evalue}".rstrip(": ")})
        save()

    client = QuietClient(
        notebook,
        kernel_manager_class=CurrentPythonKernel,
        kernel_name="python3",
        timeout=int(float(cell_timeout)),
        allow_errors=True,
        interrupt_on_timeout=True,
        startup_timeout=120,
        record_timing=False,
        resources={"metadata": {"path": workdir}},
        on_notebook_start=on_start,
        on_cell_execute=on_execute,
        on_cell_error=on_error,
    )
    try:
        client.execute()
        state["status"] = "finished"
    except DeadKernelError:
        state["status"] = "kernel died"
    except Exception as err:  # reported to the instructor in the grades, not hidden
        state["status"], state["message"] = "error", f"{type(err).__name__}: {err}"
    save()
    return 0


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


# --- command line ------------------------------------------------------------------------------


def add_grade_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of the grade command (shared by ``python -m agecourse.grading`` and ``agecourse grade``)."""
    parser.add_argument("submissions", help="folder of submitted notebooks: STUDENT/NN_name.ipynb or NAME.ipynb")
    parser.add_argument("--out", required=True, help="output folder for grades.csv, totals.csv and feedback/")
    parser.add_argument(
        "--exercise",
        default=None,
        help="grade every notebook as this exercise, e.g. 01_load (default: detected per notebook)",
    )
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help=f"seconds per notebook (default {DEFAULT_TIMEOUT:g})"
    )
    parser.add_argument(
        "--cell-timeout",
        type=float,
        default=DEFAULT_CELL_TIMEOUT,
        help=f"seconds per cell before it is interrupted (default {DEFAULT_CELL_TIMEOUT:g})",
    )
    parser.add_argument(
        "--check-timeout",
        type=float,
        default=DEFAULT_GRADING_CHECK_TIMEOUT,
        help=f"seconds per check (default {DEFAULT_GRADING_CHECK_TIMEOUT:g})",
    )
    parser.add_argument("--workers", type=int, default=1, help="notebooks graded at the same time (default 1)")
    return parser


def cmd_grade(args: argparse.Namespace) -> int:
    """Grade a folder of submissions (``agecourse grade``); returns the exit status."""
    if not Path(args.submissions).is_dir():
        print(f"agecourse grade: error: {args.submissions}: not a folder", file=sys.stderr)
        return 2
    print("Grading runs the submitted code: do it in a container or a throw-away VM.", file=sys.stderr)
    try:
        grades = grade_folder(
            args.submissions,
            args.out,
            exercise=args.exercise,
            timeout=args.timeout,
            cell_timeout=args.cell_timeout,
            check_timeout=args.check_timeout,
            workers=args.workers,
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"agecourse grade: error: {err}", file=sys.stderr)
        return 2
    total = sum(g.points for g in grades)
    best = sum(sum(g.max_points.values()) for g in grades)
    print(
        f"Graded {len(grades)} notebooks ({_fmt(total)} of {_fmt(best)} points in all). "
        f"Wrote {Path(args.out) / 'grades.csv'}, totals.csv and feedback/"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m agecourse.grading SUBMISSIONS --out OUT`` (see :func:`add_grade_arguments`)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_execute"]:
        return _execute(*argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m agecourse.grading",
        description="Grade a folder of exercise notebooks offline (runs student code).",
    )
    return cmd_grade(add_grade_arguments(parser).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
