"""The ``agecourse`` command line (also ``python -m agecourse``).

Introduced in lesson 01 (``data scan``, ``data fetch``); ``run``/``train`` follow lesson 08,
``evaluate`` lesson 09, ``predict`` lesson 13, and ``grade`` is the instructors' batch grader.

Commands::

    agecourse data scan PATH [--json]            files, accepted, rejected (with reasons), label distributions
    agecourse data fetch [--url URL] [--sha256]  download UTKFace into the cache, checksummed, with fallbacks
    agecourse data synth DEST [--n N]            write synthetic faces (not real people) to a folder
    agecourse run [--data PATH] [--profile P]    the main job: load, train Model A, evaluate, write files
    agecourse train [--data PATH] [--out DIR]    the same job (trains and saves Model A with its metrics)
    agecourse evaluate MODEL --data PATH [--json] [--split CSV --rows test]
                                                 metrics of a model (file or shipped name) on UTKFace-named images
    agecourse predict [MODEL] IMAGE... [--json]  age and gender of the faces in photos (default: shipped model-b)
    agecourse grade SUBMISSIONS --out DIR        grade a folder of exercise notebooks

User mistakes (a missing folder, a bad archive, a failed download, a model that cannot be loaded)
print one line ``agecourse: error: ...`` on stderr and exit with status 2 instead of a traceback;
set ``AGECOURSE_DEBUG=1`` to see the traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

from agecourse import __version__
from agecourse import evaluate as ev
from agecourse.archive import UnsafeArchiveError
from agecourse.config import env_flag, get_settings
from agecourse.data import describe, load_utkface
from agecourse.download import SOURCES, DownloadError, SourceFailedWarning, fetch, fetch_if_needed, source_from_url
from agecourse.grading import add_grade_arguments, cmd_grade
from agecourse.synthetic import make_synthetic_faces

# The command modules (training, evaluation, prediction, grading) are imported inside the command
# functions, not here: they import TensorFlow, which takes seconds and must first be quietened by
# quiet_tensorflow(); ``agecourse --help`` and ``agecourse data ...`` need none of it.

EXIT_USER_ERROR = 2
EXIT_NOTHING_PREDICTED = 1


class UserError(Exception):
    """A mistake the user can fix; printed as one line."""


def debug_mode() -> bool:
    """True when ``AGECOURSE_DEBUG=1`` (:func:`agecourse.config.env_flag`): tracebacks and
    TensorFlow's own log lines are shown."""
    return env_flag("AGECOURSE_DEBUG")


