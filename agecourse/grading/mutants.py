"""Wrong answers: do the checks of an exercise catch the typical mistakes?

Each tests cell in ``exercises-src/`` declares wrong answers of its question with
``wrong("qN", "mistake", find, replace, says=...)``: the solution with one piece of text replaced
(a ``sigmoid`` instead of a ``softplus``, a sign flipped, an index off by one, ...).
:func:`run_wrong_answers` runs a solution notebook in this process, top to bottom, and at each
question also runs every wrong answer of it, from the same starting state, then the question's
checks (public and hidden). A wrong answer is *caught* when it loses points and the feedback of the
failed checks contains its ``says`` phrase, so that the student is told what the mistake is.

``python -m agecourse.grading.mutants solutions/06_build_cnn.ipynb`` prints the table for one
notebook (``tests/test_exercises.py`` asserts that every wrong answer of every exercise is caught).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import sys
from pathlib import Path
from typing import Any

from IPython.core.inputtransformer2 import TransformerManager

from agecourse.grading.checks import QuestionResult, Suite, load_suite, run_question

_HEADING_RE = re.compile(r"^## Question (\d+) — ", re.M)
_CHECK_CELL_RE = re.compile(r"""^grader\.check(?:_all)?\(\s*(?:["'](q\d+)["'])?\s*\)\s*$""")


@dataclasses.dataclass
class WrongResult:
    """What the checks made of one wrong answer (or, with ``mistake == ""``, of the solution)."""

    question: str
    mistake: str
    points: float
    max_points: float
    feedback: str
    says: str = ""
    error: str = ""  # what the changed cells raised, if anything

    @property
    def lost_points(self) -> bool:
        return self.points < self.max_points

    @property
    def named(self) -> bool:
        """The feedback of the failed checks contains the expected phrase."""
        return self.says.lower() in self.feedback.lower()

    @property
    def caught(self) -> bool:
        return self.lost_points and self.named


def question_segments(cells: list[Any]) -> list[tuple[str | None, list[str]]]:
    """The code of a generated notebook cut into ``(question, [cell sources])`` runs, in order.

    Code before the first question heading has question ``None``; check cells are left out.
    """
    segments: list[tuple[str | None, list[str]]] = [(None, [])]
    for cell in cells:
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            heading = _HEADING_RE.search(source)
            if heading:
                segments.append((f"q{heading.group(1)}", []))
        elif cell["cell_type"] == "code" and not _CHECK_CELL_RE.match(source.strip()):
            segments[-1][1].append(source)
    return segments


def _failed_text(result: QuestionResult) -> str:
    return "\n".join(f"{o.description}: {o.message} (hint: {o.hint})" for o in result.outcomes if not o.passed)


def _run_cells(sources: list[str], namespace: dict[str, Any]) -> str:
    """Execute cells like a notebook would; returns the first error as text ('' if none)."""
    for source in sources:
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                code = TransformerManager().transform_cell(source)  # %pip lines and other IPython syntax
                exec(compile(code, "<cell>", "exec"), namespace)  # noqa: S102 - running our own solutions
        except Exception as err:  # a wrong answer may crash: the checks still run and must catch it
            return f"{type(err).__name__}: {err}"
    return ""


def run_wrong_answers(notebook_path: str | Path, suite: Suite | None = None, timeout: float = 120) -> list[WrongResult]:
    """Run a solution notebook and every wrong answer declared for it; one result per run.

    The solution's own result comes first for each question (``mistake == ""``), then its wrong answers.
    """
    import nbformat

    notebook = nbformat.read(str(notebook_path), as_version=4)
    exercise = notebook.metadata.get("agecourse", {}).get("exercise") or Path(notebook_path).stem
    suite = suite or load_suite(exercise)
    from IPython.display import display

    namespace: dict[str, Any] = {"__name__": "__main__", "display": display}  # as in a notebook
    results = []
    for question, sources in question_segments(notebook.cells):
        if question is None or question not in suite.questions:
            error = _run_cells(sources, namespace)
            if error and question is None:
                raise RuntimeError(f"{notebook_path}: the setup code raised {error}")
            continue
        wrongs = [w for w in suite.wrong_answers if w.question == question]
        for w in wrongs:
            hits = [i for i, s in enumerate(sources) if w.find in s]
            if len(hits) != 1 or sources[hits[0]].count(w.find) != 1:
                raise ValueError(f"{notebook_path} {question}: {w.find!r} is not in the solution exactly once")
        for w in wrongs:
            # Every wrong answer runs all of the question's cells (one of them changed) from the state
            # before the question, and the solution runs last: objects that a question's own cells
            # create (a model, say) are made afresh each time, so a wrong answer cannot spoil them.
            changed = [s.replace(w.find, w.replace) if w.find in s else s for s in sources]
            trial = dict(namespace)
            trial_error = _run_cells(changed, trial)
            result = run_question(suite, question, trial, include_hidden=True, timeout=timeout, grading=True)
            results.append(
                WrongResult(
                    question, w.mistake, result.points, result.max_points, _failed_text(result), w.says, trial_error
                )
            )
        error = _run_cells(sources, namespace)
        result = run_question(suite, question, namespace, include_hidden=True, timeout=timeout, grading=True)
        results.append(WrongResult(question, "", result.points, result.max_points, _failed_text(result), "", error))
    return results


def main(argv: list[str] | None = None) -> int:
    """Print one line per wrong answer of the given solution notebooks; exit 1 if any is not caught."""
    paths = sys.argv[1:] if argv is None else argv
    missed = 0
    for path in paths:
        for r in run_wrong_answers(path):
            status = "solution" if not r.mistake else ("caught" if r.caught else "MISSED")
            missed += bool(r.mistake) and not r.caught or (not r.mistake and r.lost_points)
            print(f"{Path(path).stem} {r.question} {r.points:g}/{r.max_points:g} {status}: {r.mistake or '-'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
