"""Named tuning trials for the ``cpu`` recipes, scored on the **validation split only** (issue 16).

Every row of the tuning log in ``bench/README.md`` comes from one trial here, run with a committed
command (``python bench/tune.py TRIAL [TRIAL ...]``; ``--list`` shows them). No trial reads the test
split: the test split is scored once per final recipe, by ``bench_model_a.py`` / ``bench_model_b.py``.

Three kinds of trial:

* ``history`` -- reads the per-epoch validation history that ``scripts/write_package_data.py models``
  recorded for a shipped model (``results/course_model_<x>.json``) and compares what the run would
  have ended on with the lowest-validation-loss epoch restored (what lesson 08's early stopping does)
  and with the last epoch kept. With the same trajectory up to the end this is exact, not a rerun: the
  two choices differ only in which epoch's weights are kept (the trial checks that phase 1 of Model B
  ended on its best epoch, so phase 2 started from the same weights either way).
* ``flip`` -- scores the shipped models (the current recipe, trained on this same seeded split) on the
  validation split with and without flip test-time augmentation (each face and its mirror image,
  predictions averaged): no training needed.
* ``train`` -- trains Model A or Model B with the ``cpu`` profile's settings plus the trial's
  overrides (seed 42, the course's seeded split) and scores the validation split, plain and
  flip-averaged.

Results go to ``bench/results/tuning.json``, one entry per trial (a rerun replaces its entry), with
the settings, seed, machine, load and command. ``bench_report.py`` turns it into the tuning log.
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
    MODEL_A_FIELDS,
    MODEL_B_FIELDS,
    RESULTS,
    SHARED_DATA,
    SHARED_WEIGHTS,
    load_average,
    machine,
    plain_and_flipped,
    settings_record,
    versions,
)

TUNING = RESULTS / "tuning.json"

# name -> what the trial is, why it is worth measuring, and how it runs.
TRIALS: dict[str, dict] = {
    "restore-vs-last": {
        "kind": "history",
        "question": "end each training phase on its lowest-validation-loss epoch (restored) or on its last?",
    },
    "flip-tta": {
        "kind": "flip",
        "question": "average each prediction over the face and its mirror image (flip test-time augmentation)?",
    },
    "a-seed-43-patience-6": {
        "kind": "train",
        "model": "a",
        "set": {"seed": 43, "patience": 6},
        "question": "Model A's earlier recipe (early stopping with patience 6) with another training seed (same "
        "split): early stopping watches a validation loss that jumps while the cosine rate is still high",
    },
    "a-seed-43-no-early-stop": {
        "kind": "train",
        "model": "a",
        "set": {"seed": 43, "patience": 24},
        "question": "the same seed with early stopping out of the way (patience = the 24 epochs): the cosine "
        "decay runs to its end and the lowest-validation-loss epoch is restored",
    },
    "a-96px": {
        "kind": "train",
        "model": "a",
        "set": {"image_size": 96},
        "question": "Model A at 96 px instead of 64 (issue 26: input resolution is among the levers that matter most): "
        "about 2.25 times the pixels per image; better on validation, and within 20 minutes of training?",
    },
    "b-keep-last-full-schedule": {
        "kind": "train",
        "model": "b",
        "set": {"transfer_image_size": 160, "transfer_restore_best": False, "transfer_patience": 12},
        "question": "Model B keeping the last epoch with early stopping out of the way (patience = the 12 "
        "fine-tuning epochs), so the cosine decay always runs to its end",
    },
    "b-224px": {
        "kind": "train",
        "model": "b",
        "set": {"transfer_image_size": 224},
        "question": "Model B at 224 px, the size the ImageNet weights were trained at: about twice the "
        "compute per view of 160 px",
    },
    "b-224px-weight-decay-0.05": {
        "kind": "train",
        "model": "b",
        "set": {"transfer_image_size": 224, "transfer_weight_decay": 0.05},
        "question": "Model B at 224 px with stronger AdamW weight decay (0.05 instead of 1e-4) against the "
        "overfitting of its cached views (validation gender loss rising while training gender loss falls)",
    },
    "b-224px-gender-weight-40": {
        "kind": "train",
        "model": "b",
        "set": {"transfer_image_size": 224, "transfer_gender_loss_weight": 40.0},
        "question": "Model B at 224 px with twice the gender loss weight (40 instead of 20 next to the Huber "
        "age loss): gender is where it falls short of its target",
    },
    "b-224px-oversample-400": {
        "kind": "train",
        "model": "b",
        "set": {"transfer_image_size": 224, "transfer_oversample": 400},
        "question": "Model B with the rarer age band x gender cells of its training set oversampled to at least 400 "
        "rows each (issue 26's top published lever: oversampling weak groups with augmented copies); about 38 % "
        "more training rows, whose copies get fresh augmented views",
    },
    "b-224px-oversample-400-finetune-2.5e-4": {
        "kind": "train",
        "model": "b",
        "set": {"transfer_image_size": 224, "transfer_oversample": 400, "transfer_finetune_learning_rate": 2.5e-4},
        "question": "The oversampled Model B again at half the fine-tuning rate (2.5e-4): at 5e-4 its age head's ReLU "
        "units all died in the first fine-tuning epoch (a constant age, validation 21.15 years); does a gentler "
        "phase 2 keep the oversampling's gain?",
    },
    "b-224px-cut-block-9": {
        "kind": "train",
        "model": "b",
        "set": {"transfer_image_size": 224, "transfer_cut": "block_9_add"},
        "question": "Model B at 224 px fine-tuning deeper (issue 26: unfreeze deeper within the time budget): cached "
        "below block_9_add instead of block_12_add, so phase 2 also trains blocks 10-12 of MobileNetV2",
    },
    "b-224px-8-views-6-epochs": {
        "kind": "train",
        "model": "b",
        "set": {"transfer_image_size": 224, "transfer_cached_views": 8, "transfer_epochs_finetune": 6},
        "question": "Model B at 224 px overfits its four cached views (its training scores run far ahead of "
        "validation): twice the views for half the fine-tuning epochs, the same number of steps on more varied faces",
    },
}


def validation_scores(model, split, size: int, batch_size: int) -> dict:
    """Validation MAE and gender accuracy of ``model``, plain and flip-averaged."""
    from agecourse import evaluate as ev

    out = {}
    for label, table in zip(("plain", "flip_average"), plain_and_flipped(model, split.val, size, batch_size)):
        metrics = ev.evaluate_table(table)
        out[label] = {
            "age_mae": metrics["age"]["mae"],
            "gender_accuracy": metrics["gender"]["accuracy"],
            "count": metrics["count"],
        }
    return out


def epoch_scores(history: dict, index: int) -> dict:
    """Validation MAE, gender accuracy and loss of epoch ``index`` (0-based) of a history."""
    return {
        "epoch": index + 1,
        "val_loss": history["val_loss"][index],
        "age_mae": history["val_age_mae"][index],
        "gender_accuracy": history["val_gender_accuracy"][index],
    }


def restore_vs_last(results: Path = RESULTS) -> dict:
    """The ``history`` trial: restored (lowest validation loss) against last epoch, per shipped model."""
    out = {}
    for key, phase in (("a", "train"), ("b", "finetune")):
        record_file = results / f"course_model_{key}.json"
        if not record_file.is_file():
            out[key] = {"skipped": f"{record_file.name} not found (run scripts/write_package_data.py models)"}
            continue
        record = json.loads(record_file.read_text())
        history = record["history"][phase]
        losses = history["val_loss"]
        best = min(range(len(losses)), key=losses.__getitem__)
        row = {
            "source": f"{record_file.name} ({record['when']}, command: {record['command']})",
            "phase": phase,
            "epochs_run": len(losses),
            "restored": epoch_scores(history, best),
            "last": epoch_scores(history, len(losses) - 1),
        }
        if key == "b":
            first = record["history"]["frozen"]["val_loss"]
            row["phase_1_ended_on_its_best_epoch"] = min(first) == first[-1]
        out[key] = row
    return out


def flip_tta(split) -> dict:
    """The ``flip`` trial: both shipped models on the validation split, plain and flip-averaged."""
    from agecourse import course_models
    from agecourse.config import get_settings

    batch_size = get_settings("cpu").batch_size
    out = {}
    for key, name in (("a", "model-a"), ("b", "model-b")):
        model = course_models.load(name)
        size = int(model.input_shape[1])
        out[key] = {"model": name, "image_size": size, **validation_scores(model, split, size, batch_size)}
    return out


def train_trial(trial: dict, split, data: Path, weights_dir: Path) -> dict:
    """The ``train`` trial: the cpu recipe plus the trial's overrides, scored on validation."""
    from agecourse import recipes
    from agecourse.backbones import find_weights
    from agecourse.config import get_settings
    from agecourse.training import set_seed

    settings = get_settings("cpu", data_dir=data, **trial["set"])
    start = time.monotonic()
    if trial["model"] == "a":
        model, history = recipes.train_model_a(settings, split, verbose=2)
        size = settings.image_size
    else:
        weights = find_weights(
            settings.transfer_backbone, settings.transfer_alpha, settings.transfer_image_size, weights_dir=weights_dir
        )
        if weights is None:
            return {"skipped": f"no MobileNetV2 alpha {settings.transfer_alpha} ImageNet weights in {weights_dir}"}
        set_seed(settings.seed)
        model = recipes.build_model_b_for(settings, split, weights=weights)
        frozen, finetune, _ = recipes.train_cached_for(settings, model, split, verbose=2)
        history = finetune or frozen
        size = settings.transfer_image_size
    fields = MODEL_A_FIELDS if trial["model"] == "a" else MODEL_B_FIELDS
    return {
        "model": trial["model"],
        "set": trial["set"],
        # The whole recipe as it ran: "the cpu recipe" changes when a trial wins, so the row keeps it.
        "recipe": settings_record(settings, fields, trial["set"]),
        "seed": settings.seed,
        "epochs_run": len(history.get("loss", [])),
        "train_wall_s": round(time.monotonic() - start, 1),
        **validation_scores(model, split, size, settings.batch_size),
    }


