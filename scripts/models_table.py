"""Write the shipped-models table into README.md from ``agecourse/course_models/registry.json``.

The table sits between ``<!-- models-table -->`` and ``<!-- /models-table -->``; run this after
``scripts/write_package_data.py models`` (``--check`` exits 1 when the README is stale).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- models-table -->", "<!-- /models-table -->"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that README.md is up to date")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from agecourse.course_models import models_table

    text = README.read_text(encoding="utf-8")
    if START not in text or END not in text:
        print(f"{README}: no {START} ... {END} markers")
        return 2
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    updated = f"{head}{START}\n{models_table()}\n{END}{tail}"
    if args.check:
        if updated != text:
            print(f"{README}: the shipped-models table is stale; run python scripts/models_table.py")
            return 1
        return 0
    README.write_text(updated, encoding="utf-8")
    print(f"wrote the shipped-models table into {README}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
