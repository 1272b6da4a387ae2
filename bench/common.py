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


def prediction_rows(table, flipped):
    """One row per test image: file name only (no image, no local path), true labels, predictions
    and the flip-averaged predictions, for ``bench/results/<name>_predictions.csv``.

    ``table`` and ``flipped`` come from :func:`agecourse.evaluate.predict_table` (without and with
    ``flip_average=True``) on the same images.
    """
    predictions = table[["path", "age", "gender", "race"]].copy()
    predictions["path"] = predictions["path"].map(lambda p: Path(p).name)
    predictions["pred_age"] = table["age_pred"].round(3)
    predictions["pred_gender_prob"] = table["gender_prob"].round(5)
    predictions["pred_age_flip_avg"] = flipped["age_pred"].round(3)
    predictions["pred_gender_prob_flip_avg"] = flipped["gender_prob"].round(5)
    return predictions


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


# --- three seeds and the settings a result was made with (issue 16) ------------------------------

# The model benchmarks train each recipe once per seed (initialisation, shuffling and, for Model B,
# the cached views), always on the course's one seeded split; the first is the profile's own seed.
SEEDS = (42, 43, 44)

# The Settings fields each benchmark's numbers depend on. A result records their values when it ran;
# tests/test_bench_results.py fails when they no longer match the profile (plus the run's recorded
# overrides), so a stale result is caught instead of published.
COMMON_FIELDS = ("batch_size", "max_images", "mixed_precision", "flip_tta")
MODEL_A_FIELDS = COMMON_FIELDS + (
    "image_size",
    "epochs",
    "learning_rate",
    "model_filters",
    "dense_units",
    "head_dropout",
    "l2",
    "augment",
    "age_loss",
    "gender_loss_weight",
    "patience",
    "lr_patience",
    "lr_schedule",
    "cache",
)
# The bias benchmark scores plain predictions: test-time augmentation is not part of what it measures.
BIAS_FIELDS = tuple(name for name in MODEL_A_FIELDS if name != "flip_tta")
MODEL_B_FIELDS = COMMON_FIELDS + (
    "learning_rate",
    "patience",
    "lr_patience",
    "transfer_image_size",
    "transfer_epochs_frozen",
    "transfer_epochs_finetune",
    "transfer_backbone",
    "transfer_alpha",
    "transfer_dropout",
    "transfer_cached_views",
    "transfer_cut",
    "transfer_learning_rate",
    "transfer_finetune_learning_rate",
    "transfer_lr_schedule",
    "transfer_restore_best",
    "transfer_patience",
    "transfer_gender_loss_weight",
    "transfer_weight_decay",
)

# Both recipes, each field once, and how long lessons train (bench_notebooks.py records them).
LESSON_FIELDS = tuple(dict.fromkeys(MODEL_A_FIELDS + MODEL_B_FIELDS + ("lesson_budget_s",)))


def jsonable(value):
    """A settings value as JSON stores it (tuples become lists, paths strings)."""
    if isinstance(value, tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def settings_record(settings, fields: tuple[str, ...], overrides: dict | None = None) -> dict:
    """What a result records about its settings: the profile, the overrides the command asked for
    (``--set`` flags, a benchmark's own fixed choices) and the value of every field in ``fields``."""
    return {
        "profile": settings.profile,
        "overrides": {key: jsonable(value) for key, value in (overrides or {}).items()},
        "values": {name: jsonable(getattr(settings, name)) for name in fields},
    }


def stale_fields(record: dict, fields: tuple[str, ...]) -> list[str]:
    """The fields whose recorded value differs from the current profile's (plus the recorded
    overrides), each as ``"name: recorded -> now"``; a field not recorded at all counts as stale."""
    if "profile" not in record or "values" not in record:
        return ["the result records no profile settings (made before issue 16): rerun it"]
    from agecourse.config import get_settings

    expected = get_settings(record["profile"], **record.get("overrides", {}))
    problems = []
    for name in fields:
        now = jsonable(getattr(expected, name))
        if name not in record["values"]:
            problems.append(f"{name}: not recorded -> {now!r}")
        elif record["values"][name] != now:
            problems.append(f"{name}: {record['values'][name]!r} -> {now!r}")
    return problems


def mean_sd(values: list[float]) -> dict:
    """Mean, sample standard deviation (``None`` for one value) and the values themselves."""
    import statistics

    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else None,
        "n": len(values),
        "values": list(values),
    }


