"""How often the Haar detector finds the face on a real UTKFace chip, with and without the padding
``agecourse.deploy.detect_faces`` adds (lesson 13 quotes these numbers; ``bench_report.py`` writes
them into the lesson).

A seeded sample of ``--n`` chips (default 500) from ``../shared/data/utkface-part1`` is searched
twice: with ``pad=0`` (the image as it is) and with ``pad=DETECT_PAD`` (a replicated border).

    python bench/bench_detect.py [--n 500] [--seed 0]

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
    args = parser.parse_args(argv)
    chips = sorted(args.data.glob("*.jpg")) if args.data.is_dir() else []
    if not chips:
        print(f"SKIPPED: no UTKFace chips at {args.data}; nothing to measure.")
        return 0
    from agecourse.deploy import DETECT_PAD, NotAnImage, detect_faces, read_image

    sample = random.Random(args.seed).sample(chips, min(args.n, len(chips)))
    found = {"unpadded": 0, "padded": 0}
    unreadable = []
    start = time.monotonic()
    for chip in sample:
        try:
            rgb = read_image(chip)
        except NotAnImage as error:  # the sample's one malformed file is counted, not hidden
            unreadable.append(f"{chip.name}: {error}")
            continue
        found["unpadded"] += bool(detect_faces(rgb, pad=0.0))
        found["padded"] += bool(detect_faces(rgb, pad=DETECT_PAD))
    searched = len(sample) - len(unreadable)
    result = {
        "settings": {"data": str(args.data), "n": len(sample), "seed": args.seed, "pad": DETECT_PAD},
        "searched": searched,
        "unreadable": unreadable,
        "found": found,
        "found_share": {key: value / searched for key, value in found.items()},
        "wall_s": round(time.monotonic() - start, 1),
    }
    write_result("detect", result)
    print(f"faces found in {found['unpadded']} of {searched} chips unpadded, {found['padded']} padded")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
