"""Checks and their results: the assertions a check uses, :class:`Suite`, and running one check.

Part of :mod:`agecourse.grading` (see there for the whole picture).
"""

from __future__ import annotations

import contextlib
import dataclasses
import dis
import importlib
import inspect
import re
import signal
import threading
from collections.abc import Callable, Iterator
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

# What a check says (and the batch grader writes) for a question whose answer is still the placeholder.
NOT_ANSWERED = "not answered yet"


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


# --- placeholders: answers the student has not written yet -----------------------------------

# Byte codes of a function body that does nothing: ``...``, ``pass`` or only a docstring (3.10-3.13).
_NOTHING_OPS = {"RESUME", "NOP", "CACHE", "COPY_FREE_VARS", "MAKE_CELL", "RETURN_CONST", "RETURN_VALUE", "LOAD_CONST"}


def _does_nothing(func: Any) -> bool:
    """True for a Python function whose body is only ``...``, ``pass`` or a docstring (it returns None)."""
    code = getattr(func, "__code__", None)
    if code is None:
        return False
    for instruction in dis.get_instructions(code):
        if instruction.opname not in _NOTHING_OPS:
            return False
        if instruction.opname in ("LOAD_CONST", "RETURN_CONST") and instruction.argval is not None:
            return False
    return True


def placeholder_reason(value: Any) -> str | None:
    """Why ``value`` is still an exercise's placeholder, or None when it is an answer.

    Placeholders are what a generated exercise notebook holds before the student writes anything:
    ``...`` itself (``name = ...  # YOUR CODE HERE``), a function whose body does nothing (only
    ``...``, ``pass``, a docstring or ``return None``), and a class that defines nothing but its
    docstring (or only such methods). Anything else counts as an answer, right or wrong.
    """
    if value is Ellipsis:
        return "is still `...`"
    if isinstance(value, type):
        own = [k for k, v in vars(value).items() if not (k.startswith("__") and k.endswith("__"))]
        methods = [v for k, v in vars(value).items() if inspect.isfunction(v)]
        if not own or (methods and len(methods) == len(own) and all(_does_nothing(m) for m in methods)):
            return "still has only `...` in its body"
        return None
    if inspect.isfunction(value) and _does_nothing(value):
        return "still has only `...` in its body"
    return None


def is_placeholder(value: Any) -> bool:
    """True when ``value`` is an unanswered placeholder (see :func:`placeholder_reason`)."""
    return placeholder_reason(value) is not None


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
    answered: bool = True  # False: a variable the check reads is still the exercise's placeholder


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

    @property
    def answered(self) -> bool:
        """False when every check found its answer still a placeholder (zero points, nothing to mark)."""
        return any(o.answered for o in self.outcomes)

    def summary(self) -> str:
        """One line for the CSV: all passed, "not answered yet", or the failed checks with their messages."""
        failed = [o for o in self.outcomes if not o.passed]
        if not self.answered:
            return self.outcomes[0].message if self.outcomes else NOT_ANSWERED
        if not failed:
            return f"all {len(self.outcomes)} checks passed"
        return "; ".join(f"{'[hidden] ' if o.hidden else ''}{o.description}: {o.message}" for o in failed)

    def feedback(self) -> str:
        """Several lines: each check with a tick or a cross, the reason and the hint."""
        kind = "checks" if self.hidden_not_run else "checks (public and hidden)"
        if not self.answered:
            return (
                f"{self.question} ({self.title}): {NOT_ANSWERED}, 0 of {_fmt(self.max_points)} points. "
                f"{self.outcomes[0].message.removeprefix(NOT_ANSWERED + ': ')}."
                if self.outcomes
                else f"{self.question} ({self.title}): {NOT_ANSWERED}"
            )
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


@dataclasses.dataclass(frozen=True)
class WrongAnswer:
    """A typical mistake for one question: the solution with ``find`` replaced by ``replace``.

    The test suite applies it to the question's solution cells and asserts that the checks take
    points off with feedback containing ``says`` (case-insensitive): the checks must name the mistake.
    """

    question: str
    mistake: str
    find: str
    replace: str
    says: str


@dataclasses.dataclass(frozen=True)
class Written:
    """A written answer graded by the instructor (a ``manual`` row of ``grades.csv``)."""

    question: str
    title: str
    points: float


def written_marker(question: str) -> str:
    """The line that starts a student's written answer in a markdown cell, e.g. ``**Your answer (q4):**``."""
    return f"**Your answer ({question}):**"


class Suite:
    """The checks of one exercise notebook, in question order.

    ``live`` is for authors running a source notebook in ``exercises-src/``: each check then runs
    as soon as it is defined, against that namespace, and raises if it fails.
    """

    def __init__(self, exercise: str, live: dict[str, Any] | None = None):
        self.exercise = exercise
        self.titles: dict[str, str] = {}
        self.checks: list[Check] = []
        self.wrong_answers: list[WrongAnswer] = []
        self.written: dict[str, Written] = {}
        self._live = live

    def wrong(self, question: str, mistake: str, find: str, replace: str, says: str) -> None:
        """Declare a typical wrong answer of ``question`` (see :class:`WrongAnswer`); checks nothing now."""
        if not find or find == replace:
            raise ValueError(f"{question} wrong answer {mistake!r}: find must be non-empty and differ from replace")
        self.wrong_answers.append(WrongAnswer(question, mistake, find, replace, says))

    def manual(self, question: str, title: str, points: float) -> None:
        """Declare a written question that the instructor grades by hand."""
        if not re.fullmatch(r"q\d+", question):
            raise ValueError(f"question names look like 'q1', not {question!r}")
        self.written[question] = Written(question, title, float(points))

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
    folder = Path(__file__).resolve().parents[1] / "exercise_tests"
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

    def outcome(passed: bool, message: str = "", answered: bool = True) -> CheckOutcome:
        return CheckOutcome(
            check.description,
            check.points,
            check.points if passed else 0.0,
            check.hidden,
            passed,
            message,
            "" if passed else check.hint,
            answered,
        )

    # A placeholder first: an untouched question says "not answered yet", whatever else is missing.
    unanswered = {
        name: reason
        for name in check.needs
        if name in namespace and (reason := placeholder_reason(namespace[name])) is not None
    }
    if unanswered:
        what = "; ".join(f"`{name}` {reason}" for name, reason in unanswered.items())
        return outcome(False, f"{NOT_ANSWERED}: {what}: write your answer there and run that cell", answered=False)
    missing = [name for name in check.needs if name not in namespace]
    if missing:
        names = ", ".join(f"`{n}`" for n in missing)
        return outcome(
            False,
            f"{names} {'is' if len(missing) == 1 else 'are'} not defined: "
            "run the cell(s) where you define it, then this check again",
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
    pending = next((o for o in outcomes if not o.answered), None)
    if pending is not None:
        # A variable that is not defined because a cell skipped itself while this question's answer is
        # still a placeholder: that check is not answered yet either (no "not defined" noise).
        for check, result in zip(chosen, outcomes):
            if result.answered and any(name not in namespace for name in check.needs):
                result.answered, result.message = False, pending.message
    return QuestionResult(
        suite.exercise,
        question,
        suite.titles.get(question, question),
        outcomes,
        hidden_not_run=len(checks) - len(chosen),
    )