def save_trial(name: str, row: dict, path: Path = TUNING) -> None:
    """Add (or replace) one trial's entry in ``tuning.json``, dropping entries of trials that are gone."""
    log = json.loads(path.read_text()) if path.is_file() else {"benchmark": "tuning", "trials": {}}
    log["trials"][name] = row
    # A trial no longer in TRIALS has no committed command behind it: its row leaves the log.
    log["trials"] = {key: value for key, value in log["trials"].items() if key in TRIALS}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(log, indent=2, default=str))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trials", nargs="*", help="trial names (see --list)")
    parser.add_argument("--list", action="store_true", help="list the trials and exit")
    parser.add_argument("--names", action="store_true", help="print the trial names on one line and exit")
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="folder of UTKFace images")
    from agecourse.config import weights_dirs  # AGECOURSE_WEIGHTS, read in config

    parser.add_argument("--weights-dir", type=Path, default=(weights_dirs() or [SHARED_WEIGHTS])[0])
    args = parser.parse_args(argv)
    if args.names:
        print(" ".join(TRIALS))
        return 0
    unknown = [name for name in args.trials if name not in TRIALS]
    if args.list or not args.trials or unknown:
        if unknown:
            print(f"unknown trial(s): {', '.join(unknown)}")
        for name, trial in TRIALS.items():
            print(f"{name:32} [{trial['kind']}] {trial['question']}")
        return 2 if unknown else 0
    if not args.data.is_dir():
        print(f"SKIPPED: the real UTKFace sample is not at {args.data}; no trial can run.")
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from agecourse.config import get_settings
    from agecourse.data import load_utkface, split_dataset

    seed = get_settings("cpu").seed
    split = split_dataset(load_utkface(args.data, seed=seed).images, seed=seed)  # the course's split
    for name in args.trials:
        trial, load_start, start = TRIALS[name], load_average(), time.monotonic()
        print(f"== {name}: {trial['question']}", flush=True)
        if trial["kind"] == "history":
            result = restore_vs_last()
        elif trial["kind"] == "flip":
            result = flip_tta(split)
        else:
            result = train_trial(trial, split, args.data, args.weights_dir)
        row = {
            "kind": trial["kind"],
            "question": trial["question"],
            "split": split.sizes(),
            "split_seed": seed,
            "scored_on": "validation split only",
            "result": result,
            "wall_s": round(time.monotonic() - start, 1),
            "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "machine": machine(),
            "versions": versions(),
            "load_average": {"start": load_start, "end": load_average(), "cores": os.cpu_count()},
            "command": f"python bench/tune.py {name}",
        }
        save_trial(name, row)
        print(json.dumps(result, indent=1, default=str), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