def paired_difference(first: list[float], second: list[float]) -> dict:
    """``second - first`` seed by seed: mean ± sd and a 95 % t-interval of the mean difference
    (with three seeds the interval is wide: t = 4.30 at two degrees of freedom)."""
    from scipy import stats

    if len(first) != len(second) or not first:
        raise ValueError(f"paired values must match one to one, got {len(first)} and {len(second)}")
    differences = [b - a for a, b in zip(first, second)]
    summary = mean_sd(differences)
    if len(differences) > 1:
        half = float(stats.t.ppf(0.975, len(differences) - 1)) * summary["sd"] / len(differences) ** 0.5
        summary["ci95"] = [summary["mean"] - half, summary["mean"] + half]
    return summary


def plain_and_flipped(model, table, size: int, batch_size: int) -> tuple[object, object]:
    """``model``'s prediction tables for the images of ``table``: plain and flip-averaged
    (:func:`agecourse.evaluate.predict_both`: one forward pass over the images, one over their
    mirror images), each image decoded once for both."""
    from agecourse import evaluate as ev
    from agecourse.data import make_dataset

    return ev.predict_both(model, make_dataset(table, size, batch_size).cache(), table)


def seed_scores(model, split, size: int, batch_size: int, flip_tta: bool) -> tuple[dict, object, object]:
    """One trained seed's scores: validation and test, plain and flip-averaged, and which of the two
    is the scoring recipe's (``flip_tta``, as :func:`agecourse.evaluate.score` chooses). Returns
    ``(scores, test_table, flipped_test_table)``."""
    from agecourse import evaluate as ev

    val_plain, val_flip = (ev.evaluate_table(t) for t in plain_and_flipped(model, split.val, size, batch_size))
    table, flipped = plain_and_flipped(model, split.test, size, batch_size)
    scores = scores_on_test(ev.evaluate_table(table), ev.evaluate_table(flipped))
    scores["validation"] = {
        "age_mae": val_plain["age"]["mae"],
        "gender_accuracy": val_plain["gender"]["accuracy"],
        "flip_average": {"age_mae": val_flip["age"]["mae"], "gender_accuracy": val_flip["gender"]["accuracy"]},
    }
    chosen = "test_flip_average" if flip_tta else "test"
    scores["recipe"] = {
        "predictions": ev.predictions_name(flip_tta),
        "age_mae": scores[chosen]["age_mae"],
        "gender_accuracy": scores[chosen]["gender_accuracy"],
    }
    return scores, table, flipped


def print_seed(seed: int, scores: dict, epochs: str, train_wall: float) -> None:
    """One line of progress per trained seed: the recipe's test score, validation MAE, epochs, time."""
    recipe = scores["recipe"]
    print(
        f"seed {seed}: test MAE {recipe['age_mae']:.2f}, gender {recipe['gender_accuracy']:.1%} "
        f"({recipe['predictions']}); validation MAE {scores['validation']['age_mae']:.2f}; "
        f"{epochs} in {train_wall:.0f} s",
        flush=True,
    )


def summarise_seeds(per_seed: list[dict], targets: dict) -> dict:
    """Mean ± sd over seeds of the recipe's test scores (and the plain and flip-averaged ones, and
    validation), and the targets judged on the means."""
    where = {  # summary key -> the per-seed scores it averages
        "test_recipe": "recipe",
        "test_plain": "test",
        "test_flip_average": "test_flip_average",
        "validation": "validation",
    }
    summary: dict = {
        name: {
            metric: mean_sd([s["scores"][key][metric] for s in per_seed]) for metric in ("age_mae", "gender_accuracy")
        }
        for name, key in where.items()
    }
    summary["train_wall_s"] = mean_sd([s["training"]["train_wall_s"] for s in per_seed])
    mae = summary["test_recipe"]["age_mae"]["mean"]
    accuracy = summary["test_recipe"]["gender_accuracy"]["mean"]
    longest = max(s["training"]["train_wall_s"] for s in per_seed)
    summary["targets"] = targets
    summary["targets_met"] = {
        "age_mae": mae <= targets["age_mae_max"],
        "gender_accuracy": accuracy >= targets["gender_accuracy_min"],
        "training_minutes": longest <= targets["training_minutes_max"] * 60,
    }
    return summary
