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

Modules (everything is importable from ``agecourse.grading``):

- :mod:`~agecourse.grading.checks` -- assertions (``same``, ``close``, ``raises``), :class:`Suite`, running a check
- :mod:`~agecourse.grading.student` -- :class:`Grader` in a student's notebook, and the grading mode of a kernel
- :mod:`~agecourse.grading.batch` -- finding submissions, running each in a fresh kernel with time limits
- :mod:`~agecourse.grading.reports` -- :func:`grade_folder`, ``grades.csv``, ``totals.csv``, feedback files
- :mod:`~agecourse.grading.analysis` -- totals, merging the instructor's marks of written answers, item analysis
- :mod:`~agecourse.grading.mutants` -- runs the declared wrong answers of a solution (do the checks catch them?)
- :mod:`~agecourse.grading.command` -- ``agecourse grade`` / ``python -m agecourse.grading``
"""

from agecourse.grading.analysis import item_analysis, merge_manual, write_item_analysis
from agecourse.grading.batch import (
    GRADE_COLUMNS,
    TOTAL_COLUMNS,
    NotebookGrade,
    Submission,
    detect_exercise,
    find_submissions,
    grade_notebook,
)
from agecourse.grading.checks import (
    CHECK_TIMEOUT_ENV,
    DEFAULT_CELL_TIMEOUT,
    DEFAULT_CHECK_TIMEOUT,
    DEFAULT_GRADING_CHECK_TIMEOUT,
    DEFAULT_TIMEOUT,
    EXERCISE_ENV,
    NOT_ANSWERED,
    RESULTS_ENV,
    Check,
    CheckFailed,
    CheckOutcome,
    CheckTimeout,
    QuestionResult,
    Suite,
    available_exercises,
    close,
    exercise_module,
    is_placeholder,
    load_suite,
    placeholder_reason,
    raises,
    run_check,
    run_question,
    same,
    short_repr,
)
from agecourse.grading.command import add_grade_arguments, cmd_grade, main
from agecourse.grading.reports import feedback_text, grade_folder, write_reports
from agecourse.grading.student import Grader, grade_remaining

__all__ = [
    "CHECK_TIMEOUT_ENV",
    "DEFAULT_CELL_TIMEOUT",
    "DEFAULT_CHECK_TIMEOUT",
    "DEFAULT_GRADING_CHECK_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "EXERCISE_ENV",
    "GRADE_COLUMNS",
    "RESULTS_ENV",
    "TOTAL_COLUMNS",
    "Check",
    "CheckFailed",
    "CheckOutcome",
    "CheckTimeout",
    "Grader",
    "NOT_ANSWERED",
    "NotebookGrade",
    "QuestionResult",
    "Submission",
    "Suite",
    "add_grade_arguments",
    "available_exercises",
    "close",
    "cmd_grade",
    "detect_exercise",
    "exercise_module",
    "is_placeholder",
    "placeholder_reason",
    "feedback_text",
    "find_submissions",
    "grade_folder",
    "grade_notebook",
    "grade_remaining",
    "item_analysis",
    "merge_manual",
    "write_item_analysis",
    "load_suite",
    "main",
    "raises",
    "run_check",
    "run_question",
    "same",
    "short_repr",
    "write_reports",
]
