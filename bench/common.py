"""Shared by the benchmark scripts: machine description, library versions, result files.

Every result JSON records what was measured, on what machine, with which settings, so numbers
can be compared only where they are comparable.
"""

from __future__ import annotations

import ast
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SHARED_DATA = ROOT.parent / "shared" / "data" / "utkface-part1"
SHARED_WEIGHTS = ROOT.parent / "shared" / "weights"


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (``None`` where the OS has none, e.g. Windows)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


# Taken when a benchmark script imports this module, i.e. before it measures anything.
LOAD_AT_START = load_average()


def machine() -> dict:
    """CPU model, cores, RAM and OS of this machine."""
    cpu = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():  # Linux only; elsewhere platform.processor() is the best available
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    ram_gb = None
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        ram_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": ram_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def versions() -> dict:
    """Versions of the libraries that affect the numbers."""
    out = {}
    for name in ("tensorflow", "keras", "numpy", "pandas", "PIL", "cv2", "nbclient", "agecourse"):
        try:
            module = __import__(name)
            out[name] = getattr(module, "__version__", "unknown")
        except ImportError:
            out[name] = None
    return out


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_result(name: str, payload: dict, load_start: list[float] | None = None) -> Path:
    """Write ``bench/results/<name>.json`` with machine, versions, load averages and a timestamp.

    ``load_start`` defaults to the load average when this module was imported. A 1-minute load
    near or above the number of cores means other work shared the CPU and the timings are slower
    than on a quiet machine.
    """
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        "versions": versions(),
        "load_average": {"start": load_start or LOAD_AT_START, "end": load_average(), "cores": os.cpu_count()},
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        **payload,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    print(f"wrote {path}")
    return path


def cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write_predictions(name: str, table, flipped) -> Path:
    """Write ``bench/results/<name>_predictions.csv``: one row per test image, file name only (no
    image, no local path), true labels, predictions and the flip-averaged predictions.

    ``table`` and ``flipped`` come from :func:`agecourse.evaluate.predict_table` (without and with
    ``flip_average=True``) on the same images.
    """
    predictions = table[["path", "age", "gender", "race"]].copy()
    predictions["path"] = predictions["path"].map(lambda p: Path(p).name)
    predictions["pred_age"] = table["age_pred"].round(3)
    predictions["pred_gender_prob"] = table["gender_prob"].round(5)
    predictions["pred_age_flip_avg"] = flipped["age_pred"].round(3)
    predictions["pred_gender_prob_flip_avg"] = flipped["gender_prob"].round(5)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}_predictions.csv"
    predictions.to_csv(path, index=False)
    return path


def scores_on_test(metrics: dict, metrics_flip: dict) -> dict:
    """The test-split part of a model benchmark's result, from two
    :func:`agecourse.evaluate.evaluate_table` results (plain and flip-averaged predictions)."""
    return {
        "test": {
            "age_mae": metrics["age"]["mae"],
            "age_rmse": metrics["age"]["rmse"],
            "age_mean_signed_error": metrics["age"]["mean_signed_error"],
            "gender_accuracy": metrics["gender"]["accuracy"],
            "gender_auc": metrics["gender"]["auc"],
            "count": metrics["count"],
        },
        "test_flip_average": {
            "age_mae": metrics_flip["age"]["mae"],
            "gender_accuracy": metrics_flip["gender"]["accuracy"],
        },
        "per_age_band": metrics["per_age_band"],
        "gender_detail": metrics["gender"],
    }


def parse_overrides(items: list[str]) -> dict:
    """Settings overrides from ``--set key=value`` flags: values are Python literals where they parse
    (``epochs=12``, ``augment=False``, ``model_filters=(16, 32)``), else plain strings."""
    overrides = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key] = value
    return overrides