def quiet_tensorflow() -> None:
    """Import TensorFlow without its start-up lines (:func:`agecourse.notebook.quiet_tensorflow`,
    which the lessons' setup uses too), unless :func:`debug_mode`."""
    from agecourse.notebook import quiet_tensorflow as quiet  # lazy: matplotlib, only when a command needs TensorFlow

    quiet(show=debug_mode())


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def json_ready(value):
    """``value`` with NaN and infinities replaced by ``None`` (strict JSON has no NaN), recursively."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # NumPy scalars
        return json_ready(value.item())
    return value


def _print_json(value) -> None:
    print(json.dumps(json_ready(value), indent=2, allow_nan=False))


def _settings(args: argparse.Namespace):
    overrides = {}
    for name in ("epochs", "image_size", "max_images"):
        if getattr(args, name, None) is not None:
            overrides[name] = getattr(args, name)
    data = getattr(args, "data", None)
    if data is not None and not Path(data).expanduser().exists():
        raise UserError(f"{data}: no such file or folder (pass a folder, .zip or .tar.gz of UTKFace images)")
    return fetch_if_needed(get_settings(getattr(args, "profile", None), data_dir=data, **overrides))


DEFAULT_MODEL = "model-b"


def _looks_like_model(text: str) -> bool:
    from agecourse.model_choice import names_a_model  # lazy: it imports TensorFlow

    return names_a_model(text) or text.lower().endswith(".keras")


# --- data ---------------------------------------------------------------------------------------


def cmd_scan(args: argparse.Namespace) -> int:
    """``data scan``: how many files, accepted and rejected (with reasons), label distributions."""
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
        _print_json(report)
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
    """``data fetch``: download UTKFace (the built-in mirrors, or ``--url``) into the cache."""
    if args.sha256 and len(args.url or []) != 1:
        raise UserError("--sha256 needs exactly one --url")
    sources = [source_from_url(url, args.sha256) for url in args.url] if args.url else SOURCES

    def say(message, category, *rest, **kwargs) -> None:  # one plain line per failed mirror
        print(f"agecourse: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if args.quiet else "always", SourceFailedWarning)
        if not args.quiet:
            warnings.showwarning = say
        folder = fetch(sources, cache_dir=args.cache_dir, progress=not args.quiet)
    if args.cache_dir:
        print(f"UTKFace is in {folder}; with AGECOURSE_DATA_DIR={args.cache_dir} lessons and commands find it there")
    else:
        print(f"UTKFace is in {folder}; lessons and commands (cpu and gpu profiles) now use it by themselves")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    """``data synth``: write a set of synthetic faces (not real people)."""
    folder = make_synthetic_faces(args.dest, n=args.n, size=args.size, seed=args.seed)
    print(f"Wrote {args.n} synthetic faces (not real people) of {args.size} px to {folder}")
    return 0


# --- run / train / evaluate ------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    """``run`` / ``train``: load, split, train Model A, evaluate on the test split, write files."""
    from agecourse.job import run_main  # lazy: TensorFlow (see _looks_like_model)

    settings = _settings(args)
    print(f"Profile '{settings.profile}', data: {settings.data_label}")
    if settings.data_note:
        print(f"  {settings.data_note}")
    run_main(settings, out_dir=args.out, verbose=2 if not args.quiet else 0)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``evaluate``: metrics of a model (a ``.keras`` file or a shipped name) on a folder or archive
    of UTKFace-named images, scored with the model's recipe (:func:`agecourse.evaluate.evaluate_folder`)."""
    from agecourse.model_choice import for_cli  # lazy: TensorFlow (see _looks_like_model)

    if not Path(args.data).expanduser().exists():
        raise UserError(f"{args.data}: no such file or folder (pass a folder, .zip or .tar.gz of UTKFace images)")
    if args.rows != "test" and not args.split:
        raise UserError("--rows needs --split (a saved split CSV)")
    chosen = for_cli(args.model)
    metrics = ev.evaluate_folder(
        chosen.model, chosen.settings, args.data, batch_size=args.batch_size, split=args.split, rows=args.rows
    )
    metrics["model"] = str(args.model)
    if args.out:
        ev.save_metrics(json_ready(metrics), Path(args.out) / "metrics.json")
    if args.json:
        _print_json(metrics)
        return 0
    data = metrics["data"]
    print(f"Model: {chosen.source}")
    print(f"{data['accepted']} images accepted, {data['rejected']} rejected ({data['source']})")
    for row in data["rejects"][:10]:
        print(f"  rejected {row['file']}: {row['reason']}")
    if data["rejected"] > 10:
        print(f"  ... and {data['rejected'] - 10} more (see --json)")
    print(f"{ev.score_line(metrics)}, RMSE {metrics['age']['rmse']:.2f}; {metrics['recipe']}")
    for band, row in metrics["per_age_band"].items():
        print(f"  {band:>6}: n={row['count']:<5} MAE {row['age_mae']:.2f}")
    if args.out:
        print(f"Wrote {Path(args.out) / 'metrics.json'}")
    return 0


# --- predict ------------------------------------------------------------------------------------


