"""The photo path, measured: how many faces are found in photo-like scenes, how many boxes are false,
and how much age MAE and gender accuracy the whole path (read, find, align, predict) loses against
the same faces scored directly as chips, with the shipped Model B.

Scenes are made from UTKFace chips of the shipped models' split (``bench/results/course_models_split.csv``;
``--split test`` for the reported numbers, ``--split val`` for choosing the detector's settings): each
chip is placed into a larger image (640-1280 x 480-960 px) at a random scale, position and small rotation
(within ±15°), over one of four kinds of background (smooth gradient, blurred colour noise, coloured
blocks, stripes), one to three faces per scene, then JPEG-compressed at quality 75-95; all seeded.
A chip is only the face: each is framed by a ring of its own mirrored edge (12 % of its side)
before it is placed, a stand-in for the surroundings
of the photo it was cut from (without it, an aligned crop of a chip whose face sits off the template
shows strips of the scene's backdrop that no real photo has).

Arms (the same scenes and faces for each):

* ``chips``: each face's own chip, resized to the model's input as in training (the reference);
* ``mtcnn_aligned``: today's path, :func:`agecourse.deploy.predict_faces`'s detection
  (:func:`agecourse.deploy.find_usable_faces`) and alignment (:func:`agecourse.faces.align_face`);
  the first scenes are also run through ``predict_faces`` itself to check that it is the same path;
* ``mtcnn_box_crop``: the same MTCNN faces cut as a square around the box, without alignment;
* ``haar``: the path before MTCNN (OpenCV's Haar cascade, a 25 % replicated border, the Haar chip box),
  only when OpenCV 4 can be imported (``--haar-lib`` adds a folder to the import path: the project does
  not depend on OpenCV any more).

A detection counts as a found face when its box centre lies within 0.35 of the chip's side of the
placed chip's centre and its side is 0.4-1.6 times the chip's side (one detection per face, nearest
first); every other detection is a false box. MAE and accuracy are compared on the faces each arm
found, paired with the chips' predictions of the same faces (95 % bootstrap interval of the loss).

``--split val`` also places smaller faces (chip sides from 32 px) and records every detection down to
an O-Net score of 0.5, then sweeps the O-Net threshold and reports the loss per face size: how
``Settings.face_thresholds`` and ``Settings.face_min_side`` were chosen (``results/photo_val.json``).

    python bench/bench_photo.py [--split test] [--scenes 160] [--seed 0] [--haar-lib DIR]

Writes ``bench/results/photo.json`` (test) or ``photo_val.json`` (val). Skips, with exit status 0,
when the real data are absent.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, SHARED_DATA, write_result  # noqa: E402

SPLIT = RESULTS / "course_models_split.csv"
SIDES = {"test": (140, 320), "val": (32, 320)}  # placed chip side, px (test: faces above the 128 px minimum)
MAX_ROTATION = 15.0
CONTEXT = 0.12  # of the chip's side, mirrored around it before it is placed
MATCH_CENTRE = 0.35
MATCH_SIDE = (0.4, 1.6)
VAL_ONET_FLOOR = 0.5
ONET_SWEEP = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98)
SIZE_BINS = (0, 32, 48, 64, 80, 96, 128, 160, 10_000)  # MTCNN box side, px
BOOTSTRAP = 2000
SWEEP_SIDES = (20, 40, 64, 80, 96, 128)
LOSS_TARGET = {"age_mae": 0.3, "gender": 0.01}  # the targets: what the photo path may lose
FALSE_TARGET = 0.02
FOUND_TARGET = 0.97
# The Haar path as it was (agecourse.deploy before MTCNN): padding and the chip box around a Haar box.
HAAR_PAD, HAAR_SIDE_PER_BOX, HAAR_CENTRE_BELOW_BOX = 0.25, 0.97, 0.08


# --- scenes ---------------------------------------------------------------------------------------


def background(rng: np.random.Generator, width: int, height: int) -> tuple[Image.Image, str]:
    """One of four kinds of backdrop, seeded: gradient, blurred colour noise, blocks or stripes."""
    kind = ("gradient", "noise", "blocks", "stripes")[int(rng.integers(4))]
    if kind == "gradient":
        a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        ramp = np.linspace(0, 1, width)[None, :, None]
        pixels = np.repeat(a * (1 - ramp) + b * ramp, height, axis=0)
        return Image.fromarray(pixels.astype(np.uint8)), kind
    if kind == "noise":
        coarse = rng.uniform(0, 255, (int(rng.integers(4, 24)), int(rng.integers(4, 24)), 3)).astype(np.uint8)
        image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
        return image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 3)))), kind
    image = Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(image)
    if kind == "blocks":
        for _ in range(int(rng.integers(5, 25))):
            x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
            x1, y1 = x0 + int(rng.integers(20, width // 2)), y0 + int(rng.integers(20, height // 2))
            draw.rectangle([x0, y0, x1, y1], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    else:
        step = int(rng.integers(8, 60))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        for x in range(0, width + height, 2 * step):
            draw.polygon([(x, 0), (x + step, 0), (x + step - height, height), (x - height, height)], fill=colour)
    return image, kind


def place(rng: np.random.Generator, width: int, height: int, side: int, taken: list[tuple]) -> tuple | None:
    """A centre for a chip of ``side`` px (rotated, so its footprint is up to 1.42 x side) that keeps
    it inside the scene and clear of the faces already placed, or ``None`` after 60 tries."""
    half = math.ceil(side * (1 + 2 * CONTEXT) * 0.71) + 2
    if 2 * half >= min(width, height):
        return None
    for _ in range(60):
        cx, cy = int(rng.integers(half, width - half)), int(rng.integers(half, height - half))
        if all(abs(cx - x) > half + h or abs(cy - y) > half + h for x, y, h in taken):
            return cx, cy
    return None


def make_scene(rng: np.random.Generator, rows: pd.DataFrame, data: Path, sides: tuple[int, int]) -> dict:
    """A JPEG scene of ``rows``' chips (some may not fit and are dropped) and where each one went."""
    width, height = int(rng.integers(640, 1281)), int(rng.integers(480, 961))
    canvas, kind = background(rng, width, height)
    faces, taken = [], []
    for row in rows.itertuples():
        side = int(rng.integers(sides[0], min(sides[1], int(min(width, height) / 2.0)) + 1))
        centre = place(rng, width, height, side, taken)
        if centre is None:
            continue
        angle = float(rng.uniform(-MAX_ROTATION, MAX_ROTATION))
        with Image.open(data / row.path) as chip:
            # A ring of the chip's own mirrored edge stands in for the surroundings it was cut from.
            ring = round(CONTEXT * chip.width)
            framed = np.pad(np.asarray(chip.convert("RGB")), ((ring, ring), (ring, ring), (0, 0)), mode="symmetric")
            outer = round(side * framed.shape[0] / chip.width)
            face = Image.fromarray(framed).resize((outer, outer), Image.Resampling.LANCZOS)
        mask = Image.new("L", face.size, 255).rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
        face = face.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
        canvas.paste(face, (centre[0] - face.width // 2, centre[1] - face.height // 2), mask)
        taken.append((*centre, math.ceil(side * (1 + 2 * CONTEXT) * 0.71)))
        faces.append({"path": row.path, "age": int(row.age), "gender": int(row.gender), "side": side,
                      "cx": centre[0], "cy": centre[1], "angle": round(angle, 2)})  # fmt: skip
    quality = int(rng.integers(75, 96))
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=quality)
    return {"jpeg": buffer.getvalue(), "faces": faces, "background": kind, "quality": quality, "size": (width, height)}


def make_scenes(split: str, count: int, seed: int, data: Path) -> list[dict]:
    """``count`` seeded scenes of one to three chips each from the ``split`` part, no chip twice."""
    table = pd.read_csv(SPLIT, dtype={"path": str})
    table = table[table["part"] == split].sample(frac=1.0, random_state=seed).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    scenes, used = [], 0
    for _ in range(count):
        n = int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))
        if used + n > len(table):
            break
        scene = make_scene(rng, table.iloc[used : used + n], data, SIDES[split])
        used += n
        scenes.append(scene)
    return scenes


