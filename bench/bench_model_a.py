"""Model A quality on real faces, three seeds (issue 3's benchmark; issue 16's three seeds).

Trains Model A with the lessons' ``cpu`` profile recipe on the shared real UTKFace sample
(``../shared/data/utkface-part1``), on the same seeded split the lessons use, once per seed
(``--seeds``, default 42 43 44: initialisation and shuffling change, the split does not). Each seed's
training stops before ``--minutes`` of wall-clock time (default 20) whatever happens. Each trained
seed is scored once on the validation and on the held-out test split, plain and flip-averaged; the
recipe's score is the flip-averaged one when the profile sets ``flip_tta`` (chosen on validation by
``bench/tune.py flip-tta``). It writes:

* ``bench/results/model_a.json`` -- per seed: validation and test MAE / gender accuracy (plain,
  flip-averaged, the recipe's), per-age-band MAE, epochs, wall and CPU seconds; over seeds: mean ± sd
  and the targets judged on the means; the profile, overrides and settings (checked against the
  current profile by ``tests/test_bench_results.py``), load average, machine, versions;
* ``bench/results/model_a_predictions.csv`` -- one row per test image and seed (file name only, no
  image): ``seed, path, age, gender, race, pred_age, pred_gender_prob`` and the flip-averaged ones;
* ``bench/results/model_a_split.csv`` -- the split (file names only);
* ``bench/results/model_a_history.csv`` -- one row per epoch and seed;
* the profile seed's model, saved into the ``cpu`` profile's artifacts folder so lessons 08-13 reuse
  it (``--no-artifact`` to skip); the package's shipped ``model-a`` is trained by
  ``scripts/write_package_data.py models`` (benchmarks never write the package). That folder is
  ``$AGECOURSE_ARTIFACTS/cpu-utkface``; without the variable it is ``notebooks/artifacts/cpu-utkface``,
  where the lessons look when Jupyter runs them from ``notebooks/``. The split is read from (or saved
  to) the same folder, so the benchmark and the lessons use the same seeded split.

Run it alone: ``.venv/bin/python bench/bench_model_a.py`` (``--seeds 42 --minutes 5`` for a trial).
It skips with a message, and exit status 0, when the real data are absent.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    MODEL_A_FIELDS,
    RESULTS,
    ROOT,
    SEEDS,
    SHARED_DATA,
    cpu_seconds,
    load_average,
    parse_overrides,
    prediction_rows,
    print_seed,
    seed_scores,
    settings_record,
    summarise_seeds,
    write_result,
)

# Seconds kept back from each seed's budget for scoring and saving after training stops (decoding
# the images happens in the first epoch, inside the training budget).
RESERVE_S = 60.0
TARGETS = {"age_mae_max": 5.5, "gender_accuracy_min": 0.86, "training_minutes_max": 20}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="folder of UTKFace images")
    parser.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget of each seed's run")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="training seeds")
    parser.add_argument("--name", default="model_a", help="result file stem in bench/results/")
    parser.add_argument("--no-artifact", action="store_true", help="do not install the model for the lessons")
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="override a cpu-profile setting (trials)"
    )
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"SKIPPED: the real UTKFace sample is not at {args.data}; nothing to benchmark.")
        return 0

    start, cpu_start = time.monotonic(), cpu_seconds()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("AGECOURSE_ARTIFACTS", str(ROOT / "notebooks" / "artifacts"))

    import keras
    import pandas as pd

    from agecourse import artifacts, recipes
    from agecourse.config import get_settings
    from agecourse.training import history_table

    overrides = parse_overrides(args.set)
    settings = get_settings("cpu", data_dir=args.data, **overrides)
    split = artifacts.get_split(settings)  # the profile seed's split, whatever the training seed
    RESULTS.mkdir(parents=True, exist_ok=True)
    split_csv = RESULTS / f"{args.name}_split.csv"
    split.save(split_csv)
    # Only file names go into the repository, never the images nor local paths.
    names = pd.read_csv(split_csv)
    names["path"] = names["path"].map(lambda p: Path(p).name)
    names.to_csv(split_csv, index=False)

    per_seed, predictions, histories = [], [], []
    for seed in args.seeds:
        keras.backend.clear_session(free_memory=True)
        seeded = settings.replace(seed=seed)
        seed_start, seed_cpu, seed_load = time.monotonic(), cpu_seconds(), load_average()
        train_budget = args.minutes * 60 - RESERVE_S
        print(f"== seed {seed}: training Model A for at most {train_budget:.0f} s of wall time", flush=True)
        model, history = recipes.train_model_a(seeded, split, verbose=2, time_budget_s=train_budget)
        train_wall = time.monotonic() - seed_start
        cpu_to_trained = cpu_seconds() - seed_cpu
        scores, table, flipped = seed_scores(model, split, settings.image_size, settings.batch_size, settings.flip_tta)
        predictions.append(prediction_rows(table, flipped).assign(seed=seed))
        histories.append(history_table(history).assign(seed=seed))
        if seed == settings.seed and not args.no_artifact:
            installed = artifacts.save_model(settings, "model-a", model, history)
            print(f"Installed the model for the lessons at {installed}")
        val_loss = history.get("val_loss", [])
        best = min(range(len(val_loss)), key=val_loss.__getitem__) if val_loss else None
        per_seed.append(
            {
                "seed": seed,
                "scores": scores,
                "training": {
                    "epochs_max": settings.epochs,
                    "epochs_run": len(history.get("loss", [])),
                    "best_epoch": None if best is None else best + 1,
                    "train_wall_s": round(train_wall, 1),
                    "train_budget_s": round(train_budget, 1),
                    "cpu_s_to_trained": round(cpu_to_trained, 1),
                    "final_learning_rate": history.get("learning_rate", [None])[-1],
                    "load_average_start": seed_load,
                    "load_average_end": load_average(),
                },
                "parameters": int(model.count_params()),
            }
        )
        print_seed(seed, scores, f"{per_seed[-1]['training']['epochs_run']} epochs", train_wall)

    pd.concat(predictions, ignore_index=True).to_csv(RESULTS / f"{args.name}_predictions.csv", index=False)
    pd.concat(histories).to_csv(RESULTS / f"{args.name}_history.csv", index_label="epoch")
    summary = summarise_seeds(per_seed, TARGETS)
    result = {
        "data": {"folder": str(args.data), "split": split.sizes(), "split_csv": split_csv.name, "seed": settings.seed},
        **settings_record(settings, MODEL_A_FIELDS, overrides),
        "seeds": list(args.seeds),
        "per_seed": per_seed,
        "summary": summary,
        "reference": "plain 64 px 1.2 M-parameter CNN, 10 min here: about 6.1 MAE / 81 % (issue 3)",
        "wall_s": round(time.monotonic() - start, 1),
        "cpu_s": round(cpu_seconds() - cpu_start, 1),
    }
    write_result(args.name, result)
    mae, accuracy = summary["test_recipe"]["age_mae"], summary["test_recipe"]["gender_accuracy"]
    print(
        f"Model A over seeds {args.seeds}: test MAE {mae['mean']:.2f} ± {mae['sd'] or 0:.2f}, gender accuracy "
        f"{accuracy['mean']:.1%} ± {accuracy['sd'] or 0:.1%}; targets met: {summary['targets_met']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
