"""Build the exercise notebooks, their solutions and their checks from one source.

    python scripts/build_exercises.py           # regenerate exercises/, solutions/, agecourse/exercise_tests/
    python scripts/build_exercises.py --check   # exit 1 if the committed files differ from a fresh build
    python scripts/build_exercises.py --out DIR # write the three folders under DIR instead

The source is ``exercises-src/NN_name.ipynb``: the solutions with their checks. In it

* ``## Question N — Title`` starts question ``qN``: say what to do and what is given. The build adds
  the points and a "How it is checked" paragraph listing the public checks.
* Solution code sits between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` lines (the exercise gets
  ``# YOUR CODE HERE`` and ``...`` instead; ``# BEGIN SOLUTION: name = ...`` gives the exercise
  ``name = ...  # YOUR CODE HERE`` instead, for an assignment too long for one line), or on one
  line ``name = value  # SOLUTION`` (the exercise gets ``name = ...  # YOUR CODE HERE``;
  ``a, b = value  # SOLUTION`` gets ``a, b = ..., ...``, so that nothing unpacks a bare ``...``).
* Every placeholder is a value the checks recognise: ``...``, or a function whose body is only
  ``...``; its question then reports "not answered yet" (zero points, no traceback). A cell that
  uses an earlier answer starts with ``if grader.answered("qN", "name"):`` so that an untouched
  exercise runs to the end, saying which question to answer first
  (:meth:`agecourse.grading.Grader.answered`). ``tests/test_exercises_untouched.py`` runs every
  untouched exercise and asserts exactly that.
* A code cell starting ``# TESTS qN`` holds the checks of question N (see :mod:`agecourse.grading`).
  Exercises and solutions get ``grader.check("qN")`` in its place; the checks go to
  ``agecourse/exercise_tests/exNN_name.py``, which ships inside the package (so checks work on
  Colab and offline).
* The tests cell also declares at least two *wrong answers* of its question:
  ``wrong("qN", "mistake", find, replace, says=...)``: the solution with the one piece of text
  ``find`` (which must occur exactly once in the question's solution cells) replaced by ``replace``.
  ``tests/test_exercises.py`` runs every wrong answer and asserts that it loses points with
  feedback containing ``says``; the build fails when ``find`` no longer matches the solution.
* ``## Question N — Title (written, P points)`` is a written question graded by the instructor.
  A markdown cell starting ``<!-- ANSWER qN -->`` holds the model answer: the solution shows it,
  the exercise gets an empty ``**Your answer (qN):**`` cell that the batch grader collects.
* A code cell starting ``# SOURCE ONLY`` is dropped (it lets an author run the source top to bottom).

Every generated notebook gets its Colab badge, the standard setup cell and a closing check-all cell.
Output is deterministic, so a rebuild of unchanged sources changes nothing.
"""

from __future__ import annotations

import argparse
import ast
import filecmp
import json
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIR = ROOT / "exercises-src"
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))  # this checkout's agecourse, even where another copy is installed
from badges import badge, install_line  # noqa: E402

from agecourse.grading.batch import ANSWER_PLACEHOLDER  # noqa: E402
from agecourse.grading.checks import written_marker  # noqa: E402

TESTS_RE = re.compile(r"^# TESTS (q\d+)\s*$")
QUESTION_RE = re.compile(r"^## Question (\d+) — (.+?)[ \t]*$", re.M)
WRITTEN_RE = re.compile(r"\s*\(written, (\d+(?:\.\d+)?) points?\)$")
ANSWER_RE = re.compile(r"^<!-- ANSWER (q\d+) -->\s*")

SOLUTION_LINE_RE = re.compile(r"^(\s*)([^=#]+?)\s*=\s*(.+?)\s*# SOLUTION\s*$")

INTRO = """## How these exercises work

Each question says **what to do**, what is **given** and **how it is checked**. Write your answer
where you see `# YOUR CODE HERE` (replace the `...`), then run the check cell under it:
`grader.check("q1")` runs the question's public checks at once and tells you which one failed, why,
and gives a hint; a question you have not answered yet says so. The checks run offline, on Colab
and locally. You can answer the questions in any order: a cell that needs an earlier answer says
which question to answer first and skips itself until then.

When your instructor grades the notebook, it runs from top to bottom in a fresh kernel and
**hidden checks** with other inputs run too, so solve the problem rather than the examples. A
check may also recompute your measured numbers from the model or data you return, so report what
you measured. *Written* questions are read and marked by your instructor. No question needs a GPU
or a download; the experiments train tiny models for a few seconds, some of them on the course's
synthetic faces (drawn by a program, not real people) or with the models the course ships.

At the end you find a short **questionnaire** (not graded: answer it for yourself) and optional
**extensions**: ideas to take the lesson further on your own."""

