"""Model B quality on real faces, three seeds (issue 4's benchmark; issue 16's three seeds).

Trains Model B (MobileNetV2 with ImageNet weights, lesson 10) on the shared real UTKFace sample
(``../shared/data/utkface-part1``), on the same seeded split as Model A and the lessons
(``agecourse.artifacts.get_split`` with the ``cpu`` settings), once per seed (``--seeds``, default
42 43 44: initialisation, the cached views and shuffling change, the split does not). Each seed's run
stops before ``--minutes`` of wall-clock time (default 20) whatever happens. Each trained seed is
scored once on the validation and on the held-out test split (JPEG -> full model), plain and
flip-averaged; the recipe's score is the flip-averaged one when the profile sets ``flip_tta``. It writes:

* ``bench/results/model_b.json`` -- per seed: validation and test MAE / gender accuracy (plain,
  flip-averaged, the recipe's), per-age-band MAE, epochs per phase, wall and CPU seconds; over seeds:
  mean ± sd, the targets judged on the means and, when ``model_a.json`` holds the same seeds on the
  same split, the paired difference B - A seed by seed; the profile, overrides and settings (checked
  against the current profile by ``tests/test_bench_results.py``), load average, machine, versions;
* ``bench/results/model_b_predictions.csv`` -- one row per test image and seed (file name only);
* ``bench/results/model_b_history.csv`` -- one row per epoch of both phases, per seed;
* the profile seed's model in the ``cpu`` profile's artifacts folder (``--no-artifact`` to skip),
  which lessons 11-13 use (``agecourse.model_choice.for_lesson``). The package's shipped ``model-b`` is
  trained by ``scripts/write_package_data.py models`` (benchmarks never write the package).

How it fits in 20 minutes on two CPU cores: two-phase training with the bottom of the backbone
frozen in both phases, so its features are computed once per cached *view* of each training image
instead of once per epoch (:func:`agecourse.transfer_training.train_two_phase_cached`). The views are
the image, its mirror image and mildly zoomed / shifted / rotated copies; phase 1 trains the heads on
a frozen backbone, phase 2 fine-tunes the backbone above the cut (batch norm kept frozen) at a lower
learning rate with a cosine decay.

Run it alone: ``.venv/bin/python bench/bench_model_b.py`` (``--seeds 42 --minutes 5`` for a trial).
It skips with a message, and exit status 0, when the real data or the ImageNet weights are absent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    MODEL_B_FIELDS,
    RESULTS,
    ROOT,
    SEEDS,
    SHARED_DATA,
    SHARED_WEIGHTS,
    cpu_seconds,
    load_average,
    paired_difference,
    parse_overrides,
    prediction_rows,
    print_seed,
    seed_scores,
    settings_record,
    summarise_seeds,
    write_result,
)

# Seconds kept back from each seed's budget for scoring the splits and saving after training stops.
RESERVE_S = 100.0
TARGETS = {"age_mae_max": 5.0, "gender_accuracy_min": 0.88, "training_minutes_max": 20}


def compare_with_model_a(per_seed: list[dict], split_sizes: dict, results: Path = RESULTS) -> dict | None:
    """Model B against Model A seed by seed (same seeds, same split): the paired difference B - A of
    the recipe's test MAE and gender accuracy, or ``None`` when ``model_a.json`` cannot be paired."""
    a_path = results / "model_a.json"
    if not a_path.is_file():
        return None
    a = json.loads(a_path.read_text())
    a_seeds = {s["seed"]: s["scores"]["recipe"] for s in a.get("per_seed", [])}
    seeds = [s["seed"] for s in per_seed]
    if a.get("data", {}).get("split") != split_sizes or any(seed not in a_seeds for seed in seeds):
        return {"paired": False, "why": "model_a.json has other seeds or another split", "model_a_when": a.get("when")}
    b_scores = {s["seed"]: s["scores"]["recipe"] for s in per_seed}
    mae = paired_difference([a_seeds[x]["age_mae"] for x in seeds], [b_scores[x]["age_mae"] for x in seeds])
    accuracy = paired_difference(
        [a_seeds[x]["gender_accuracy"] for x in seeds], [b_scores[x]["gender_accuracy"] for x in seeds]
    )
    return {
        "paired": True,
        "seeds": seeds,
        "model_a_when": a.get("when"),
        "difference_b_minus_a": {"age_mae": mae, "gender_accuracy": accuracy},
        # "Better" needs every seed to agree and the interval of the mean difference to exclude zero.
        "b_better_age_mae": bool(all(d < 0 for d in mae["values"]) and mae.get("ci95", [0, 0])[1] < 0),
        "b_better_gender_accuracy": bool(
            all(d > 0 for d in accuracy["values"]) and accuracy.get("ci95", [0, 0])[0] > 0
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="folder of UTKFace images")
    parser.add_argument("--weights-dir", type=Path, default=SHARED_WEIGHTS, help="folder of Keras ImageNet weights")
    parser.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget of each seed's run")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="training seeds")
    parser.add_argument("--name", default="model_b", help="result file stem in bench/results/")
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
    # The lessons run from notebooks/ and look for artifacts there (as bench_model_a.py does).
    os.environ.setdefault("AGECOURSE_ARTIFACTS", str(ROOT / "notebooks" / "artifacts"))
    import keras
    import pandas as pd

    from agecourse import artifacts, backbones, recipes
    from agecourse.config import get_settings
    from agecourse.models import compile_model
    from agecourse.training import history_table, set_seed
    from agecourse.transfer_training import join_histories

    overrides = parse_overrides(args.set)
    settings = get_settings("cpu", data_dir=args.data, **overrides)
    weights = backbones.find_weights(
        settings.transfer_backbone, settings.transfer_alpha, settings.transfer_image_size, weights_dir=args.weights_dir
    )
    if weights is None:
        wanted = backbones.get_backbone("MobileNetV2").weight_file_names(settings.transfer_alpha, 224)[0]
        print(
            f"SKIPPED: no ImageNet weights {wanted} in {args.weights_dir} or the Keras cache; see ../shared/README.md."
        )
        return 0
    split = artifacts.get_split(settings)  # the profile seed's split, whatever the training seed
    size = settings.transfer_image_size

    per_seed, predictions, histories = [], [], []
    for seed in args.seeds:
        keras.backend.clear_session(free_memory=True)
        seeded = settings.replace(seed=seed)
        seed_start, seed_cpu, seed_load = time.monotonic(), cpu_seconds(), load_average()
        train_budget = args.minutes * 60 - RESERVE_S
        print(f"== seed {seed}: training Model B ({size} px) for at most {train_budget:.0f} s", flush=True)
        set_seed(seed)
        model = recipes.build_model_b_for(seeded, split, weights=weights)
        frozen, finetune, info = recipes.train_cached_for(seeded, model, split, time_budget_s=train_budget)
        train_wall = time.monotonic() - seed_start
        cpu_to_trained = cpu_seconds() - seed_cpu
        scores, table, flipped = seed_scores(model, split, size, settings.batch_size, settings.flip_tta)
        predictions.append(prediction_rows(table, flipped).assign(seed=seed))
        phases = [history_table(h).assign(phase=name) for name, h in (("frozen", frozen), ("finetune", finetune)) if h]
        histories.append(pd.concat(phases, ignore_index=True).assign(seed=seed))
        if seed == settings.seed and not args.no_artifact:
            compile_model(model, learning_rate=recipes.learning_rates_for(settings)[1])
            installed = artifacts.save_model(settings, "model-b", model, join_histories(frozen, finetune))
            print(f"Installed the model for the lessons at {installed.resolve()}")
        per_seed.append(
            {
                "seed": seed,
                "scores": scores,
                "training": {
                    "epochs_frozen": len(frozen.get("loss", [])),
                    "epochs_finetune": len(finetune.get("loss", [])),
                    "finetuned_backbone_layers": info["finetuned_backbone_layers"],
                    "train_views": info["train_views"],
                    "cache_s": info["cache_seconds"],
                    "train_wall_s": round(train_wall, 1),
                    "train_budget_s": round(train_budget, 1),
                    "stopped_by_budget": info["stopped_by_budget"],
                    "cpu_s_to_trained": round(cpu_to_trained, 1),
                    "load_average_start": seed_load,
                    "load_average_end": load_average(),
                },
                "parameters": int(model.count_params()),
            }
        )
        training = per_seed[-1]["training"]
        print_seed(seed, scores, f"epochs {training['epochs_frozen']} + {training['epochs_finetune']}", train_wall)

    RESULTS.mkdir(parents=True, exist_ok=True)
    pd.concat(predictions, ignore_index=True).to_csv(RESULTS / f"{args.name}_predictions.csv", index=False)
    pd.concat(histories, ignore_index=True).to_csv(RESULTS / f"{args.name}_history.csv", index_label="row")
    summary = summarise_seeds(per_seed, TARGETS)
    summary["against_model_a"] = compare_with_model_a(per_seed, split.sizes())
    result = {
        "data": {"folder": str(args.data), "split": split.sizes(), "seed": settings.seed},
        **settings_record(settings, MODEL_B_FIELDS, overrides),
        "weights": Path(weights).name,
        "seeds": list(args.seeds),
        "per_seed": per_seed,
        "summary": summary,
        "augmentation": "cached views: the image, its mirror image, and copies zoomed in up to 12 %, shifted up to "
        "5 % and rotated up to ~11 degrees (agecourse.transfer_training.view_augmentation, seeded), plain and "
        "mirrored alternately",
        "age_loss": "huber (delta 5), loss weights age 1 : gender 20, AdamW",
        "reference": "naive full fine-tune of MobileNetV2-0.35 at 96 px for 3 minutes: 8.2 MAE / 79 % (issue 4)",
        "wall_s": round(time.monotonic() - start, 1),
        "cpu_s": round(cpu_seconds() - cpu_start, 1),
    }
    write_result(args.name, result)
    mae, accuracy = summary["test_recipe"]["age_mae"], summary["test_recipe"]["gender_accuracy"]
    print(
        f"Model B over seeds {args.seeds}: test MAE {mae['mean']:.2f} ± {mae['sd'] or 0:.2f}, gender accuracy "
        f"{accuracy['mean']:.1%} ± {accuracy['sd'] or 0:.1%}; targets met: {summary['targets_met']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