# --- matching and scoring -------------------------------------------------------------------------


def match(boxes: list[tuple[float, float, float, float]], faces: list[dict]) -> dict[int, int]:
    """``{face index: box index}``: each placed face gets the nearest box whose centre is within
    ``MATCH_CENTRE`` of its side and whose size fits; unmatched boxes are false boxes."""
    pairs = []
    for i, face in enumerate(faces):
        for j, (x, y, w, h) in enumerate(boxes):
            distance = math.hypot(x + w / 2 - face["cx"], y + h / 2 - face["cy"]) / face["side"]
            ratio = max(w, h) / face["side"]
            if distance <= MATCH_CENTRE and MATCH_SIDE[0] <= ratio <= MATCH_SIDE[1]:
                pairs.append((distance, i, j))
    matched, used = {}, set()
    for _, i, j in sorted(pairs):
        if i not in matched and j not in used:
            matched[i] = j
            used.add(j)
    return matched


def paired_loss(photo: np.ndarray, chips: np.ndarray, seed: int) -> dict:
    """Mean of ``photo - chips`` (per-face errors or correct-flags) with a 95 % bootstrap interval."""
    diff = np.asarray(photo, np.float64) - np.asarray(chips, np.float64)
    if len(diff) == 0:
        return {"mean": None, "low": None, "high": None}
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (BOOTSTRAP, len(diff)))].mean(axis=1)
    return {
        "mean": float(diff.mean()),
        "low": float(np.quantile(means, 0.025)),
        "high": float(np.quantile(means, 0.975)),
    }