SETUP_MD = "## Setup\n\nRun this cell first: it makes sure `agecourse` is installed and loads the checks."

SETUP = """# Setup: on Colab, install the course package (it also holds the checks of these exercises).
# Locally and on Binder it is already installed (see the README), so nothing is downloaded.
import sys

if "google.colab" in sys.modules:
    {install}

from agecourse.grading import Grader

grader = Grader("{name}")
grader"""

TAIL_MD = """## Check everything, then hand in

Run the cell below to see every public check at once. Then use *Kernel > Restart and run all* (on
Colab: *Runtime > Restart session and run all*) to make sure the notebook runs from top to bottom,
save it (on Colab: *File > Download > Download .ipynb*) and hand in `{file}` as your instructor asks."""

MODULE_HEAD = '''"""Checks of exercises/{file}.

{questions}

Generated by scripts/build_exercises.py from exercises-src/{file}: edit the source notebook
and run the build again instead of editing this file.
"""

# ruff: noqa: E402, F401

from agecourse.grading import CheckFailed, Suite, close, raises, same, short_repr

suite = Suite("{name}")
check = suite.check
wrong = suite.wrong
'''


class SourceError(ValueError):
    """A source notebook breaks the conventions above; the message names the file and the cell."""


@dataclass
class CheckInfo:
    question: str
    description: str
    points: float
    hidden: bool


@dataclass
class WrongInfo:
    question: str
    mistake: str
    find: str
    replace: str
    says: str


@dataclass
class Question:
    question: str
    number: int
    title: str
    checks: list[CheckInfo] = field(default_factory=list)
    wrong: list[WrongInfo] = field(default_factory=list)
    written_points: float | None = None  # a written question graded by the instructor
    solution_code: list[str] = field(default_factory=list)
    answer: bool = False

    @property
    def points(self) -> float:
        if self.written_points is not None:
            return self.written_points
        return sum(c.points for c in self.checks)


def parse_wrong(code: str, where: str) -> list[WrongInfo]:
    """Read the ``wrong(...)`` calls of a tests cell without running it."""
    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "wrong":
            try:
                args = [ast.literal_eval(a) for a in node.args]
                kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
            except ValueError as err:
                raise SourceError(f"{where}: wrong(...) arguments must be literals ({err})") from None
            names = ["question", "mistake", "find", "replace", "says"]
            values = dict(zip(names, args)) | kwargs
            if sorted(values) != sorted(names):
                raise SourceError(f"{where}: wrong(...) needs {', '.join(names)}")
            found.append(WrongInfo(**values))
    return found


def _fmt(points: float) -> str:
    return f"{points:g}"


def parse_checks(code: str, where: str) -> list[CheckInfo]:
    """Read the ``@check(...)`` decorators of a tests cell without running it."""
    found = []
    for node in ast.walk(ast.parse(code)):
        if not isinstance(node, ast.FunctionDef):
            continue
        for dec in node.decorator_list:
            if not (isinstance(dec, ast.Call) and isinstance(dec.func, ast.Name) and dec.func.id == "check"):
                continue
            try:
                args = [ast.literal_eval(a) for a in dec.args]
                kwargs = {k.arg: ast.literal_eval(k.value) for k in dec.keywords}
            except ValueError as err:
                raise SourceError(f"{where}: @check arguments must be literals ({err})") from None
            question, description = args[0], args[1]
            found.append(
                CheckInfo(
                    question,
                    description,
                    float(kwargs.get("points", args[2] if len(args) > 2 else 1)),
                    bool(kwargs.get("hidden", False)),
                )
            )
    if not found:
        raise SourceError(f"{where}: a tests cell without any @check function")
    return found


