"""How often a detector finds the face on a bare real UTKFace chip: MTCNN (today's
:func:`agecourse.deploy.detect_faces`) and, when OpenCV 4 can be imported (``--haar-lib``), the Haar
cascade it replaced, with and without the 25 % replicated border that Haar needed.

A seeded sample of ``--n`` chips (default 500) from ``../shared/data/utkface-part1`` is searched.

    python bench/bench_detect.py [--n 500] [--seed 0] [--haar-lib DIR]

Writes ``bench/results/detect.json``. Skips, with exit status 0, when the real data are absent.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, write_result  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="folder of UTKFace chips")
    parser.add_argument("--n", type=int, default=500, help="chips in the seeded sample")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--haar-lib", type=Path, default=None, help="a folder with OpenCV 4 (for the Haar rows)")
    args = parser.parse_args(argv)
    chips = sorted(args.data.glob("*.jpg")) if args.data.is_dir() else []
    if not chips:
        print(f"SKIPPED: no UTKFace chips at {args.data}; nothing to measure.")
        return 0
    if args.haar_lib:
        sys.path.insert(0, str(args.haar_lib))
    try:
        import cv2  # only to measure the old Haar path; agecourse does not depend on OpenCV
    except ImportError:
        cv2 = None
    from bench_photo import HAAR_PAD, haar_boxes

    from agecourse.deploy import NotAnImage, detect_faces, read_image

    sample = random.Random(args.seed).sample(chips, min(args.n, len(chips)))
    found = {"mtcnn": 0} | ({"unpadded": 0, "padded": 0} if cv2 is not None else {})
    unreadable = []
    start = time.monotonic()
    for chip in sample:
        try:
            rgb = read_image(chip)
        except NotAnImage as error:  # the sample's one malformed file is counted, not hidden
            unreadable.append(f"{chip.name}: {error}")
            continue
        found["mtcnn"] += bool(detect_faces(rgb))
        if cv2 is not None:
            found["unpadded"] += bool(haar_boxes(rgb, cv2, pad=0.0))
            found["padded"] += bool(haar_boxes(rgb, cv2, pad=HAAR_PAD))
    searched = len(sample) - len(unreadable)
    result = {
        "settings": {
            "data": str(args.data),
            "n": len(sample),
            "seed": args.seed,
            "pad": HAAR_PAD,
            "haar": None if cv2 is None else f"opencv {cv2.__version__}",
        },
        "searched": searched,
        "unreadable": unreadable,
        "found": found,
        "found_share": {key: value / searched for key, value in found.items()},
        "wall_s": round(time.monotonic() - start, 1),
    }
    write_result("detect", result)
    print(f"faces found in {searched} chips: {found}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