def arm_summary(records: pd.DataFrame, arm: str, boxes: int, faces: int, seed: int) -> dict:
    """Found / false counts and the paired quality loss of one arm against the chips."""
    found = records[records[f"{arm}_age"].notna()]
    age_photo = (found[f"{arm}_age"] - found["age"]).abs()
    age_chip = (found["chips_age"] - found["age"]).abs()
    right_photo = ((found[f"{arm}_p"] >= 0.5).astype(int) == found["gender"]).astype(float)
    right_chip = ((found["chips_p"] >= 0.5).astype(int) == found["gender"]).astype(float)
    return {
        "faces": faces,
        "found": len(found),
        "found_share": len(found) / faces if faces else None,
        "boxes": boxes,
        "false_boxes": boxes - len(found),
        "false_share": (boxes - len(found)) / boxes if boxes else 0.0,
        "age_mae_photo": float(age_photo.mean()) if len(found) else None,
        "age_mae_chips_same_faces": float(age_chip.mean()) if len(found) else None,
        "age_mae_loss": paired_loss(age_photo, age_chip, seed),
        "gender_accuracy_photo": float(right_photo.mean()) if len(found) else None,
        "gender_accuracy_chips_same_faces": float(right_chip.mean()) if len(found) else None,
        "gender_accuracy_loss": paired_loss(right_chip, right_photo, seed),  # chips - photo: a loss
    }


# --- the paths ------------------------------------------------------------------------------------


def haar_boxes(rgb: np.ndarray, cv2, pad: float = HAAR_PAD) -> list[tuple[int, int, int, int]]:
    """The Haar path's face boxes, as ``agecourse.deploy.detect_faces`` found them before MTCNN
    (the image padded by ``pad`` of each side with its replicated edge)."""
    cascade = haar_boxes.cascade = getattr(haar_boxes, "cascade", None) or cv2.CascadeClassifier(
        os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
    )
    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    height, width = gray.shape
    scale = min(1.0, 1024 / max(height, width))
    if scale < 1.0:
        gray = cv2.resize(gray, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    pad_y, pad_x = round(pad * gray.shape[0]), round(pad * gray.shape[1])
    gray = cv2.copyMakeBorder(gray, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_REPLICATE)
    found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5)
    boxes = []
    for x, y, w, h in found if len(found) else []:
        x0, y0 = max(0.0, (x - pad_x) / scale), max(0.0, (y - pad_y) / scale)
        x1, y1 = min(float(width), (x + w - pad_x) / scale), min(float(height), (y + h - pad_y) / scale)
        if x1 - x0 >= 1 and y1 - y0 >= 1:
            boxes.append((round(x0), round(y0), round(x1 - x0), round(y1 - y0)))
    return boxes


