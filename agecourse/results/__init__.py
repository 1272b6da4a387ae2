"""Benchmark results that lessons read, shipped as package data so that a lesson finds them in a
fresh Colab runtime (a non-editable install has no ``bench/`` folder) and never downloads a file.

The benchmarks in ``bench/`` write their results to ``bench/results/``; ``scripts/write_package_data.py
results`` (the one writer of package data) copies the files lessons read into this folder, and
``tests/test_package_data.py`` fails when a copy differs from its source. Files: ``bias.json``
(``bench/bench_bias.py``, lesson 12), ``model_a.json`` and ``model_b.json`` (the three-seed benchmarks
of both recipes, lesson 10), ``notebooks_ci.json``, ``notebooks_cpu.json`` and
``notebooks_cpu_utkface.json`` (``bench/bench_notebooks.py --profile ci``, ``--profile cpu`` on
synthetic faces and ``--profile cpu --data shared``: each lesson's run time and peak memory, which
every lesson's setup cell prints).
"""

from __future__ import annotations

import json
from pathlib import Path

FOLDER = Path(__file__).resolve().parent
FILES = (
    "bias.json",
    "model_a.json",
    "model_b.json",
    "notebooks_ci.json",
    "notebooks_cpu.json",
    "notebooks_cpu_utkface.json",
)


def path(name: str) -> Path:
    """The shipped results file ``name`` (one of :data:`FILES`, with or without ``.json``); a
    :class:`FileNotFoundError` lists the shipped ones."""
    file = name if name.endswith(".json") else f"{name}.json"
    if file not in FILES:
        raise FileNotFoundError(f"no shipped results file {file!r} (shipped: {', '.join(FILES)})")
    found = FOLDER / file
    if not found.is_file():
        raise FileNotFoundError(f"{found}: the shipped results file is missing (reinstall agecourse)")
    return found


def load(name: str) -> dict:
    """The parsed results file ``name`` (see :func:`path`); a file that is not JSON raises a
    ``ValueError`` naming it."""
    file = path(name)
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{file}: not a JSON file ({err})") from err
