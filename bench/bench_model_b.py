"""Model B quality under a fixed CPU budget (issue 4's quality benchmark, issue 6 item 3).

Trains Model B (MobileNetV2 with ImageNet weights, lesson 10) on the shared real UTKFace sample
(``../shared/data/utkface-part1``), on the same seeded split as Model A and the lessons
(``agecourse.artifacts.get_split`` with the ``cpu`` settings), and stops before ``--minutes`` of
wall-clock time (default 20) whatever happens. Then it scores the held-out test split end to end
(JPEG -> full model) and writes:

* ``bench/results/model_b.json`` -- test MAE / RMSE / gender accuracy, per-age-band MAE, the
  settings, epochs per phase, wall and CPU seconds, load average at start and end, machine,
  versions, and Model A's numbers from ``model_a.json`` when that exists;
* ``bench/results/model_b_predictions.csv`` -- one row per test image (file name only, no image):
  ``path, age, gender, race, pred_age, pred_gender_prob`` (plus the flip-averaged predictions);
* ``bench/results/model_b_history.csv`` -- one row per epoch of both phases;
* ``model_b.keras`` in the ``cpu`` profile's artifacts folder (``--no-artifact`` to skip), which
  lessons 11-13 load with ``agecourse.artifacts.get_model_b``.

How it fits in 20 minutes on two CPU cores: two-phase training with the bottom of the backbone
frozen in both phases, so its features are computed once per cached *view* of each training image
instead of once per epoch (:func:`agecourse.transfer_training.train_two_phase_cached`). The views are the
image, its mirror image and mildly zoomed / shifted / rotated copies (``--views``, default 4);
phase 1 trains the heads on a frozen backbone, phase 2 fine-tunes the backbone above ``--cut``
(batch norm kept frozen) at a lower learning rate with a cosine decay. The cached features are
exactly what the frozen layers compute, and the test score runs the whole saved model on the test
JPEGs.

Run it alone: ``.venv/bin/python bench/bench_model_b.py`` (``--minutes 5`` for a trial). It skips
with a message, and exit status 0, when the real data or the ImageNet weights are absent.
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
    LOAD_AT_START,
    RESULTS,
    ROOT,
    SHARED_DATA,
    SHARED_WEIGHTS,
    cpu_seconds,
    load_average,
    scores_on_test,
    write_predictions,
    write_result,
)

# Seconds kept back from the budget for scoring the test split and saving after training stops.
RESERVE_S = 100.0
TARGETS = {"age_mae_max": 5.0, "gender_accuracy_min": 0.88}


def main(argv: list[str] | None = None) -> int:
    from agecourse.config import get_settings

    cpu = get_settings("cpu")  # the defaults are the cpu profile's Model B, the one lesson 10 trains there
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="folder of UTKFace images")
    parser.add_argument("--weights-dir", type=Path, default=SHARED_WEIGHTS, help="folder of Keras ImageNet weights")
    parser.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget for the whole run")
    parser.add_argument(
        "--alpha", type=float, default=cpu.transfer_alpha, help="MobileNetV2 width (0.35 or 0.5 are shared)"
    )
    parser.add_argument("--size", type=int, default=cpu.transfer_image_size, help="input side in pixels")
    parser.add_argument("--cut", default=cpu.transfer_cut, help="fine-tune the backbone above this layer")
    parser.add_argument(
        "--epochs-frozen", type=int, default=cpu.transfer_epochs_frozen, help="phase 1 epochs (heads only)"
    )
    parser.add_argument(
        "--epochs-finetune",
        type=int,
        default=cpu.transfer_epochs_finetune,
        help="phase 2 epochs (the cosine decay spans them)",
    )
    parser.add_argument("--lr", type=float, default=cpu.transfer_learning_rate, help="phase 1 learning rate")
    parser.add_argument(
        "--finetune-lr", type=float, default=cpu.transfer_finetune_learning_rate, help="phase 2 learning rate"
    )
    parser.add_argument("--batch-size", type=int, default=cpu.batch_size)
    parser.add_argument("--patience", type=int, default=cpu.patience, help="early-stopping patience (epochs)")
    parser.add_argument(
        "--views",
        type=int,
        default=cpu.transfer_cached_views,
        help="cached versions of each training face: 1 plain, 2 + mirror, more = + zoomed/shifted/rotated copies",
    )
    parser.add_argument(
        "--schedule",
        choices=("plateau", "cosine"),
        default=cpu.transfer_lr_schedule,
        help="phase 2 learning-rate schedule",
    )
    parser.add_argument("--dropout", type=float, default=cpu.transfer_dropout, help="dropout before each head's output")
    parser.add_argument("--name", default="model_b", help="result file stem in bench/results/")
    parser.add_argument("--no-artifact", action="store_true", help="do not install the model for the lessons")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"SKIPPED: the real UTKFace sample is not at {args.data}; nothing to benchmark.")
        return 0

    start, cpu_start = time.monotonic(), cpu_seconds()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # The lessons run from notebooks/ and look for artifacts there (as bench_model_a.py does).
    os.environ.setdefault("AGECOURSE_ARTIFACTS", str(ROOT / "notebooks" / "artifacts"))
    import pandas as pd

    from agecourse import artifacts, backbones, recipes
    from agecourse import evaluate as ev
    from agecourse.config import get_settings
    from agecourse.data import make_dataset
    from agecourse.models import compile_model
    from agecourse.training import history_table, set_seed
    from agecourse.transfer_training import join_histories

    weights = backbones.find_weights("MobileNetV2", args.alpha, args.size, weights_dir=args.weights_dir)
    if weights is None:
        wanted = backbones.get_backbone("MobileNetV2").weight_file_names(args.alpha, 224)[0]
        print(
            f"SKIPPED: no ImageNet weights {wanted} in {args.weights_dir} or the Keras cache; see ../shared/README.md."
        )
        return 0

    # The cpu profile's Model B recipe with this run's choices: the lesson and the benchmark share the code.
    settings = get_settings(
        "cpu",
        data_dir=args.data,
        transfer_backbone="MobileNetV2",
        transfer_image_size=args.size,
        transfer_alpha=args.alpha,
        transfer_cut=args.cut,
        transfer_epochs_frozen=args.epochs_frozen,
        transfer_epochs_finetune=args.epochs_finetune,
        transfer_learning_rate=args.lr,
        transfer_finetune_learning_rate=args.finetune_lr,
        transfer_cached_views=args.views,
        transfer_lr_schedule=args.schedule,
        transfer_dropout=args.dropout,
        batch_size=args.batch_size,
        patience=args.patience,
    )
    split = artifacts.get_split(settings)
    set_seed(settings.seed)
    model = recipes.build_model_b_for(settings, split, weights=weights)
    budget = args.minutes * 60
    train_budget = budget - (time.monotonic() - start) - RESERVE_S
    print(f"Training Model B (MobileNetV2 alpha {args.alpha}, {args.size} px) for at most {train_budget:.0f} s")
    train_start = time.monotonic()
    frozen, finetune, info = recipes.train_cached_for(settings, model, split, time_budget_s=train_budget)
    train_wall = time.monotonic() - train_start
    cpu_after_training = cpu_seconds() - cpu_start

    test = make_dataset(split.test, args.size, args.batch_size)
    table = ev.predict_table(model, test, split.test)
    flipped = ev.predict_table(model, test, split.test, flip_average=True)
    metrics, metrics_flip = ev.evaluate_table(table), ev.evaluate_table(flipped)

    RESULTS.mkdir(parents=True, exist_ok=True)
    write_predictions(args.name, table, flipped)
    history = pd.concat(
        [history_table(h).assign(phase=phase) for phase, h in (("frozen", frozen), ("finetune", finetune)) if h],
        ignore_index=True,
    )
    history.to_csv(RESULTS / f"{args.name}_history.csv", index_label="epoch")

    compile_model(model, learning_rate=args.finetune_lr)
    installed = None
    if not args.no_artifact:
        installed = artifacts.save_model(settings, "b", model, join_histories(frozen, finetune))
        print(f"Installed the model for the lessons at {installed.resolve()}")

    model_a = None
    a_path = RESULTS / "model_a.json"
    if a_path.is_file():
        a = json.loads(a_path.read_text())
        model_a = {
            "age_mae": a["test"]["age_mae"],
            "gender_accuracy": a["test"]["gender_accuracy"],
            "wall_s": a.get("wall_s"),
            "when": a.get("when"),
            "same_split": a.get("data", {}).get("split") == split.sizes(),
        }
    mae, accuracy = metrics["age"]["mae"], metrics["gender"]["accuracy"]
    result = {
        "data": {"folder": str(args.data), "split": split.sizes(), "seed": settings.seed},
        "settings": {
            "backbone": "MobileNetV2",
            "alpha": args.alpha,
            "image_size": args.size,
            "weights": Path(weights).name,
            "cut": args.cut,
            "finetuned_backbone_layers": info["finetuned_backbone_layers"],
            "batch_size": args.batch_size,
            "learning_rate_frozen": args.lr,
            "learning_rate_finetune": args.finetune_lr,
            "epochs_frozen_max": args.epochs_frozen,
            "epochs_finetune_max": args.epochs_finetune,
            "patience": args.patience,
            "train_views": info["train_views"],
            "augmentation": {
                1: "none",
                2: "left-right mirror copies of the training images",
            }.get(
                args.views,
                "mirror copies, plus copies zoomed in up to 12 %, shifted up to 5 % and rotated up to ~11 degrees "
                "(agecourse.transfer_training.view_augmentation, seeded), plain and mirrored alternately",
            ),
            "finetune_schedule": args.schedule,
            "head_dropout": args.dropout,
            "age_loss": "huber (delta 5), loss weights age 1 : gender 20, AdamW",
            "minutes_budget": args.minutes,
        },
        **scores_on_test(metrics, metrics_flip),
        "training": {
            "epochs_frozen": len(frozen.get("loss", [])),
            "epochs_finetune": len(finetune.get("loss", [])),
            "val_age_mae_best": min(frozen.get("val_age_mae", []) + finetune.get("val_age_mae", []), default=None),
            "cache_s": info["cache_seconds"],
            "train_wall_s": round(train_wall, 1),
            "train_budget_s": round(train_budget, 1),
            "stopped_by_budget": info["stopped_by_budget"],
            "cpu_s_to_trained": round(cpu_after_training, 1),
        },
        "targets": TARGETS,
        "targets_met": {
            "age_mae": mae <= TARGETS["age_mae_max"],
            "gender_accuracy": accuracy >= TARGETS["gender_accuracy_min"],
            "better_than_model_a": None
            if model_a is None
            else bool(mae < model_a["age_mae"] and accuracy > model_a["gender_accuracy"]),
        },
        "model_a": model_a,
        "reference": "naive full fine-tune of MobileNetV2-0.35 at 96 px for 3 minutes: 8.2 MAE / 79 % (issue 4)",
        "artifact": str(installed.resolve()) if installed else None,
        "wall_s": round(time.monotonic() - start, 1),
        "cpu_s": round(cpu_seconds() - cpu_start, 1),
        "load_average_start": LOAD_AT_START,
        "load_average_end": load_average(),
        "parameters": int(model.count_params()),
    }
    write_result(args.name, result)
    print(
        f"Test ({metrics['count']} images): age MAE {mae:.2f} (flip-averaged {metrics_flip['age']['mae']:.2f}), "
        f"gender accuracy {accuracy:.1%} (flip-averaged {metrics_flip['gender']['accuracy']:.1%}); epochs "
        f"{result['training']['epochs_frozen']} + {result['training']['epochs_finetune']}, "
        f"{result['wall_s']:.0f} s wall, "
        f"{result['cpu_s']:.0f} s CPU, load {LOAD_AT_START} -> {result['load_average_end']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
