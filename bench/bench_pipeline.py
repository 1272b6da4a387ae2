"""Data pipeline: peak memory and images/s of one pass over a full-UTKFace-sized set.

Compares agecourse's streaming ``tf.data`` pipeline with the common student approach (PIL load ->
float32 array per image -> one big ``np.array``). The set has 23,708 images (full UTKFace's size),
built in a temporary folder from the shared real faces under new names (each used about three
times), or from synthetic faces when the shared sample is absent. Each approach runs in its own
process so peak RSS is its own.

    python bench/bench_pipeline.py [--n 23708] [--size 128] [--keep DIR]

Targets (issue 6): agecourse peak RSS <= 1.5 GB and at least 2x the naive images/s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, peak_rss_mb, write_result  # noqa: E402


def build_set(folder: Path, n: int) -> str:
    """Fill ``folder`` with ``n`` UTKFace-named JPEGs; returns a description of the source."""
    from agecourse.data import scan_folder

    folder.mkdir(parents=True, exist_ok=True)
    if SHARED_DATA.is_dir():
        source = scan_folder(SHARED_DATA).images
        kind = f"real UTKFace part-1 faces (200 px JPEG) from {SHARED_DATA}, reused under new names"
    else:
        from agecourse.synthetic import make_synthetic_faces

        synth = make_synthetic_faces(folder.parent / "synthetic-src", n=min(n, 5000), size=200, seed=0)
        source = scan_folder(synth).images
        kind = "synthetic faces (200 px JPEG), reused under new names"
    for i in range(n):
        row = source.iloc[i % len(source)]
        name = f"{row.age}_{row.gender}_{row.race}_{20000101000000000 + i}.jpg.chip.jpg"
        shutil.copyfile(row.path, folder / name)
    return kind


def run_naive(folder: Path, size: int) -> dict:
    """The student approach: decode every image into float32 and stack into one array."""
    import numpy as np
    from PIL import Image

    start = time.perf_counter()
    images, ages = [], []
    for path in sorted(folder.iterdir()):
        with Image.open(path) as image:
            images.append(np.asarray(image.convert("RGB").resize((size, size)), dtype=np.float32) / 255.0)
        ages.append(int(path.name.split("_")[0]))
    array = np.array(images)
    seconds = time.perf_counter() - start
    return {"images": len(array), "seconds": seconds, "array_gb": array.nbytes / 1e9}


def run_agecourse(folder: Path, size: int, batch: int) -> dict:
    """agecourse: scan names, then stream one pass through make_dataset."""
    from agecourse.data import make_dataset, scan_folder

    start = time.perf_counter()
    images = scan_folder(folder).images
    count = 0
    for x, _ in make_dataset(images, size, batch_size=batch, shuffle=True):
        count += int(x.shape[0])
    return {"images": count, "seconds": time.perf_counter() - start}


def child(mode: str, folder: Path, size: int, batch: int) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = run_naive(folder, size) if mode == "naive" else run_agecourse(folder, size, batch)
    result["peak_rss_mb"] = peak_rss_mb()
    result["images_per_s"] = result["images"] / result["seconds"]
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=23708)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--keep", default=None, help="reuse/keep the built set in this folder")
    parser.add_argument("--child", choices=("naive", "agecourse"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.folder), args.size, args.batch)
        return
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="agecourse-bench-"))
    folder = tmp / "faces"
    try:
        if folder.is_dir() and sum(1 for _ in folder.iterdir()) == args.n:
            kind = "reused set from --keep folder"
        else:
            shutil.rmtree(folder, ignore_errors=True)
            kind = build_set(folder, args.n)
        results = {}
        for mode in ("agecourse", "naive", "agecourse"):  # agecourse twice: first pass warms the page cache
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    mode,
                    "--folder",
                    str(folder),
                    "--size",
                    str(args.size),
                    "--batch",
                    str(args.batch),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            line = next(x for x in out.splitlines() if x.startswith("RESULT "))
            results[mode] = json.loads(line[len("RESULT ") :])
            print(mode, results[mode])
        naive, ours = results["naive"], results["agecourse"]
        write_result(
            "pipeline",
            {
                "settings": {"images": args.n, "image_size": args.size, "batch_size": args.batch, "data": kind},
                "agecourse": ours,
                "naive": naive,
                "speedup": ours["images_per_s"] / naive["images_per_s"],
                "targets": {
                    "agecourse_peak_rss_le_1_5_gb": ours["peak_rss_mb"] <= 1536,
                    "speedup_ge_2x": ours["images_per_s"] >= 2 * naive["images_per_s"],
                },
            },
        )
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
