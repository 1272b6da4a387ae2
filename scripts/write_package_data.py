"""The one writer of the package's data: the shipped models, their registry and cards, and the
benchmark results that lessons read. Benchmarks (``bench/``) write only ``bench/results/``.

``python scripts/write_package_data.py results`` copies the results files lessons read
(:data:`agecourse.results.FILES`) from ``bench/results/`` into ``agecourse/results/``.

``python scripts/write_package_data.py models`` trains the course's shipped models: Model A and
Model B on real UTKFace faces. The package ships them (``agecourse/course_models/``) so that every
lesson, the CLI and the demo page can use a model that has seen real faces without training one
first. This is how they are made, seeded and repeatable:

1. load the real UTKFace sample (``--data``, default ``../shared/data/utkface-part1``) and build the
   course's seeded, stratified train / validation / test split (``agecourse.data.split_dataset``,
   seed ``--seed``); the split is written with file names only to
   ``bench/results/course_models_split.csv``;
2. train with the ``cpu`` profile's current recipes -- Model A as lesson 08 trains it
   (``recipes.train_model_a``), Model B (MobileNetV2, ImageNet weights from ``--weights-dir``) on
   cached views as lesson 10 does in that profile (``recipes.build_model_b_for`` /
   ``train_cached_for``). No time budget. Model selection uses the validation split only: Model A
   restores its best validation-loss epoch; Model B keeps each phase's last epoch, as the ``cpu``
   recipe does (chosen on validation, ``bench/tune.py restore-vs-last``);
3. save the model's **weights only** into ``agecourse/course_models/model_<x>.weights.npz``
   (:func:`agecourse.course_models.write_weights`; no optimizer, no Keras config, so it loads on every
   Keras the package accepts), rebuild the model from that file and the recorded architecture, score
   the test split with it once (``bench/results/course_model_<x>_predictions.csv``, file names only),
   and write the training record ``bench/results/course_model_<x>.json`` (with the architecture and a
   reference prediction that tests compare every load against);
4. write the registry ``agecourse/course_models/registry.json`` and one model card per model
   (``agecourse/course_models/model_<x>.md``) from those records (``--cards-only`` redoes just this
   step from the saved records, without training).

``python scripts/write_package_data.py template [--n 1000] [--seed 0]`` writes the face-alignment
template ``agecourse/face_template.json`` from a seeded sample of training chips
(``scripts/face_template.py``).

Run: ``nice -n 10 python scripts/write_package_data.py models --model b`` (then ``--model a``), with
``AGECOURSE_WEIGHTS`` or ``--weights-dir`` pointing at the MobileNetV2 ImageNet weights.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    LOAD_AT_START,
    MODEL_A_FIELDS,
    MODEL_B_FIELDS,
    RESULTS,
    ROOT,
    SHARED_DATA,
    SHARED_WEIGHTS,
    cpu_seconds,
    load_average,
    machine,
    settings_record,
    versions,
)

PACKAGE_MODELS = ROOT / "agecourse" / "course_models"
PACKAGE_RESULTS = ROOT / "agecourse" / "results"
SPLIT_CSV = RESULTS / "course_models_split.csv"
MODELS = {
    "a": {"name": "model-a", "title": "Model A (the course's own CNN, lessons 06-08)"},
    "b": {"name": "model-b", "title": "Model B (MobileNetV2 transfer learning, lesson 10)"},
}


def record_path(key: str, results: Path = RESULTS) -> Path:
    """``bench/results/course_model_<key>.json``: the training record of one shipped model."""
    return results / f"course_model_{key}.json"


def predictions_path(key: str, results: Path = RESULTS) -> Path:
    """``bench/results/course_model_<key>_predictions.csv``: its test-split predictions."""
    return results / f"course_model_{key}_predictions.csv"


def val_predictions_path(key: str, results: Path = RESULTS) -> Path:
    """``bench/results/course_model_<key>_val_predictions.csv``: its validation-split predictions, the
    calibration of its age intervals and of its gender probability."""
    return results / f"course_model_{key}_val_predictions.csv"


def write_val_predictions(data: Path, results: Path = RESULTS) -> int:
    """Predict the validation rows of the shipped models' split with each shipped model as a user
    loads it, plain (one pass, as ``agecourse predict`` gives an age), and write
    ``course_model_<key>_val_predictions.csv``: what their age intervals and gender temperature are
    calibrated on."""
    from agecourse import course_models
    from agecourse import evaluate as ev
    from agecourse.data import make_dataset

    val_rows = ev.folder_images(data, results / SPLIT_CSV.name, "val").images  # a missing file: a clear error
    for key, item in MODELS.items():
        model = course_models.load(item["name"])
        settings = course_models.architecture_settings(item["name"])
        size = int(model.input_shape[1])
        table = ev.predict_table(model, make_dataset(val_rows, size, settings.batch_size), val_rows)
        predictions = table[["path", "age", "gender", "race"]].copy()
        predictions["path"] = predictions["path"].map(lambda p: Path(p).name)
        predictions["pred_age"] = table["age_pred"]
        predictions["pred_gender_prob"] = table["gender_prob"]
        predictions.to_csv(val_predictions_path(key, results), index=False)
        print(f"wrote {val_predictions_path(key, results)} ({len(predictions)} validation faces)")
    return 0


def build_split(data: Path, seed: int):
    """The seeded split of the real sample (all accepted, decodable images), and the load result."""
    from agecourse.data import load_utkface, split_dataset

    loaded = load_utkface(data, seed=seed)
    split = split_dataset(loaded.images, seed=seed)
    return split, loaded


def save_split_names(split, path: Path) -> Path:
    """Write the split with file names only (never local paths or images)."""
    import pandas as pd

    table = pd.concat(
        [split.train.assign(part="train"), split.val.assign(part="val"), split.test.assign(part="test")],
        ignore_index=True,
    )[["path", "age", "gender", "race", "part"]]
    table["path"] = table["path"].map(lambda p: Path(p).name)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return path


def write_test_predictions(key: str, model, test_rows, size: int, settings, results: Path = RESULTS):
    """Score the test split once with the recipe's scoring (:func:`agecourse.evaluate.score`:
    flip-averaged when ``settings.flip_tta``) and write ``course_model_<key>_predictions.csv``: file
    names only, the recipe's predictions as ``pred_age`` / ``pred_gender_prob`` (what the registry and
    the card report, and what ``agecourse evaluate`` prints) and the plain ones beside them. Returns
    the recipe's prediction table."""
    from agecourse import evaluate as ev
    from agecourse.data import make_dataset

    plain, flipped = ev.predict_both(model, make_dataset(test_rows, size, settings.batch_size), test_rows)
    table = flipped if settings.flip_tta else plain
    predictions = table[["path", "age", "gender", "race"]].copy()
    predictions["path"] = predictions["path"].map(lambda p: Path(p).name)
    predictions["pred_age"] = table["age_pred"]
    predictions["pred_gender_prob"] = table["gender_prob"]
    predictions["pred_age_plain"] = plain["age_pred"]
    predictions["pred_gender_prob_plain"] = plain["gender_prob"]
    results.mkdir(parents=True, exist_ok=True)
    predictions.to_csv(predictions_path(key, results), index=False)
    return table


