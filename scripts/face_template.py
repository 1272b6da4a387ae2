"""The face-alignment template (package data ``agecourse/face_template.json``): where the five MTCNN
landmarks sit on a UTKFace training chip, which :func:`agecourse.faces.align_face` warps every face of
a photo onto. Written by ``python scripts/write_package_data.py template`` (the one writer of package
data; the file's ``made_from.command`` records the command that wrote it, under this code's earlier
name ``bench/write_face_template.py``).

A seeded sample of ``--n`` chips of the shipped models' **training** split
(``bench/results/course_models_split.csv``, part ``train``; the validation and test chips are never
read) from ``../shared/data/utkface-part1`` goes through :func:`agecourse.faces.find_faces` exactly as a
photo does. On each chip with a face the largest face's five landmarks are kept; the template is their
mean, in the 200 x 200 chip's pixels. The file also records how the MTCNN box sits on a chip (the
medians that :func:`agecourse.deploy.chip_box` uses to cut a chip around a box without alignment),
the landmarks' spread, and how it was made (count, seed, date, split, thresholds).

Skips, with exit status 0, when the real data are absent (the shipped file stays as it is).
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from common import RESULTS, ROOT  # bench/common.py: scripts/write_package_data.py puts bench/ on the path

SPLIT = RESULTS / "course_models_split.csv"


def measure(paths: list[Path]) -> dict:
    """Landmarks and boxes of the largest face MTCNN finds on each chip (and the chips without one)."""
    from PIL import Image

    from agecourse.faces import CHIP_SIDE, find_faces  # not agecourse.deploy: it needs the template

    landmarks, boxes, missed, confidences = [], [], [], []
    for path in paths:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
        if rgb.shape[:2] != (CHIP_SIDE, CHIP_SIDE):
            raise ValueError(f"{path}: {rgb.shape[1]}x{rgb.shape[0]} px, not a {CHIP_SIDE} px UTKFace chip")
        faces = find_faces(rgb)
        if not faces:
            missed.append(path.name)
            continue
        landmarks.append(faces[0].landmarks)
        boxes.append(faces[0].box)
        confidences.append(faces[0].confidence)
    return {
        "landmarks": np.asarray(landmarks),
        "boxes": np.asarray(boxes),
        "missed": missed,
        "confidences": confidences,
    }


def template_record(found: dict, seed: int, searched: int, wall_s: float) -> dict:
    """The JSON written as package data."""
    from agecourse.faces import CHIP_SIDE, LANDMARKS, detection_options

    points, boxes = found["landmarks"], found["boxes"]
    box_side = np.maximum(boxes[:, 2], boxes[:, 3])
    box_centre_y = boxes[:, 1] + boxes[:, 3] / 2
    box_centre_x = boxes[:, 0] + boxes[:, 2] / 2
    thresholds, _ = detection_options()
    return {
        "points": np.round(points.mean(axis=0), 2).tolist(),
        "landmarks": list(LANDMARKS),
        "chip_side": CHIP_SIDE,
        "made_from": {
            "what": "mean MTCNN landmarks of the largest face on each chip (agecourse.faces.find_faces)",
            "data": "UTKFace part-1 sample (../shared/data/utkface-part1)",
            "split": f"{SPLIT.relative_to(ROOT).as_posix()}, part 'train'",
            "searched": searched,
            "count": int(len(points)),
            "without_a_face": len(found["missed"]),
            "seed": seed,
            "thresholds": list(thresholds),
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "command": "python scripts/write_package_data.py " + " ".join(sys.argv[1:]),
            "wall_s": round(wall_s, 1),
        },
        "spread_px": np.round(points.std(axis=0), 2).tolist(),
        "box": {
            # chip_box: side = chip_side_per_box * max(w, h); centre = box centre + chip_centre_below_box * side
            "chip_side_per_box": round(float(np.median(CHIP_SIDE / box_side)), 3),
            "chip_centre_below_box": round(float(np.median((CHIP_SIDE / 2 - box_centre_y) / CHIP_SIDE)), 3),
            "chip_centre_right_of_box": round(float(np.median((CHIP_SIDE / 2 - box_centre_x) / CHIP_SIDE)), 3),
        },
        "median_confidence": round(float(np.median(found["confidences"])), 4),
    }


def write_template(data: Path, n: int = 1000, seed: int = 0, out: Path | None = None) -> int:
    """Measure the landmarks on a seeded sample of ``n`` training chips in ``data`` and write the
    template to ``out`` (default: the package's ``face_template.json``). Returns the exit status."""
    if not data.is_dir():
        print(f"SKIPPED: no UTKFace chips at {data}; the shipped template stays as it is.")
        return 0
    from agecourse.faces import TEMPLATE_FILE

    train = pd.read_csv(SPLIT, dtype={"path": str})
    names = sorted(train.loc[train["part"] == "train", "path"])
    sample = random.Random(seed).sample(names, min(n, len(names)))
    start = time.monotonic()
    found = measure([data / name for name in sample])
    record = template_record(found, seed, len(sample), time.monotonic() - start)
    out = out or TEMPLATE_FILE
    out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    made = record["made_from"]
    print(f"wrote {out}: mean of {made['count']} of {made['searched']} training chips; points {record['points']}")
    return 0
