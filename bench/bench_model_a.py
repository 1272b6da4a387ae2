"""Model A quality under a fixed CPU budget (issue 3's benchmark, issue 6 item 3).

Trains Model A with the lessons' ``cpu`` profile settings on the shared real UTKFace sample
(``../shared/data/utkface-part1``), on the same seeded split the lessons use, and stops before
``--minutes`` of wall-clock time (default 20) whatever happens. Then it scores the held-out test
split and writes:

* ``bench/results/model_a.json`` -- test MAE / RMSE / gender accuracy, per-age-band MAE, the
  settings, epochs run, wall and CPU seconds, load average at start and end, machine, versions;
* ``bench/results/model_a_predictions.csv`` -- one row per test image (file name only, no image):
  ``path, age, gender, race, pred_age, pred_gender_prob`` (plus the flip-averaged predictions);
* ``bench/results/model_a_split.csv`` -- the split (file names only);
* ``bench/results/model_a_history.csv`` -- one row per epoch;
* ``bench/results/model_a.keras`` -- the trained model, also saved into the ``cpu`` profile's
  artifacts folder so lessons 08-13 reuse it (``--no-artifact`` to skip). That folder is
  ``$AGECOURSE_ARTIFACTS/cpu-utkface``; without the variable it is ``notebooks/artifacts/cpu-utkface``,
  where the lessons look when Jupyter runs them from ``notebooks/``. The split is read from (or
  saved to) the same folder, so the benchmark and the lessons use the same seeded split.

Run it alone: ``.venv/bin/python bench/bench_model_a.py`` (or ``--minutes 5`` for a trial). It
skips with a message, and exit status 0, when the real data are absent.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    RESULTS,
    ROOT,
    SHARED_DATA,
    cpu_seconds,
    parse_overrides,
    scores_on_test,
    write_predictions,
    write_result,
)

# Seconds kept back from the budget for scoring and saving after training stops (decoding the
# images happens in the first epoch, inside the training budget; scoring took ~15 s on an idle machine).
RESERVE_S = 60.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="folder of UTKFace images")
    parser.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget for the whole run")
    parser.add_argument("--name", default="model_a", help="result file stem in bench/results/")
    parser.add_argument("--no-artifact", action="store_true", help="do not install the model for the lessons")
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="override a cpu-profile setting (trials)"
    )
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"SKIPPED: the real UTKFace sample is not at {args.data}; nothing to benchmark.")
        return 0

    start, cpu_start, load_start = time.monotonic(), cpu_seconds(), os.getloadavg()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("AGECOURSE_ARTIFACTS", str(ROOT / "notebooks" / "artifacts"))

    import pandas as pd

    from agecourse import artifacts, recipes
    from agecourse import evaluate as ev
    from agecourse.config import get_settings
    from agecourse.training import history_table

    overrides = parse_overrides(args.set)
    settings = get_settings("cpu", data_dir=args.data, **overrides)
    split = artifacts.get_split(settings)
    RESULTS.mkdir(parents=True, exist_ok=True)
    split_csv = RESULTS / f"{args.name}_split.csv"
    split.save(split_csv)
    # Only file names go into the repository, never the images nor local paths.
    names = pd.read_csv(split_csv)
    names["path"] = names["path"].map(lambda p: Path(p).name)
    names.to_csv(split_csv, index=False)

    budget = args.minutes * 60
    train_budget = budget - (time.monotonic() - start) - RESERVE_S
    print(f"Training Model A ({settings.profile} profile) for at most {train_budget:.0f} s of wall time")
    train_start = time.monotonic()
    model, history = recipes.train_model_a(settings, split, verbose=2, time_budget_s=train_budget)
    train_wall = time.monotonic() - train_start
    cpu_after_training = cpu_seconds() - cpu_start

    _, _, test = recipes.datasets(settings, split)
    table = ev.predict_table(model, test, split.test)
    flipped = ev.predict_table(model, test, split.test, flip_average=True)
    metrics = ev.evaluate_table(table)
    metrics_flip = ev.evaluate_table(flipped)

    write_predictions(args.name, table, flipped)
    history_table(history).to_csv(RESULTS / f"{args.name}_history.csv")
    model.save(RESULTS / f"{args.name}.keras")
    if not args.no_artifact:
        installed = artifacts.save_model(settings, "a", model, history)
        print(f"Installed the model for the lessons at {installed}")

    val_loss = history.get("val_loss", [])
    best = min(range(len(val_loss)), key=val_loss.__getitem__) if val_loss else None
    result = {
        "data": {"folder": str(args.data), "split": split.sizes(), "split_csv": split_csv.name, "seed": settings.seed},
        "settings": {
            key: (list(value) if isinstance(value, tuple) else value)
            for key, value in vars(settings).items()
            if key not in ("data_dir", "extra") and not key.startswith("transfer") and key != "synthetic_count"
        },
        **scores_on_test(metrics, metrics_flip),
        "training": {
            "epochs_max": settings.epochs,
            "epochs_run": len(history.get("loss", [])),
            "best_epoch": None if best is None else best + 1,
            "val_age_mae_best": None if best is None else history["val_age_mae"][best],
            "train_wall_s": round(train_wall, 1),
            "train_budget_s": round(train_budget, 1),
            "cpu_s_to_trained": round(cpu_after_training, 1),
            "final_learning_rate": history.get("learning_rate", [None])[-1],
        },
        "targets": {"age_mae_max": 5.5, "gender_accuracy_min": 0.86},
        "targets_met": {
            "age_mae": metrics["age"]["mae"] <= 5.5,
            "gender_accuracy": metrics["gender"]["accuracy"] >= 0.86,
        },
        "reference": "plain 64 px 1.2 M-parameter CNN, 10 min here: about 6.1 MAE / 81 % (issue 3)",
        "wall_s": round(time.monotonic() - start, 1),
        "cpu_s": round(cpu_seconds() - cpu_start, 1),
        "load_average_start": [round(v, 2) for v in load_start],
        "load_average_end": [round(v, 2) for v in os.getloadavg()],
        "parameters": int(model.count_params()),
    }
    write_result(args.name, result)
    print(
        f"Test ({metrics['count']} images): age MAE {metrics['age']['mae']:.2f} "
        f"(flip-averaged {metrics_flip['age']['mae']:.2f}), gender accuracy {metrics['gender']['accuracy']:.1%} "
        f"(flip-averaged {metrics_flip['gender']['accuracy']:.1%}); {result['training']['epochs_run']} epochs, "
        f"{result['wall_s']:.0f} s wall, {result['cpu_s']:.0f} s CPU, load {load_start[0]:.1f} -> "
        f"{result['load_average_end'][0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