def rescore_shipped(data: Path, results: Path = RESULTS) -> int:
    """Score the shipped models (as a user loads them) on the test rows of their split once more with
    the recipe's scoring, rewriting their prediction files and the scoring line of their records:
    for when the scoring recipe changed and the weights did not."""
    from agecourse import course_models
    from agecourse import evaluate as ev

    test_rows = ev.folder_images(data, results / SPLIT_CSV.name, "test").images  # a missing file: a clear error
    for key, item in MODELS.items():
        record_file = record_path(key, results)
        record = json.loads(record_file.read_text())
        settings = course_models.architecture_settings(item["name"])
        table = write_test_predictions(key, course_models.load(item["name"]), test_rows, record["input_size"], settings)
        metrics = ev.evaluate_table(table)
        record["test_metrics_at_training"] = {
            "age_mae": metrics["age"]["mae"],
            "gender_accuracy": metrics["gender"]["accuracy"],
            "count": metrics["count"],
            "predictions": ev.predictions_name(settings.flip_tta) + " (the recipe's scoring, agecourse.evaluate.score)",
            "rescored": time.strftime("%Y-%m-%d %H:%M:%S %Z") + ": the scoring recipe changed, the weights did not",
        }
        record_file.write_text(json.dumps(record, indent=2, default=str))
        print(
            f"{item['name']}: {ev.predictions_name(settings.flip_tta)} test MAE {metrics['age']['mae']:.2f}, "
            f"gender accuracy {metrics['gender']['accuracy']:.1%} on {metrics['count']} faces"
        )
    return 0


