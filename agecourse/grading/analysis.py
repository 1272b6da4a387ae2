"""After grading: totals, the instructor's marks for written answers, and the item analysis.

Part of :mod:`agecourse.grading`.

* :func:`merge_manual` reads the instructor's marks (``manual.csv`` with its ``points`` column
  filled in) into ``grades.csv`` and recomputes ``totals.csv`` and the item analysis
  (``agecourse grade --merge-manual manual.csv --out grades/``).
* :func:`item_analysis` gives, per question, how many were graded, the mean score, the share with
  full marks and the check that failed most often: what the class found hard, and which check may be
  unfair. :func:`write_item_analysis` saves it as ``item_analysis.csv`` and ``item_analysis.png``.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pandas as pd

from agecourse.grading.batch import CHECK_COLUMNS, GRADE_COLUMNS, TOTAL_COLUMNS
from agecourse.grading.checks import _fmt

MANUAL_COLUMNS = ["student", "file", "exercise", "question", "max_points", "points", "answer"]
ITEM_COLUMNS = [
    "exercise",
    "question",
    "kind",
    "graded",
    "mean_points",
    "max_points",
    "mean_share",
    "full_marks_share",
    "most_failed_check",
    "most_failed_count",
]


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> Path:
    """Write ``rows`` (dicts) as a CSV file with a header; returns ``path``."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_csv(path: Path, columns: list[str]) -> list[dict]:
    """Read a CSV written by the grader; a clear error names the file when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: not a grader CSV file (missing columns {', '.join(missing)})")
        return list(reader)


def write_totals(rows: list[dict], status: dict[tuple[str, str], tuple[str, float]], path: Path) -> Path:
    """``totals.csv``: per notebook the points (automatic + marked written answers), the maximum
    (written questions included) and how many written answers still wait for a mark."""
    totals: dict[tuple[str, str], dict] = {}
    for r in rows:
        key = (r["student"], r["file"])
        entry = totals.setdefault(
            key,
            {
                "student": key[0],
                "file": key[1],
                "exercise": r["exercise"],
                "points": 0.0,
                "max_points": 0.0,
                "manual_pending": 0,
            },
        )
        entry["max_points"] += float(r["max_points"] or 0)
        if r["points"] == "":
            entry["manual_pending"] += 1
        else:
            entry["points"] += float(r["points"])
    out = []
    for key, entry in totals.items():
        state, seconds = status.get(key, ("", ""))
        out.append(
            dict(
                entry, points=_fmt(entry["points"]), max_points=_fmt(entry["max_points"]), status=state, seconds=seconds
            )
        )
    return write_csv(path, TOTAL_COLUMNS, out)


def merge_manual(manual_csv: str | Path, out_dir: str | Path) -> dict[str, int]:
    """Put the instructor's marks from ``manual_csv`` into ``out_dir``'s grades, totals and item analysis.

    Rows with an empty ``points`` are left pending. A mark that is not a number, is negative or is
    above the question's maximum, or a row that matches no written answer in ``grades.csv``, is an
    error naming the file and the row. Returns ``{"merged": n, "pending": m}``.
    """
    out = Path(out_dir)
    grades = read_csv(out / "grades.csv", GRADE_COLUMNS)
    marks = read_csv(Path(manual_csv), ["student", "file", "question", "points"])
    index = {(r["student"], r["file"], r["question"]): r for r in grades if r["kind"] == "manual"}
    merged = 0
    for line, mark in enumerate(marks, start=2):
        key = (mark["student"], mark["file"], mark["question"])
        where = f"{manual_csv}, line {line}"
        if key not in index:
            raise ValueError(f"{where}: no written answer {key[2]} of {key[0]} ({key[1]}) in {out / 'grades.csv'}")
        text = (mark["points"] or "").strip()
        if not text:
            continue
        try:
            points = float(text)
        except ValueError:
            raise ValueError(f"{where}: points {text!r} is not a number") from None
        best = float(index[key]["max_points"])
        if not 0 <= points <= best:
            raise ValueError(f"{where}: points {text} outside 0-{_fmt(best)} for {key[2]}")
        index[key]["points"] = _fmt(points)
        merged += 1
    write_csv(out / "grades.csv", GRADE_COLUMNS, grades)
    old = {(r["student"], r["file"]): (r["status"], r["seconds"]) for r in read_csv(out / "totals.csv", TOTAL_COLUMNS)}
    write_totals(grades, old, out / "totals.csv")
    write_item_analysis(out)
    return {"merged": merged, "pending": sum(1 for r in index.values() if r["points"] == "")}


def item_analysis(grades_rows: list[dict], check_rows: list[dict]) -> pd.DataFrame:
    """Per question of each exercise: graded count, mean points and share of the maximum, share with
    full marks, and the check that failed most often (with how often). Unmarked written answers are
    not counted."""
    failed: dict[tuple[str, str], Counter] = {}
    for r in check_rows:
        if str(r["passed"]) != "True":
            failed.setdefault((r["exercise"], r["question"]), Counter())[r["check"]] += 1
    groups: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for r in grades_rows:
        if not r["question"] or r["points"] == "":
            continue
        groups.setdefault((r["exercise"], r["question"], r["kind"]), []).append(
            (float(r["points"]), float(r["max_points"]))
        )
    rows = []
    for (exercise, question, kind), scores in sorted(groups.items(), key=lambda kv: (kv[0][0], int(kv[0][1][1:]))):
        best = max(m for _, m in scores)
        mean = sum(p for p, _ in scores) / len(scores)
        top = failed.get((exercise, question), Counter()).most_common(1)
        rows.append(
            {
                "exercise": exercise,
                "question": question,
                "kind": kind,
                "graded": len(scores),
                "mean_points": round(mean, 3),
                "max_points": best,
                "mean_share": round(mean / best, 3) if best else float("nan"),
                "full_marks_share": round(sum(p >= m for p, m in scores) / len(scores), 3),
                "most_failed_check": top[0][0] if top else "",
                "most_failed_count": top[0][1] if top else 0,
            }
        )
    return pd.DataFrame(rows, columns=ITEM_COLUMNS)


def write_item_analysis(out_dir: str | Path) -> dict[str, Path]:
    """``item_analysis.csv`` and ``item_analysis.png`` (mean score and full-marks share per question)
    from ``grades.csv`` and ``checks.csv`` in ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")  # files only: grading runs without a display
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    table = item_analysis(read_csv(out / "grades.csv", GRADE_COLUMNS), read_csv(out / "checks.csv", CHECK_COLUMNS))
    csv_path, png_path = out / "item_analysis.csv", out / "item_analysis.png"
    table.to_csv(csv_path, index=False)
    labels = [
        f"{e} {q}{' (written)' if k == 'manual' else ''}"
        for e, q, k in zip(table["exercise"], table["question"], table["kind"])
    ]
    fig, ax = plt.subplots(figsize=(7, 0.3 * max(len(table), 3) + 1.2))
    y = range(len(table))
    ax.barh([i - 0.2 for i in y], table["mean_share"], height=0.4, label="mean score (share of the maximum)")
    ax.barh([i + 0.2 for i in y], table["full_marks_share"], height=0.4, label="share with full marks")
    ax.set_yticks(list(y), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"share ({int(table['graded'].max()) if len(table) else 0} notebooks graded at most per question)")
    ax.set_title("Item analysis: how the class did on each question")
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return {"item_analysis": csv_path, "item_analysis_plot": png_path}
