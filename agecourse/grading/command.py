"""The command line of the batch grader: ``agecourse grade`` and ``python -m agecourse.grading``.

Part of :mod:`agecourse.grading`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agecourse.grading.batch import _execute
from agecourse.grading.checks import (
    DEFAULT_CELL_TIMEOUT,
    DEFAULT_GRADING_CHECK_TIMEOUT,
    DEFAULT_TIMEOUT,
    _fmt,
)
from agecourse.grading.reports import grade_folder


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