def architecture_for(key: str, settings) -> dict:
    """The registry's ``architecture``: what :func:`agecourse.course_models.build` rebuilds the model
    from (the recipe's profile and the settings fields the builder reads)."""
    if key == "a":
        fields = {
            "image_size": settings.image_size,
            "model_filters": list(settings.model_filters),
            "dense_units": settings.dense_units,
            "head_dropout": settings.head_dropout,
            "l2": settings.l2,
            "augment": settings.augment,
        }
    else:
        fields = {
            "transfer_backbone": settings.transfer_backbone,
            "transfer_image_size": settings.transfer_image_size,
            "transfer_alpha": settings.transfer_alpha,
            "transfer_dropout": settings.transfer_dropout,
            "transfer_cached_views": settings.transfer_cached_views,
            "augment": settings.augment,
        }
    return {"kind": MODELS[key]["name"], "profile": settings.profile, "settings": fields}


def rebuild_from_file(architecture: dict, file: Path):
    """The model rebuilt from ``architecture`` with the weights in ``file``: what a user's load does."""
    from agecourse import course_models
    from agecourse.config import recipe_settings
    from agecourse.recipes import build_model_a_for, build_model_b_for

    fields = dict(architecture["settings"])
    if "model_filters" in fields:
        fields["model_filters"] = tuple(fields["model_filters"])
    settings = recipe_settings(architecture["profile"], **fields)
    if architecture["kind"] == "model-a":
        model = build_model_a_for(settings)
    else:
        model = build_model_b_for(settings, weights=None, verbose=False)
    arrays, _ = course_models.read_weights(file)
    model.set_weights(arrays)
    return model


def recipe_for(key: str, settings, weights_name: str | None = None) -> dict:
    """The recipe fields a shipped model's record and card state, from the settings it was trained with."""
    from agecourse import recipes

    if key == "a":
        return {
            "image_size": settings.image_size,
            "filters": list(settings.model_filters),
            "dense_units": settings.dense_units,
            "head_dropout": settings.head_dropout,
            "l2": settings.l2,
            "augment": settings.augment,
            "age_loss": settings.age_loss,
            "learning_rate": settings.learning_rate,
            "lr_schedule": settings.lr_schedule,
            "epochs_max": settings.epochs,
            "patience": settings.patience,
            "batch_size": settings.batch_size,
            "restore_best_epoch": True,
        }
    first, second = recipes.learning_rates_for(settings)
    return {
        "backbone": settings.transfer_backbone,
        "alpha": settings.transfer_alpha,
        "image_size": settings.transfer_image_size,
        "imagenet_weights": weights_name,
        "cut": settings.transfer_cut,
        "cached_views": settings.transfer_cached_views,
        "epochs_frozen_max": settings.transfer_epochs_frozen,
        "epochs_finetune_max": settings.transfer_epochs_finetune,
        "learning_rate_frozen": first,
        "learning_rate_finetune": second,
        "lr_schedule_finetune": settings.transfer_lr_schedule,
        "head_dropout": settings.transfer_dropout,
        "patience": settings.patience if settings.transfer_patience is None else settings.transfer_patience,
        "batch_size": settings.batch_size,
        "restore_best_epoch": settings.transfer_restore_best,
    }


def selection_text(restore_best: bool) -> str:
    """How the final weights were chosen, for the record and the model card."""
    how = (
        "each training phase restores its best validation-loss epoch (keras EarlyStopping, restore_best_weights)"
        if restore_best
        else "each training phase keeps its last epoch, as the cpu recipe does (chosen on the validation split: "
        "bench/tune.py restore-vs-last); early stopping on validation loss may end a phase early"
    )
    return f"validation split only: {how}; the test split is scored once, after saving"


