"""Training and inference speed on this CPU: Model A and Model B at 64 and 128 px, and the latency
of predicting on one photo (face detection + model).

Training speed is images/s of ``train_on_batch`` on in-memory batches (random pixels: the speed of a
convolution does not depend on what the pixels show), after a few warm-up steps that build and
trace the train function. Both models are built as the course trains them, with the profile's
augmentation layer inside (``settings.augment``): Model A with the ``cpu`` profile's recipe
(:func:`agecourse.recipes.build_model_a_for`), Model B with the ``cpu`` profile's recipe
(:func:`agecourse.recipes.build_model_b_for`) trained on images, from random weights (speed does not
depend on the weights). Model B is timed in both phases
of lesson 10: frozen backbone, then fine-tuning the top layers.

Latency is the median of ``--runs`` calls of :func:`agecourse.deploy.predict_faces` on one photo:
a real UTKFace chip pasted into a 640 x 480 grey frame when the shared data is present (so the
detector has to find the face), else a synthetic face. Each call reads the file, detects, crops,
resizes and runs the model at the profile's input size.

    python bench/bench_speed.py [--sizes 64 128] [--batch 64] [--warmup 3] [--steps 10] [--runs 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, load_average, write_result  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def random_batch(batch: int, size: int, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One in-memory batch shaped like :func:`agecourse.data.make_dataset`'s: float32 0-255 images
    and ``{"age", "gender"}`` labels."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (batch, size, size, 3)).astype(np.float32)
    y = {
        "age": rng.integers(1, 90, (batch, 1)).astype(np.float32),
        "gender": rng.integers(0, 2, (batch, 1)).astype(np.float32),
    }
    return x, y


def time_training(model, batch: int, size: int, warmup: int, steps: int) -> dict:
    """Images/s of ``model.train_on_batch`` (already compiled) after ``warmup`` untimed steps."""
    x, y = random_batch(batch, size)
    for _ in range(warmup):
        model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    return {
        "steps": steps,
        "median_step_s": statistics.median(times),
        "images_per_s": batch / statistics.median(times),
        "mean_images_per_s": batch * steps / sum(times),
        "trainable_params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        "total_params": int(model.count_params()),
    }


def bench_training(settings, sizes: list[int], batch: int, warmup: int, steps: int) -> list[dict]:
    """Training speed rows for Model A and both phases of Model B at every size."""
    import keras

    from agecourse.models import compile_model
    from agecourse.recipes import build_model_a_for, build_model_b_for
    from agecourse.transfer import set_trainable_top
    from agecourse.transfer_training import FINETUNE_LAYERS, FINETUNE_LEARNING_RATE

    rows = []
    for size in sizes:
        keras.backend.clear_session(free_memory=True)
        model = build_model_a_for(settings.replace(image_size=size))  # the lessons' recipe, compiled
        row = {"model": "A", "phase": "full", "image_size": size, "filters": list(settings.model_filters)}
        rows.append(row | time_training(model, batch, size, warmup, steps))
        print(rows[-1], flush=True)

        keras.backend.clear_session(free_memory=True)
        # On images (no cached views), so the profile's augmentation runs inside the model.
        on_images = settings.replace(transfer_image_size=size, transfer_cached_views=0)
        model = build_model_b_for(on_images, weights=None, verbose=False)
        backbone = f"{settings.transfer_backbone} alpha {settings.transfer_alpha} (random weights)"
        for phase, layers_, rate in (
            ("frozen backbone", 0, settings.learning_rate),
            (f"fine-tune top {FINETUNE_LAYERS} layers", FINETUNE_LAYERS, FINETUNE_LEARNING_RATE),
        ):
            set_trainable_top(model, layers_)
            compile_model(model, learning_rate=rate)
            row = {"model": "B", "phase": phase, "image_size": size, "backbone": backbone}
            rows.append(row | time_training(model, batch, size, warmup, steps))
            print(rows[-1], flush=True)
    return rows


def make_photo(folder: Path) -> tuple[Path, str]:
    """A 640 x 480 photo with one face in it; returns its path and a description."""
    from PIL import Image

    from agecourse.deploy import NoFaceFound, detect_faces, read_image

    candidates: list[Path] = []
    if SHARED_DATA.is_dir():
        candidates = sorted(SHARED_DATA.glob("*.jpg"))[:50]
        source = "real UTKFace chip (200 px) pasted at the centre of a 640x480 grey frame"
    if not candidates:
        from agecourse.synthetic import make_synthetic_faces

        synth = make_synthetic_faces(folder / "synthetic", n=20, size=200, seed=0)
        candidates = sorted(synth.glob("*.jpg"))
        source = "synthetic face (200 px) pasted at the centre of a 640x480 grey frame"
    for chip in candidates:
        with Image.open(chip) as face:
            frame = Image.new("RGB", (640, 480), (128, 128, 128))
            frame.paste(face.convert("RGB"), ((640 - face.width) // 2, (480 - face.height) // 2))
        path = folder / f"photo_{chip.stem}.jpg"
        frame.save(path, quality=92)
        if detect_faces(read_image(path)):
            return path, f"{source}: {chip.name}"
    raise NoFaceFound(f"the detector found no face in any of the {len(candidates)} candidate photos")


def median_ms(function, runs: int, warmup: int = 3) -> dict:
    """Median, 10th and 90th percentile wall time of ``function()`` over ``runs`` calls, in ms."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    q = np.percentile(times, [10, 50, 90])
    return {"runs": runs, "median_ms": float(q[1]), "p10_ms": float(q[0]), "p90_ms": float(q[2])}