def cmd_predict(args: argparse.Namespace) -> int:
    """``predict``: age and gender of every face in each image.

    Each image that cannot be used gets one line on stderr (no face, a face too small, not an image,
    too small or too large an image, missing file) and the others go on. Exit status 0 when at least
    one image was predicted, 1 when none was, 2 for a model that cannot be loaded.
    """
    from agecourse.deploy import predict_many, save_outputs  # lazy: TensorFlow (see _looks_like_model)

    if args.gradcam and not args.out:
        raise UserError("--gradcam writes heat maps as pictures: add --out DIR")
    items = [str(item) for item in args.items]
    if args.model is not None:
        model_spec, images = args.model, items
    elif _looks_like_model(items[0]):
        model_spec, images = items[0], items[1:]
    else:
        model_spec, images = DEFAULT_MODEL, items
    if not images:
        raise UserError(f"no images to predict (the only argument, {items[0]}, names a model)")
    if model_spec == DEFAULT_MODEL and args.model is None and not args.json:
        print(f"Using the shipped {DEFAULT_MODEL} (trained on real UTKFace faces; pass a model to use another)")
    from agecourse.model_choice import for_cli

    chosen = for_cli(model_spec)
    # Faces are found with MTCNN and aligned like the training chips (agecourse.deploy.predict_faces);
    # the detector's thresholds and minimum face size come from the settings.
    results = predict_many(
        chosen.model,
        images,
        detect=not args.no_detect,
        gradcam=args.gradcam,
        settings=chosen.settings,
        age_interval=chosen.age_interval,
        gender_temperature=chosen.gender_temperature,
    )
    written: dict[str, list[str]] = {}
    if args.out:
        for index, result in enumerate(results):
            if result.ok:
                stem = f"{index + 1:03d}_{Path(result.source).stem}"
                paths = save_outputs(result.source, result.faces, args.out, stem)
                written[result.source] = [str(p) for p in paths]
    for result in results:
        if not result.ok:
            print(f"agecourse: {result.error}", file=sys.stderr)
    if args.json:
        rows = [dict(r.to_dict(), files=written.get(r.source, [])) if args.out else r.to_dict() for r in results]
        _print_json(rows)
    else:
        for result in results:
            for i, face in enumerate(result.faces, start=1):
                x, y, w, h = face.box
                where = f"box x={x} y={y} w={w} h={h}" if face.detected else "whole image"
                print(f"{result.source}: face {i}: {face.label()} ({where})")
        if args.out and written:
            print(f"Wrote boxed pictures{' and heat maps' if args.gradcam else ''} to {args.out}")
    predicted = sum(r.ok for r in results)
    if not args.json and len(results) > 1:
        print(f"{predicted} of {len(results)} images predicted")
    return 0 if predicted else EXIT_NOTHING_PREDICTED