def strip_solution(code: str, where: str) -> str:
    """The student's version of a solution cell."""
    out, skipping, indent = [], False, ""
    for line in code.splitlines():
        stripped = line.strip()
        if stripped == "# BEGIN SOLUTION" or stripped.startswith("# BEGIN SOLUTION:"):
            if skipping:
                raise SourceError(f"{where}: nested # BEGIN SOLUTION")
            skipping, indent = True, line[: len(line) - len(line.lstrip())]
            placeholder = stripped.removeprefix("# BEGIN SOLUTION").removeprefix(":").strip()
            out += (
                [f"{indent}{placeholder}  # YOUR CODE HERE"]
                if placeholder
                else [f"{indent}# YOUR CODE HERE", f"{indent}..."]
            )
            continue
        if stripped == "# END SOLUTION":
            if not skipping:
                raise SourceError(f"{where}: # END SOLUTION without # BEGIN SOLUTION")
            skipping = False
            continue
        if skipping:
            continue
        match = SOLUTION_LINE_RE.match(line)
        if match:
            targets = [t for t in match.group(2).split(",") if t.strip()]
            placeholder = ", ".join(["..."] * len(targets)) if "," in match.group(2) else "..."
            out.append(f"{match.group(1)}{match.group(2)} = {placeholder}  # YOUR CODE HERE")
        elif line.rstrip().endswith("# SOLUTION"):
            raise SourceError(f"{where}: '# SOLUTION' only works on 'name = value' lines: {line.strip()!r}")
        else:
            out.append(line)
    if skipping:
        raise SourceError(f"{where}: # BEGIN SOLUTION without # END SOLUTION")
    return "\n".join(out)


def keep_solution(code: str) -> str:
    """The solution's version: markers removed, code kept."""
    lines = [
        line
        for line in code.splitlines()
        if line.strip() != "# END SOLUTION" and not line.strip().startswith("# BEGIN SOLUTION")
    ]
    return "\n".join(re.sub(r"\s*# SOLUTION\s*$", "", line) for line in lines)


def has_solution(code: str) -> bool:
    return "# BEGIN SOLUTION" in code or bool(re.search(r"# SOLUTION\s*$", code, re.M))


def how_checked(q: Question) -> str:
    if q.written_points is not None:
        return (
            f"**How it is checked.** Your instructor reads your answer and gives up to {_fmt(q.points)} "
            f"point{'s' if q.points != 1 else ''}. Write it in the cell below, after "
            f"`{written_marker(q.question)}` (keep that first line: the grader looks for it). A few "
            "clear sentences are better than a long text."
        )
    public = [c for c in q.checks if not c.hidden]
    hidden = len(q.checks) - len(public)
    lines = [
        f'**How it is checked.** `grader.check("{q.question}")` runs {len(public)} public '
        f"check{'s' if len(public) != 1 else ''}:",
        "",
    ]
    lines += [f"- {c.description} ({_fmt(c.points)} point{'s' if c.points != 1 else ''})" for c in public]
    if hidden:
        points = sum(c.points for c in q.checks if c.hidden)
        lines += [
            "",
            f"and {hidden} hidden check{'s' if hidden != 1 else ''} ({_fmt(points)} "
            f"point{'s' if points != 1 else ''}) {'run' if hidden != 1 else 'runs'} when the notebook is graded.",
        ]
    return "\n".join(lines)


@dataclass
class Built:
    exercise: nbformat.NotebookNode
    solution: nbformat.NotebookNode
    module: str
    questions: list[Question]