def bench_latency(settings, runs: int) -> dict:
    """Latency of predict_faces on one photo for Model A and Model B at the profile's sizes."""
    import keras

    from agecourse.deploy import detect_faces, predict_faces, read_image
    from agecourse.recipes import build_model_a_for, build_model_b_for

    with tempfile.TemporaryDirectory(prefix="agecourse-speed-") as tmp:
        photo, description = make_photo(Path(tmp))
        rgb = read_image(photo)
        result: dict = {
            "photo": description,
            "photo_px": list(rgb.shape[:2][::-1]),
            "detect_only": median_ms(lambda: detect_faces(rgb), runs),
        }
        models = {
            "A": lambda: build_model_a_for(settings),
            "B": lambda: build_model_b_for(settings, weights=None, verbose=False),
        }
        for name, build in models.items():
            keras.backend.clear_session(free_memory=True)
            model = build()
            size = int(model.input_shape[1])
            faces = predict_faces(model, photo)
            batch = np.zeros((1, size, size, 3), np.float32)
            result[f"model_{name}"] = {
                "image_size": size,
                "faces_found": len(faces),
                "predict_faces": median_ms(partial(predict_faces, model, photo), runs),
                # predict_faces calls the model eagerly; these show what a compiled call costs.
                "model_call_only": median_ms(partial(model, batch, training=False), runs),
                "model_predict_on_batch": median_ms(partial(model.predict_on_batch, batch), runs),
            }
            print(name, result[f"model_{name}"], flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128], help="training image sides in px")
    parser.add_argument("--batch", type=int, default=None, help="training batch (default: the cpu profile's)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed training steps first")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps")
    parser.add_argument("--runs", type=int, default=50, help="timed predict calls (median reported)")
    args = parser.parse_args()
    load_start = load_average()

    import tensorflow as tf

    from agecourse.config import get_settings
    from agecourse.training import set_seed

    settings = get_settings("cpu", data_dir=None)
    set_seed(settings.seed)
    batch = args.batch or settings.batch_size
    payload: dict = {
        "settings": {
            "profile": "cpu",
            "batch_size": batch,
            "warmup_steps": args.warmup,
            "timed_steps": args.steps,
            "latency_runs": args.runs,
            "model_a_filters": list(settings.model_filters),
            "model_b": f"{settings.transfer_backbone} alpha {settings.transfer_alpha}",
            "augmentation": f"settings.augment={settings.augment!r} inside both models during training",
            "tf_threads": {
                "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
            },
        }
    }
    # Every row comes from this one run, under this run's header (no part is carried over from an
    # earlier run, where the machine, the load or the recipe may have differed).
    payload["training"] = bench_training(settings, args.sizes, batch, args.warmup, args.steps)
    payload["latency"] = bench_latency(settings, args.runs)
    write_result("speed", payload, load_start=load_start)


if __name__ == "__main__":
    main()