# --- parser and entry point ----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and documentation)."""
    parser = argparse.ArgumentParser(
        prog="agecourse",
        description="Age and gender estimation course tools (UTKFace, TensorFlow/Keras).",
        epilog="User mistakes exit with status 2 and one line on stderr; AGECOURSE_DEBUG=1 shows tracebacks.",
    )
    parser.add_argument("--version", action="version", version=f"agecourse {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="find, download and inspect data").add_subparsers(
        dest="data_command", required=True, metavar="DATA_COMMAND"
    )
    scan = data.add_parser("scan", help="count accepted and rejected images, with reasons")
    scan.add_argument("path", help="folder, .zip or .tar.gz of UTKFace-named images")
    scan.add_argument("--json", action="store_true", help="print a JSON report")
    scan.add_argument("--no-check-images", action="store_true", help="only parse names, do not decode images")
    scan.set_defaults(func=cmd_scan)
    fetch = data.add_parser("fetch", help="download UTKFace into the cache, verified, trying mirrors in order")
    fetch.add_argument(
        "--url", action="append", default=None, help="download from this archive URL instead (repeat for fallbacks)"
    )
    fetch.add_argument("--sha256", default=None, help="expected SHA-256 of the archive at --url")
    fetch.add_argument("--cache-dir", default=None, help="default: AGECOURSE_DATA_DIR or the user cache")
    fetch.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    fetch.set_defaults(func=cmd_fetch)
    synth = data.add_parser("synth", help="write synthetic faces (not real people) to a folder")
    synth.add_argument("dest")
    synth.add_argument("--n", type=_positive_int, default=600, help="number of faces (default 600)")
    synth.add_argument("--size", type=_positive_int, default=128, help="side in pixels (default 128)")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(func=cmd_synth)

    for name, help_text in (
        ("run", "the main job: load, train Model A, evaluate, write metrics, plots and the model"),
        ("train", "train Model A and save it (.keras) with its test metrics and plots (same job as run)"),
    ):
        run = sub.add_parser(name, help=help_text, description=help_text)
        run.add_argument(
            "--data", default=None, help="UTKFace folder or archive (default: AGECOURSE_DATA, else synthetic faces)"
        )
        run.add_argument(
            "--profile", choices=("ci", "cpu", "gpu"), default=None, help="default: AGECOURSE_PROFILE, else detected"
        )
        run.add_argument("--out", default=f"outputs/{name}", help=f"output folder (default: outputs/{name})")
        run.add_argument("--epochs", type=_positive_int, default=None)
        run.add_argument("--image-size", type=_positive_int, default=None)
        run.add_argument("--max-images", type=_positive_int, default=None)
        run.add_argument("--quiet", action="store_true", help="no per-epoch lines")
        run.set_defaults(func=cmd_run, tensorflow=True)

    evaluate = sub.add_parser("evaluate", help="metrics of a saved model on a folder of UTKFace-named images")
    evaluate.add_argument("model", help="a .keras file saved by the course, or a shipped model: model-a, model-b")
    evaluate.add_argument("--data", required=True, help="folder, .zip or .tar.gz of UTKFace-named images")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate.add_argument("--out", default=None, help="also write metrics.json into this folder")
    evaluate.add_argument("--batch-size", type=_positive_int, default=64)
    evaluate.add_argument("--split", default=None, help="a saved split CSV: evaluate only its --rows (matched by name)")
    evaluate.add_argument(
        "--rows", choices=("train", "val", "test", "all"), default="test", help="which rows of --split (default test)"
    )
    evaluate.set_defaults(func=cmd_evaluate, tensorflow=True)

    predict = sub.add_parser("predict", help="age and gender of the faces in photos")
    predict.add_argument(
        "items",
        nargs="+",
        metavar="[MODEL] IMAGE",
        help="optionally a model first (a .keras file or a shipped name: model-a, model-b; default model-b), "
        "then photo files (JPEG, PNG, ...)",
    )
    predict.add_argument("--model", default=None, help="the model, instead of giving it first")
    predict.add_argument("--json", action="store_true", help="print one JSON record per image")
    predict.add_argument(
        "--no-detect", action="store_true", help="treat each image as one already-cropped face (like a UTKFace chip)"
    )
    predict.add_argument("--out", default=None, help="write each photo with boxed, captioned faces here")
    predict.add_argument("--gradcam", action="store_true", help="also write a Grad-CAM heat map per face (needs --out)")
    predict.set_defaults(func=cmd_predict, tensorflow=True)

    grade = sub.add_parser("grade", help="grade a folder of submitted exercise notebooks (runs their code)")
    add_grade_arguments(grade)
    grade.set_defaults(func=cmd_grade)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse ``argv`` and run the command; user errors exit with status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "tensorflow", False):
        quiet_tensorflow()
    try:
        with warnings.catch_warnings():
            # Keras warns "Your input ran out of data" at the end of any finite tf.data stream whose
            # length it cannot know in advance (ours skip undecodable files); nothing is wrong.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            return args.func(args)
    except (UserError, OSError, UnsafeArchiveError, DownloadError, ValueError) as err:
        # OSError covers missing files, permissions and full disks; ValueError covers bad data and
        # agecourse.deploy's DeployError (no such model, not an image, ...).
        if debug_mode():
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"agecourse: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("agecourse: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