def train(key: str, args: argparse.Namespace) -> int:
    """Train one model, save it into the package, score the test split once, write its record."""
    start, cpu_start = time.monotonic(), cpu_seconds()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from agecourse import recipes
    from agecourse.config import get_settings
    from agecourse.training import set_seed

    smoke = (
        dict(epochs=1, transfer_epochs_frozen=1, transfer_epochs_finetune=1, transfer_cached_views=2)
        if args.smoke
        else {}
    )
    settings = get_settings("cpu", data_dir=args.data, seed=args.seed, **smoke)
    split, loaded = build_split(args.data, args.seed)
    print(f"Data: {len(loaded.images)} accepted, {len(loaded.rejects)} rejected; split {split.sizes()}", flush=True)
    train_start = time.monotonic()
    weights_name = None
    if key == "a":
        model, history = recipes.train_model_a(settings, split, verbose=2)
        histories, info = {"train": history}, {}
    else:
        from agecourse.backbones import find_weights

        weights = find_weights(
            settings.transfer_backbone,
            settings.transfer_alpha,
            settings.transfer_image_size,
            weights_dir=args.weights_dir,
        )
        if weights is None:
            print(f"ERROR: no MobileNetV2 alpha {settings.transfer_alpha} ImageNet weights in {args.weights_dir}")
            return 2
        weights_name = Path(weights).name
        set_seed(settings.seed)
        model = recipes.build_model_b_for(settings, split, weights=weights)
        frozen, finetune, info = recipes.train_cached_for(settings, model, split, verbose=2)
        histories = {"frozen": frozen, "finetune": finetune}
    ship(
        key,
        model,
        histories,
        info,
        settings,
        split,
        loaded,
        weights_name=weights_name,
        train_wall=time.monotonic() - train_start,
        started=(start, cpu_start),
        out_dir=args.out,
        results=args.results,
    )
    return 0


def ship(
    key: str,
    model,
    histories: dict,
    info: dict,
    settings,
    split,
    loaded,
    weights_name: str | None,
    train_wall: float,
    started: tuple[float, float],
    out_dir: Path = PACKAGE_MODELS,
    results: Path = RESULTS,
) -> Path:
    """Save a trained model into the package (no optimizer state), score the test split once with the
    saved file, and write its training record, predictions and split (file names only).

    """
    from agecourse import course_models
    from agecourse import evaluate as ev

    start, cpu_start = started
    save_split_names(split, results / SPLIT_CSV.name)
    size = settings.image_size if key == "a" else settings.transfer_image_size
    out_dir.mkdir(parents=True, exist_ok=True)
    out = course_models.write_weights(model, out_dir / f"model_{key}.weights.npz")
    architecture = architecture_for(key, settings)

    # The test split, scored once, with the model rebuilt from the shipped file, as a user loads it.
    shipped = rebuild_from_file(architecture, out)
    table = write_test_predictions(key, shipped, split.test, size, settings, results)
    metrics = ev.evaluate_table(table)

    def best_epoch(history: dict) -> dict | None:
        losses = history.get("val_loss", [])
        if not losses:
            return None
        best = min(range(len(losses)), key=losses.__getitem__)
        return {
            "epoch": best + 1,
            "epochs_run": len(losses),
            "val_loss": losses[best],
            "val_age_mae": history.get("val_age_mae", [None] * len(losses))[best],
            "val_gender_accuracy": history.get("val_gender_accuracy", [None] * len(losses))[best],
        }

    restore_best = True if key == "a" else settings.transfer_restore_best
    record = {
        "model": MODELS[key]["name"],
        "file": out.name,
        "architecture": architecture,
        "reference": {
            "input": f"agecourse.course_models.reference_input({size})",
            **course_models.reference_prediction(shipped),
        },
        "input_size": size,
        "parameters": int(shipped.count_params()),
        "data": {
            "name": "UTKFace (aligned & cropped), shared part-1 sample",
            "folder_name": Path(settings.data_dir).name,
            "accepted": len(loaded.images),
            "rejected": len(loaded.rejects),
            "split": split.sizes(),
            "split_seed": settings.seed,
            "split_csv": SPLIT_CSV.name,
            "stratified_by": "age band x gender",
        },
        "recipe": recipe_for(key, settings, weights_name),
        **settings_record(settings, MODEL_A_FIELDS if key == "a" else MODEL_B_FIELDS),
        "selection": selection_text(restore_best),
        "best_epochs": {phase: best_epoch(h) for phase, h in histories.items()},
        "history": histories,
        "training_info": info,
        "test_metrics_at_training": {
            "age_mae": metrics["age"]["mae"],
            "gender_accuracy": metrics["gender"]["accuracy"],
            "count": metrics["count"],
            "predictions": ev.predictions_name(settings.flip_tta) + " (the recipe's scoring, agecourse.evaluate.score)",
        },
        "train_wall_s": round(train_wall, 1),
        "wall_s": round(time.monotonic() - start, 1),
        "cpu_s": round(cpu_seconds() - cpu_start, 1),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        "versions": versions(),
        "load_average": {"start": LOAD_AT_START, "end": load_average(), "cores": os.cpu_count()},
        "command": " ".join([Path(sys.executable).name] + sys.argv),
    }
    record_path(key, results).write_text(json.dumps(record, indent=2, default=str))
    print(
        f"{MODELS[key]['name']}: test MAE {metrics['age']['mae']:.2f}, gender accuracy "
        f"{metrics['gender']['accuracy']:.1%} on {metrics['count']} faces; saved {out} "
        f"({out.stat().st_size / 1e6:.1f} MB); {record['wall_s']:.0f} s wall, load {LOAD_AT_START} -> {load_average()}",
        flush=True,
    )
    return out


