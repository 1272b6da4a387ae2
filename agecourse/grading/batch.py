"""Batch grading: find submitted notebooks, run each in a scratch copy and a fresh kernel (a child
process with time limits), and collect the recorded results.

Part of :mod:`agecourse.grading`. Grading *executes student code*: run it in a container or a VM.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agecourse.grading.checks import (
    CHECK_TIMEOUT_ENV,
    DEFAULT_CELL_TIMEOUT,
    DEFAULT_GRADING_CHECK_TIMEOUT,
    DEFAULT_TIMEOUT,
    EXERCISE_ENV,
    RESULTS_ENV,
    CheckOutcome,
    QuestionResult,
    Suite,
    _fmt,
    available_exercises,
    load_suite,
    written_marker,
)

# What the exercise notebook shows under a written question until the student writes there.
ANSWER_PLACEHOLDER = "_Double-click this cell and write your answer here (keep the first line)._"

# --- batch grading -----------------------------------------------------------------------------

GRADE_COLUMNS = ["student", "file", "exercise", "question", "kind", "points", "max_points", "message"]
TOTAL_COLUMNS = ["student", "file", "exercise", "points", "max_points", "manual_pending", "status", "seconds"]
CHECK_COLUMNS = ["student", "file", "exercise", "question", "check", "hidden", "passed", "points", "max_points"]
NO_ANSWER = "(no answer)"

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
    written: dict[str, str] = dataclasses.field(default_factory=dict)  # question -> the student's text
    written_max: dict[str, float] = dataclasses.field(default_factory=dict)

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
                    "kind": "auto",
                    "points": _fmt(points),
                    "max_points": _fmt(best),
                    "message": message,
                }
            )
        for question, best in self.written_max.items():
            rows.append(
                {
                    "student": self.submission.student,
                    "file": self.submission.file,
                    "exercise": self.submission.exercise or "",
                    "question": question,
                    "kind": "manual",
                    "points": "",  # the instructor's, merged with `agecourse grade --merge-manual`
                    "max_points": _fmt(best),
                    "message": self.written.get(question, NO_ANSWER),
                }
            )
        if not self.max_points and not self.written_max:
            rows.append(
                {
                    "student": self.submission.student,
                    "file": self.submission.file,
                    "exercise": self.submission.exercise or "",
                    "question": "",
                    "kind": "auto",
                    "points": "0",
                    "max_points": "0",
                    "message": self.status,
                }
            )
        return rows

    def check_rows(self) -> list[dict]:
        """One row per check that ran (for the item analysis): which check, hidden or not, passed or not."""
        return [
            {
                "student": self.submission.student,
                "file": self.submission.file,
                "exercise": self.submission.exercise or "",
                "question": r.question,
                "check": o.description,
                "hidden": o.hidden,
                "passed": o.passed,
                "points": _fmt(o.earned),
                "max_points": _fmt(o.points),
            }
            for r in self.questions
            for o in r.outcomes
        ]


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


def written_answers(notebook: dict | None, suite: Suite) -> dict[str, str]:
    """The student's text of each written question: the markdown cell that starts with
    ``**Your answer (qN):**`` (the first such cell; the placeholder or nothing gives ``(no answer)``)."""
    answers = dict.fromkeys(suite.written, NO_ANSWER)
    for cell in (notebook or {}).get("cells", []):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        for question in suite.written:
            marker = written_marker(question)
            if answers[question] == NO_ANSWER and source.lstrip().startswith(marker):
                text = " ".join(source.lstrip()[len(marker) :].split())
                if text and text != " ".join(ANSWER_PLACEHOLDER.split()):
                    answers[question] = text
    return answers


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
        titles.update({q: w.title for q, w in (suite.written.items() if suite else [])})
        written_max = {q: w.points for q, w in suite.written.items()} if suite else {}
        return NotebookGrade(
            submission,
            status,
            round(time.perf_counter() - start, 1),
            questions,
            missing,
            errors,
            best,
            titles,
            written_answers(notebook, suite) if suite else {},
            written_max,
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