def build_one(source: Path) -> Built:
    """Turn one source notebook into (exercise, solution, checks module)."""
    name = source.stem
    where = f"exercises-src/{source.name}"
    if not re.fullmatch(r"\d\d_[a-z0-9_]+", name):
        raise SourceError(f"{where}: source notebooks are named NN_name.ipynb")
    nb = nbformat.read(source, as_version=4)
    cells = nb.cells
    if not cells or cells[0].cell_type != "markdown" or not cells[0].source.startswith("# "):
        raise SourceError(f"{where}: the first cell must be a markdown title '# ...'")

    # First pass: questions (from headings) and their checks (from tests cells).
    questions: dict[str, Question] = {}
    current: Question | None = None
    for i, cell in enumerate(cells):
        if cell.cell_type == "markdown":
            for number, title in QUESTION_RE.findall(cell.source):
                qname = f"q{number}"
                if qname in questions or int(number) != len(questions) + 1:
                    raise SourceError(f"{where}, cell {i + 1}: questions must be numbered 1, 2, 3... ({qname})")
                written = WRITTEN_RE.search(title)
                title = re.sub(r"\s*\(\d+ points?\)$", "", WRITTEN_RE.sub("", title))
                current = questions[qname] = Question(
                    qname, int(number), title, written_points=float(written.group(1)) if written else None
                )
            answer = ANSWER_RE.match(cell.source)
            if answer:
                if current is None or answer.group(1) != current.question or current.written_points is None:
                    raise SourceError(f"{where}, cell {i + 1}: an answer cell belongs under its written question")
                current.answer = True
        elif cell.cell_type == "code":
            first = cell.source.split("\n", 1)[0]
            match = TESTS_RE.match(first)
            if match:
                qname = match.group(1)
                if current is None or qname != current.question:
                    raise SourceError(f"{where}, cell {i + 1}: '# TESTS {qname}' is not under the heading of {qname}")
                infos = parse_checks(cell.source, f"{where}, cell {i + 1}")
                wrong = [c.question for c in infos if c.question != qname]
                if wrong:
                    raise SourceError(f"{where}, cell {i + 1}: checks of {wrong[0]} in the tests cell of {qname}")
                current.checks += infos
                current.wrong += parse_wrong(cell.source, f"{where}, cell {i + 1}")
            elif current is not None and has_solution(cell.source):
                current.solution_code.append(keep_solution(cell.source))
    if len(questions) < 2:
        raise SourceError(f"{where}: every exercise needs at least two questions")
    for q in questions.values():
        if q.written_points is not None:
            if q.checks or not q.answer:
                raise SourceError(f"{where}: written question {q.question} needs an answer cell and no tests cell")
            continue
        if not q.checks:
            raise SourceError(f"{where}: {q.question} has no '# TESTS {q.question}' cell")
        if len(q.wrong) < 2:
            raise SourceError(f"{where}: {q.question} declares {len(q.wrong)} wrong answers; at least 2 are needed")
        code = "\n".join(q.solution_code)
        for w in q.wrong:
            if w.question != q.question:
                raise SourceError(
                    f"{where}: wrong answer {w.mistake!r} of {w.question} in the tests cell of {q.question}"
                )
            if code.count(w.find) != 1:
                raise SourceError(
                    f"{where}: wrong answer {w.mistake!r} of {q.question}: {w.find!r} occurs "
                    f"{code.count(w.find)} times in the solution (needs exactly 1): update it to the solution"
                )

    # Second pass: the two notebooks and the module.
    ex_cells, sol_cells, module_parts = [], [], []
    for i, cell in enumerate(cells):
        cid = cell.get("id") or f"cell-{i}"
        if cell.cell_type == "code":
            first = cell.source.split("\n", 1)[0]
            if first.startswith("# SOURCE ONLY"):
                continue
            match = TESTS_RE.match(first)
            if match:
                qname = match.group(1)
                body = cell.source.split("\n", 1)[1] if "\n" in cell.source else ""
                module_parts.append(
                    f"\n\nsuite.question({json.dumps(qname)}, {json.dumps(questions[qname].title)})\n\n\n"
                    f"{body.strip()}\n"
                )
                check_cell = f'grader.check("{qname}")'
                ex_cells.append(_code(check_cell, cid))
                sol_cells.append(_code(check_cell, cid))
                continue
            if has_solution(cell.source):
                ex_cells.append(_code(strip_solution(cell.source, f"{where}, cell {i + 1}"), cid))
                sol_cells.append(_code(keep_solution(cell.source), cid))
            else:
                ex_cells.append(_code(cell.source, cid))
                sol_cells.append(_code(cell.source, cid))
        elif cell.cell_type == "markdown":
            text = cell.source
            if i == 0:
                continue  # the title is rebuilt below with the badge
            answer = ANSWER_RE.match(text)
            if answer:
                marker = written_marker(answer.group(1))
                ex_cells.append(_markdown(f"{marker} {ANSWER_PLACEHOLDER}", cid))
                sol_cells.append(_markdown(f"{marker} {text[answer.end() :].strip()}", cid))
                continue
            heading = QUESTION_RE.search(text)
            if heading:
                q = questions[f"q{heading.group(1)}"]
                kind = "written, " if q.written_points is not None else ""
                points = f"({kind}{_fmt(q.points)} point{'s' if q.points != 1 else ''})"
                text = QUESTION_RE.sub(f"## Question {q.number} — {q.title} {points}", text, count=1)
                text = text.rstrip() + "\n\n" + how_checked(q)
            ex_cells.append(_markdown(text, cid))
            sol_cells.append(_markdown(text, cid))
        else:
            ex_cells.append(nbformat.from_dict({**cell, "id": cid}))
            sol_cells.append(nbformat.from_dict({**cell, "id": cid}))

    file = f"{name}.ipynb"
    title = cells[0].source
    solution_note = (
        f"\n\n> **Solutions, for instructors.** Students work in `exercises/{file}`; this notebook "
        "holds reference answers and scores full marks."
    )
    head = [
        _markdown(INTRO, "how-it-works"),
        _markdown(SETUP_MD, "setup-md"),
        _code(SETUP.format(install=install_line(), name=name), "setup"),
    ]
    tail = [_markdown(TAIL_MD.format(file=file), "hand-in-md"), _code("grader.check_all()", "check-all")]
    exercise = _notebook(
        [_markdown(badge(ROOT / "exercises" / file) + title, "title"), *head, *ex_cells, *tail], name, "exercise"
    )
    solution = _notebook(
        [_markdown(badge(ROOT / "solutions" / file) + title + solution_note, "title"), *head, *sol_cells, *tail],
        name,
        "solution",
    )
    summary = "\n".join(
        f"- {q.question}: {q.title}{' (written)' if q.written_points is not None else ''}" for q in questions.values()
    )
    written = "".join(
        f"\n\nsuite.manual({json.dumps(q.question)}, {json.dumps(q.title)}, {q.written_points:g})\n"
        for q in questions.values()
        if q.written_points is not None
    )
    module = MODULE_HEAD.format(file=file, questions=summary, name=name) + "".join(module_parts) + written
    return Built(exercise, solution, module, list(questions.values()))


