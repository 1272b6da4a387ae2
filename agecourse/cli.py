"""The ``agecourse`` command line (also ``python -m agecourse``).

Commands:
    agecourse data scan PATH [--json]       count accepted and rejected files, label distributions
    agecourse data fetch                     download UTKFace into the cache (checksummed)
    agecourse data synth DEST                write synthetic faces (not real people) to a folder
    agecourse run [--data PATH]              the main job: load, train Model A, evaluate, write files
    agecourse train [--data PATH]            same as run (kept for symmetry with evaluate)
    agecourse evaluate MODEL --data PATH     metrics of a saved model on a folder of UTKFace images

User mistakes (a missing folder, a bad archive, a failed download) print one line and exit with
status 2 instead of a traceback; set ``AGECOURSE_DEBUG=1`` to see the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# TensorFlow prints pages of start-up notes; the CLI keeps only warnings and errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class UserError(Exception):
    """A mistake the user can fix; printed as one line."""


def _settings(args: argparse.Namespace):
    from agecourse.config import get_settings

    overrides = {}
    if getattr(args, "epochs", None):
        overrides["epochs"] = args.epochs
    if getattr(args, "image_size", None):
        overrides["image_size"] = args.image_size
    if getattr(args, "max_images", None):
        overrides["max_images"] = args.max_images
    data = getattr(args, "data", None)
    if data is not None and not Path(data).expanduser().exists():
        raise UserError(f"{data}: no such file or folder (pass a folder, .zip or .tar.gz of UTKFace images)")
    return get_settings(getattr(args, "profile", None), data_dir=data, **overrides)


def cmd_scan(args: argparse.Namespace) -> int:
    from agecourse.data import describe, load_utkface

    result = load_utkface(args.path, check=not args.no_check_images)
    report = {
        "source": result.source,
        "files": len(result.images) + len(result.rejects),
        "accepted": len(result.images),
        "rejected": len(result.rejects),
        "converted": result.converted,
        "rejects": result.rejects.to_dict(orient="records"),
        "distribution": describe(result.images),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"{report['files']} files in {result.source}: {report['accepted']} accepted, "
        f"{report['rejected']} rejected, {report['converted']} converted"
    )
    for row in report["rejects"]:
        print(f"  rejected {row['file']}: {row['reason']} ({row['stage']})")
    dist = report["distribution"]
    if dist["count"]:
        age = dist["age"]
        print(f"age: mean {age['mean']}, median {age['median']}, range {age['min']}-{age['max']}")
        print("age bands: " + ", ".join(f"{k}: {v}" for k, v in age["bands"].items()))
        print("gender: " + ", ".join(f"{k}: {v}" for k, v in dist["gender"].items()))
        print("race: " + ", ".join(f"{k}: {v}" for k, v in dist["race"].items()))
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from agecourse.download import fetch

    folder = fetch(cache_dir=args.cache_dir, progress=not args.quiet)
    print(f"UTKFace is in {folder}; use it with --data {folder} or AGECOURSE_DATA={folder}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from agecourse.synthetic import make_synthetic_faces

    folder = make_synthetic_faces(args.dest, n=args.n, size=args.size, seed=args.seed)
    print(f"Wrote {args.n} synthetic faces (not real people) of {args.size} px to {folder}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from agecourse.pipeline import run_main

    settings = _settings(args)
    print(f"Profile '{settings.profile}', data: {settings.data_label}")
    run_main(settings, out_dir=args.out, verbose=2 if not args.quiet else 0)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import keras

    from agecourse import evaluate as ev
    from agecourse.data import load_utkface, make_dataset

    model_path = Path(args.model)
    if not model_path.exists():
        raise UserError(f"{model_path}: no such model file")
    try:
        model = keras.models.load_model(model_path)
    except (ValueError, OSError) as err:
        raise UserError(f"{model_path}: cannot load as a Keras model ({err})") from err
    loaded = load_utkface(args.data)
    if len(loaded.images) == 0:
        raise UserError(f"{args.data}: no usable UTKFace-named images ({len(loaded.rejects)} rejected)")
    size = int(model.inputs[0].shape[1])
    table = ev.predict_table(model, make_dataset(loaded.images, size, batch_size=64), loaded.images)
    metrics = ev.evaluate_table(table)
    metrics["data"] = {"source": loaded.source, "accepted": len(loaded.images), "rejected": len(loaded.rejects)}
    metrics["model"] = str(model_path)
    if args.json:
        print(json.dumps(metrics, indent=2, default=float))
    else:
        print(loaded.summary())
        print(
            f"age MAE {metrics['age']['mae']:.2f}, RMSE {metrics['age']['rmse']:.2f}, "
            f"gender accuracy {metrics['gender']['accuracy']:.1%} on {metrics['count']} images"
        )
        for band, row in metrics["per_age_band"].items():
            print(f"  {band:>6}: n={row['count']:<5} MAE {row['age_mae']:.2f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and documentation)."""
    parser = argparse.ArgumentParser(prog="agecourse", description="Age and gender estimation course tools.")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="find, download and inspect data").add_subparsers(
        dest="data_command", required=True
    )
    scan = data.add_parser("scan", help="count accepted and rejected images, with reasons")
    scan.add_argument("path", help="folder, .zip or .tar.gz of UTKFace-named images")
    scan.add_argument("--json", action="store_true", help="print a JSON report")
    scan.add_argument("--no-check-images", action="store_true", help="only parse names, do not decode images")
    scan.set_defaults(func=cmd_scan)
    fetch = data.add_parser("fetch", help="download UTKFace into the cache, verified by checksum")
    fetch.add_argument("--cache-dir", default=None, help="default: AGECOURSE_DATA_DIR or the user cache")
    fetch.add_argument("--quiet", action="store_true")
    fetch.set_defaults(func=cmd_fetch)
    synth = data.add_parser("synth", help="write synthetic faces (not real people) to a folder")
    synth.add_argument("dest")
    synth.add_argument("--n", type=int, default=600)
    synth.add_argument("--size", type=int, default=128)
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(func=cmd_synth)

    for name, help_text in (
        ("run", "load, train Model A, evaluate, write metrics and plots"),
        ("train", "same as run: train Model A and write it with its metrics"),
    ):
        run = sub.add_parser(name, help=help_text)
        run.add_argument(
            "--data", default=None, help="UTKFace folder or archive (default: AGECOURSE_DATA, else synthetic faces)"
        )
        run.add_argument(
            "--profile", choices=("ci", "cpu", "gpu"), default=None, help="default: AGECOURSE_PROFILE, else detected"
        )
        run.add_argument("--out", default="outputs/run", help="output folder (default: outputs/run)")
        run.add_argument("--epochs", type=int, default=None)
        run.add_argument("--image-size", type=int, default=None)
        run.add_argument("--max-images", type=int, default=None)
        run.add_argument("--quiet", action="store_true")
        run.set_defaults(func=cmd_run)

    evaluate = sub.add_parser("evaluate", help="metrics of a saved model on a folder of UTKFace images")
    evaluate.add_argument("model", help="a .keras file saved by the course")
    evaluate.add_argument("--data", required=True, help="folder, .zip or .tar.gz of UTKFace-named images")
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse ``argv`` and run the command; user errors exit with status 2."""
    from agecourse.archive import UnsafeArchiveError
    from agecourse.download import DownloadError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UserError, FileNotFoundError, NotADirectoryError, UnsafeArchiveError, DownloadError, ValueError) as err:
        if os.environ.get("AGECOURSE_DEBUG"):
            raise
        print(f"agecourse: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("agecourse: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
