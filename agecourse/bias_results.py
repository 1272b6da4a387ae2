"""The real-faces bias benchmark that lesson 12 reads, shipped with the package (``agecourse/results/bias.json``).

Introduced in lesson 12 (bias analysis). ``bench/bench_bias.py`` trains Model A twice on the real
UTKFace sample -- arm ``"a"`` with lesson 04's age-band weights, arm ``"b"`` with those weights times
a race x gender balance (:func:`agecourse.balance.add_group_weights`) -- and records every group's
metrics with 95 % bootstrap intervals (:func:`agecourse.bias.group_intervals`) and the paired
before/after changes (:func:`agecourse.bias.paired_group_changes`). ``scripts/write_package_data.py``
copies the file into the package, so :func:`load` reads it offline from any install;
:func:`groups` and :func:`changes` turn its parts into tables.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from agecourse import results as shipped_results


def load(path: str | os.PathLike | None = None) -> dict:
    """The real-faces bias benchmark (``bench/bench_bias.py``) that lesson 12 reads: the copy shipped
    in the package, or the file at ``path`` (for example a fresh ``bench/results/bias.json``).
    Raises ``FileNotFoundError`` naming the file when it is missing, ``ValueError`` when it is not a
    bias benchmark result. Nothing is downloaded."""
    file = Path(path).expanduser() if path is not None else shipped_results.path("bias")
    if not file.exists():
        raise FileNotFoundError(f"{file}: no bias benchmark results there (run bench/bench_bias.py)")
    return _parse(file.read_text(encoding="utf-8"), str(file))


def _parse(text: str, where: str) -> dict:
    """The parsed results, or a ``ValueError`` naming ``where`` when it is not a bias benchmark."""
    try:
        results = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{where}: not a JSON file ({err})") from err
    missing = {"arms", "comparison", "profile", "data"} - set(results)
    if missing:
        raise ValueError(f"{where}: not a bias benchmark result (missing {', '.join(sorted(missing))})")
    return results


def groups(results: dict, grouping: str, arm: str = "a") -> pd.DataFrame:
    """One arm's per-group table (with 95 % intervals) from :func:`load`'s results.

    ``grouping`` is ``"gender"``, ``"race"``, ``"age_band"`` or ``"race_x_gender"``; ``arm`` is ``"a"``
    (age-band weights) or ``"b"`` (plus the race x gender balance)."""
    try:
        return pd.DataFrame(results["arms"][arm]["groups"][grouping])
    except KeyError as err:
        raise KeyError(f"the bias benchmark has no {grouping!r} groups for arm {arm!r} ({err})") from None


def changes(results: dict, grouping: str) -> pd.DataFrame:
    """Per-group before (arm a) / after (arm b) metrics with paired 95 % intervals of the change."""
    try:
        return pd.DataFrame(results["comparison"]["paired_changes"][grouping])
    except KeyError as err:
        raise KeyError(f"the bias benchmark has no paired changes for {grouping!r} ({err})") from None