def haar_chip(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The Haar path's chip: a square of 0.97 x the box, moved down by 0.08 of its side, edges repeated."""
    from agecourse.faces import CHIP_SIDE, cut_out

    x, y, w, h = box
    side = max(1, round(HAAR_SIDE_PER_BOX * max(w, h)))
    left = round(x + w / 2 - side / 2)
    top = round(y + h / 2 + HAAR_CENTRE_BELOW_BOX * side - side / 2)
    square = cut_out(rgb, left, top, left + side, top + side)
    return np.asarray(Image.fromarray(square).resize((CHIP_SIDE, CHIP_SIDE), Image.Resampling.LANCZOS))


def box_crop_chip(rgb: np.ndarray, face) -> np.ndarray:
    """An MTCNN face cut as a square around its box (:func:`agecourse.deploy.chip_box`), no alignment."""
    from agecourse import deploy
    from agecourse.faces import CHIP_SIDE

    square = deploy.crop_chip(rgb, deploy.chip_box(tuple(round(v) for v in face.box)))
    return np.asarray(Image.fromarray(square).resize((CHIP_SIDE, CHIP_SIDE), Image.Resampling.LANCZOS))


def detections(rgb: np.ndarray, split: str) -> list:
    """The MTCNN faces of a scene: on test, exactly predict_faces's (settings' thresholds and minimum
    size); on val, every face down to an O-Net score of ``VAL_ONET_FLOOR`` (the sweep filters later)."""
    from agecourse import deploy, faces

    if split == "val":
        thresholds, _ = faces.detection_options()
        return faces.find_faces(rgb, (thresholds[0], thresholds[1], VAL_ONET_FLOOR))
    try:
        return deploy.find_usable_faces(rgb)
    except (deploy.NoFaceFound, deploy.FaceTooSmall):
        return []


def score_scene(model, scene: dict, data: Path, split: str, cv2, check: bool) -> tuple[list[dict], list[dict]]:
    """Per-face records (every arm's prediction or NaN when missed) and per-detection records."""
    from agecourse import deploy, faces

    size = deploy.input_size(model)
    rgb = deploy.read_image(scene["jpeg"])
    template = faces.face_template()["points"]
    found = detections(rgb, split)
    matched = match([f.box for f in found], scene["faces"])
    chips = [deploy.read_image(data / face["path"]) for face in scene["faces"]]
    batches = {"chips": chips}
    batches["mtcnn_aligned"] = [faces.align_face(rgb, f.landmarks, template) for f in found]
    batches["mtcnn_box_crop"] = [box_crop_chip(rgb, f) for f in found]
    haar = haar_boxes(rgb, cv2) if cv2 is not None else []
    batches["haar"] = [haar_chip(rgb, box) for box in haar]
    order = [(arm, i) for arm, items in batches.items() for i in range(len(items))]
    images = np.stack([deploy.to_model_input(batches[arm][i], size) for arm, i in order])
    ages, probs = deploy._predict_batch(model, images)
    predicted = {key: (float(a), float(p)) for key, a, p in zip(order, ages, probs)}
    if check and found and split == "test":  # the same numbers through predict_faces itself
        through = deploy.predict_faces(model, scene["jpeg"])
        expected = [predicted[("mtcnn_aligned", i)][0] for i in range(len(found))]
        assert np.allclose([f.age for f in through], expected, atol=1e-3), "bench path differs from predict_faces"
    haar_matched = match([tuple(map(float, b)) for b in haar], scene["faces"])
    records = []
    for i, face in enumerate(scene["faces"]):
        record = dict(face, chips_age=predicted[("chips", i)][0], chips_p=predicted[("chips", i)][1])
        for arm, pairs in (("mtcnn_aligned", matched), ("mtcnn_box_crop", matched), ("haar", haar_matched)):
            j = pairs.get(i)
            age, p = predicted[(arm, j)] if j is not None else (np.nan, np.nan)
            record.update({f"{arm}_age": age, f"{arm}_p": p})
        j = matched.get(i)
        record["box_side"] = found[j].side if j is not None else np.nan
        record["confidence"] = found[j].confidence if j is not None else np.nan
        records.append(record)
    hits = set(matched.values())
    boxes = [{"confidence": f.confidence, "side": f.side, "true": j in hits} for j, f in enumerate(found)]
    boxes += [{"haar": True, "true": j in set(haar_matched.values())} for j in range(len(haar))]
    return records, boxes


def sweep(records: pd.DataFrame, boxes: pd.DataFrame, min_side: int) -> list[dict]:
    """Found and false shares per O-Net threshold, over faces and boxes at least ``min_side`` px."""
    mtcnn = boxes[boxes["haar"].isna()] if "haar" in boxes else boxes
    mtcnn = mtcnn[mtcnn["side"] >= min_side]
    from agecourse.faces import face_template

    box_per_chip = 1 / face_template()["box"]["chip_side_per_box"]  # an MTCNN box is this many chip sides
    faces = int((records["side"] * box_per_chip >= min_side).sum())  # faces whose box is big enough
    rows = []
    for threshold in ONET_SWEEP:
        kept = mtcnn[mtcnn["confidence"] >= threshold]
        found = int(kept["true"].sum())
        rows.append({"onet_threshold": threshold, "faces": faces, "found": found, "found_share": found / faces,
                     "boxes": len(kept), "false_boxes": int((~kept["true"]).sum()),
                     "false_share": float((~kept["true"]).mean()) if len(kept) else 0.0})  # fmt: skip
    return rows


def choose(sizes: list[dict], sweeps: dict[str, list[dict]]) -> dict:
    """The rule behind the settings' defaults: the smallest face side from which every larger size bin
    loses at most ``LOSS_TARGET`` (years of MAE, gender accuracy), rounded up to a swept side; then,
    at that side, the O-Net threshold with the most faces found among those with at most half the
    false-box target, the higher threshold on a tie."""
    min_side = None
    for row in reversed(sizes):
        if row["age_mae_loss"] > LOSS_TARGET["age_mae"] or row["gender_accuracy_loss"] > LOSS_TARGET["gender"]:
            break
        min_side = int(row["box_side"].split("-")[0])
    side = next((s for s in SWEEP_SIDES if min_side is not None and s >= min_side), SWEEP_SIDES[-1])
    allowed = [r for r in sweeps[str(side)] if r["false_share"] <= FALSE_TARGET / 2]
    best = max(allowed, key=lambda r: (r["found_share"], r["onet_threshold"])) if allowed else None
    return {"face_min_side": side, "onet_threshold": best["onet_threshold"] if best else None, "rule": choose.__doc__}


def by_size(records: pd.DataFrame, arm: str = "mtcnn_aligned") -> list[dict]:
    """The aligned path's paired MAE loss and gender accuracy per MTCNN box side."""
    rows = []
    found = records[records[f"{arm}_age"].notna()]
    bins = pd.cut(found["box_side"], SIZE_BINS, right=False)
    for interval, group in found.groupby(bins, observed=True):
        loss = (group[f"{arm}_age"] - group["age"]).abs() - (group["chips_age"] - group["age"]).abs()
        right = ((group[f"{arm}_p"] >= 0.5).astype(int) == group["gender"]).mean()
        right_chip = ((group["chips_p"] >= 0.5).astype(int) == group["gender"]).mean()
        rows.append(
            {
                "box_side": f"{int(interval.left)}-{int(interval.right)}",
                "faces": len(group),
                "age_mae_loss": float(loss.mean()),
                "gender_accuracy_loss": float(right_chip - right),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="folder of UTKFace chips")
    parser.add_argument("--split", choices=("test", "val"), default="test")
    parser.add_argument("--scenes", type=int, default=160)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--haar-lib", type=Path, default=None, help="a folder with OpenCV 4 (for the Haar arm)")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"SKIPPED: no UTKFace chips at {args.data}; nothing to measure.")
        return 0
    if args.haar_lib:
        sys.path.insert(0, str(args.haar_lib))
    try:
        import cv2  # only to measure the old Haar path; agecourse does not depend on OpenCV
    except ImportError:
        cv2 = None
    from agecourse import course_models, faces

    model = course_models.load("model-b")
    start = time.monotonic()
    scenes = make_scenes(args.split, args.scenes, args.seed, args.data)
    records, boxes = [], []
    for index, scene in enumerate(scenes):
        face_records, box_records = score_scene(model, scene, args.data, args.split, cv2, check=index < 5)
        records += face_records
        boxes += box_records
    records, boxes = pd.DataFrame(records), pd.DataFrame(boxes)
    mtcnn_boxes = boxes[boxes["haar"].isna()] if "haar" in boxes else boxes
    thresholds, min_side = faces.detection_options()
    n_faces = len(records)
    arms = {
        "mtcnn_aligned": arm_summary(records, "mtcnn_aligned", len(mtcnn_boxes), n_faces, args.seed),
        "mtcnn_box_crop": arm_summary(records, "mtcnn_box_crop", len(mtcnn_boxes), n_faces, args.seed),
    }
    if cv2 is not None:
        arms["haar"] = arm_summary(records, "haar", int(boxes.get("haar", pd.Series()).notna().sum()), n_faces, 0)
    chip_mae = float((records["chips_age"] - records["age"]).abs().mean())
    chip_accuracy = float(((records["chips_p"] >= 0.5).astype(int) == records["gender"]).mean())
    result = {
        "settings": {
            "data": str(args.data),
            "split": args.split,
            "scenes": len(scenes),
            "seed": args.seed,
            "chip_sides": list(SIDES[args.split]),
            "max_rotation": MAX_ROTATION,
            "jpeg_quality": [75, 95],
            "context": CONTEXT,
            "model": "model-b (shipped), plain predictions",
            "face_thresholds": list(thresholds),
            "face_min_side": min_side,
            "match": {"centre": MATCH_CENTRE, "side": list(MATCH_SIDE)},
            "haar": None if cv2 is None else f"opencv {cv2.__version__} from {args.haar_lib or 'the environment'}",
        },  # fmt: skip
        "faces": n_faces,
        "backgrounds": pd.Series([s["background"] for s in scenes]).value_counts().to_dict(),
        "faces_per_scene": pd.Series([len(s["faces"]) for s in scenes]).value_counts().sort_index().to_dict(),
        "chips": {"age_mae": chip_mae, "gender_accuracy": chip_accuracy},
        "arms": arms,
        "by_size": by_size(records),
        "wall_s": round(time.monotonic() - start, 1),
    }
    if args.split == "val":
        result["sweep"] = {str(side): sweep(records, boxes, side) for side in SWEEP_SIDES}
        result["chosen"] = choose(result["by_size"], result["sweep"])
    write_result("photo" if args.split == "test" else "photo_val", result)
    for name, arm in arms.items():
        print(f"{name}: found {arm['found']}/{arm['faces']}, false boxes {arm['false_boxes']}/{arm['boxes']}, "
              f"MAE {arm['age_mae_photo']} vs chips {arm['age_mae_chips_same_faces']}, "
              f"gender {arm['gender_accuracy_photo']} vs {arm['gender_accuracy_chips_same_faces']}")  # fmt: skip
    print(f"{len(scenes)} scenes, {n_faces} faces, {result['wall_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