def copy_results(source: Path = RESULTS, folder: Path = PACKAGE_RESULTS) -> int:
    """Copy the benchmark results that lessons read (:data:`agecourse.results.FILES`) into the package."""
    import shutil

    from agecourse.results import FILES

    for name in FILES:
        if not (source / name).is_file():
            print(f"ERROR: {source / name} is missing (run its benchmark first)")
            return 2
    for name in FILES:
        shutil.copyfile(source / name, folder / name)
        print(f"wrote {folder / name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("results", help="copy the results files lessons read into agecourse/results/")
    models = commands.add_parser("models", help="train the shipped models, write registry and cards")
    models.add_argument("--model", choices=("a", "b", "all"), default="all", help="which model to train")
    models.add_argument("--data", type=Path, default=SHARED_DATA, help="folder of UTKFace images")
    models.add_argument(
        "--weights-dir",
        type=Path,
        default=Path(os.environ.get("AGECOURSE_WEIGHTS", SHARED_WEIGHTS)),
        help="folder of Keras ImageNet weights (Model B)",
    )
    models.add_argument("--seed", type=int, default=42, help="split and training seed")
    models.add_argument("--out", type=Path, default=PACKAGE_MODELS, help="where the weights files go")
    models.add_argument("--results", type=Path, default=RESULTS, help="where the records and predictions go")
    models.add_argument("--smoke", action="store_true", help="1-epoch trial of the script itself (not shipped)")
    models.add_argument("--cards-only", action="store_true", help="only rewrite the registry and model cards")
    models.add_argument(
        "--rescore", action="store_true", help="score the shipped models' test split again with the recipe, then cards"
    )
    models.add_argument(
        "--intervals",
        action="store_true",
        help="predict the shipped models' validation split (the age intervals' calibration), then cards",
    )
    template = commands.add_parser("template", help="write the face-alignment template from training chips")
    template.add_argument("--data", type=Path, default=SHARED_DATA, help="folder of UTKFace chips")
    template.add_argument("--n", type=int, default=1000, help="training chips in the seeded sample")
    template.add_argument("--seed", type=int, default=0, help="sampling seed")
    template.add_argument("--out", type=Path, default=None, help="default: agecourse/face_template.json")
    args = parser.parse_args(argv)
    if args.command == "results":
        return copy_results()
    if args.command == "template":
        from face_template import write_template

        return write_template(args.data, args.n, args.seed, args.out)
    if args.rescore or args.intervals:
        status = rescore_shipped(args.data, args.results) if args.rescore else 0
        status = status or (write_val_predictions(args.data, args.results) if args.intervals else 0)
        if status:
            return status
    elif not args.cards_only:
        if not args.data.is_dir():
            print(f"ERROR: the real UTKFace sample is not at {args.data}")
            return 2
        for key in ("b", "a") if args.model == "all" else (args.model,):
            status = train(key, args)
            if status:
                return status
    return write_registry_and_cards(args.out, args.results)


def write_registry_and_cards(folder: Path, results: Path = RESULTS) -> int:
    """Write ``registry.json`` and the model cards from the training records and predictions."""
    from course_cards import write_all

    records = {key: record_path(key, results) for key in MODELS if record_path(key, results).is_file()}
    calibrations = {key: val_predictions_path(key, results) for key in records}
    written = write_all(
        folder,
        records,
        {key: predictions_path(key, results) for key in records},
        results / SPLIT_CSV.name,
        {key: path for key, path in calibrations.items() if path.is_file()},
    )
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