def _code(source: str, cid: str) -> nbformat.NotebookNode:
    cell = new_code_cell(source.strip("\n"))
    cell.id = cid
    return cell


def _markdown(source: str, cid: str) -> nbformat.NotebookNode:
    cell = new_markdown_cell(source.strip("\n"))
    cell.id = cid
    return cell


def _notebook(cells: list, name: str, kind: str) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["colab"] = {"provenance": []}
    nb.metadata["agecourse"] = {"exercise": name, "kind": kind, "source": f"exercises-src/{name}.ipynb"}
    seen: set[str] = set()
    for cell in nb.cells:
        if cell.id in seen:
            raise SourceError(f"exercises-src/{name}.ipynb: duplicate cell id {cell.id!r}")
        seen.add(cell.id)
    return nb


def build_all(out: Path, sources: list[Path] | None = None) -> list[Path]:
    """Write exercises/, solutions/ and agecourse/exercise_tests/ under ``out``; returns the written files."""
    sources = sources if sources is not None else sorted(SOURCE_DIR.glob("[0-9][0-9]_*.ipynb"))
    if not sources:
        raise SourceError(f"no source notebooks in {SOURCE_DIR}")
    folders = {
        "exercises": out / "exercises",
        "solutions": out / "solutions",
        "tests": out / "agecourse" / "exercise_tests",
    }
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sources:
        built = build_one(source)
        for key, nb in (("exercises", built.exercise), ("solutions", built.solution)):
            nbformat.validate(nb)
            path = folders[key] / source.name
            nbformat.write(nb, path)
            written.append(path)
        path = folders["tests"] / f"ex{source.stem}.py"
        path.write_text(built.module, encoding="utf-8")
        written.append(path)
    init = folders["tests"] / "__init__.py"
    init.write_text(
        '"""Checks of the exercise notebooks, one module per notebook (exNN_name.py).\n\n'
        'Generated by scripts/build_exercises.py from exercises-src/.\n"""\n',
        encoding="utf-8",
    )
    written.append(init)
    return written


def compare(fresh: Path, committed: Path = ROOT) -> list[str]:
    """Files that differ between a fresh build under ``fresh`` and the repository (or are missing/extra)."""
    problems = []
    for sub, pattern in (("exercises", "*.ipynb"), ("solutions", "*.ipynb"), ("agecourse/exercise_tests", "*.py")):
        new = {p.name for p in (fresh / sub).glob(pattern)}
        old = {p.name for p in (committed / sub).glob(pattern)}
        problems += [f"{sub}/{n}: missing (run the build)" for n in sorted(new - old)]
        problems += [f"{sub}/{n}: not produced by any source" for n in sorted(old - new)]
        problems += [
            f"{sub}/{n}: out of date (run the build)"
            for n in sorted(new & old)
            if not filecmp.cmp(fresh / sub / n, committed / sub / n, shallow=False)
        ]
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare a fresh build with the repository")
    parser.add_argument("--out", type=Path, default=None, help="write under this folder instead of the repository")
    args = parser.parse_args()
    try:
        if args.check:
            with tempfile.TemporaryDirectory() as tmp:
                build_all(Path(tmp))
                problems = compare(Path(tmp))
            for line in problems:
                print(line)
            return 1 if problems else 0
        written = build_all(args.out or ROOT)
    except SourceError as err:
        print(f"build_exercises: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} files under {args.out or ROOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
