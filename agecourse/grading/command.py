"""The command line of the batch grader: ``agecourse grade`` and ``python -m agecourse.grading``.

Part of :mod:`agecourse.grading`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agecourse.grading.analysis import merge_manual
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
    parser.add_argument(
        "submissions", nargs="?", help="folder of submitted notebooks: STUDENT/NN_name.ipynb or NAME.ipynb"
    )
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
    parser.add_argument(
        "--merge-manual",
        metavar="MANUAL_CSV",
        default=None,
        help="instead of grading: merge the instructor's marks of written answers (OUT/manual.csv with its "
        "points column filled in) into OUT's grades.csv, totals.csv and item analysis",
    )
    return parser


def cmd_grade(args: argparse.Namespace) -> int:
    """Grade a folder of submissions (``agecourse grade``), or merge manual marks; returns the exit status."""
    if getattr(args, "merge_manual", None):
        try:
            counts = merge_manual(args.merge_manual, args.out)
        except (FileNotFoundError, ValueError) as err:
            print(f"agecourse grade: error: {err}", file=sys.stderr)
            return 2
        print(
            f"Merged {counts['merged']} marks of written answers into {Path(args.out) / 'grades.csv'} and "
            f"totals.csv ({counts['pending']} still unmarked)."
        )
        return 0
    if args.submissions is None:
        print("agecourse grade: error: give the folder of submissions (or --merge-manual FILE)", file=sys.stderr)
        return 2
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
        f"Wrote {Path(args.out) / 'grades.csv'}, totals.csv, feedback/, manual.csv (written answers to mark) "
        "and item_analysis.csv/.png"
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
