"""Shared fixtures. Tests run offline on synthetic faces and tiny fixtures built here; the real
UTKFace sample in ../shared is used only by tests marked ``real_data``, which skip without it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = ROOT.parent / "shared" / "data" / "utkface-part1"

# Set before TensorFlow or a notebook kernel starts, so they inherit it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["AGECOURSE_PROFILE"] = "ci"
os.environ.setdefault("AGECOURSE_DATA_DIR", str(ROOT / "build" / "test-cache"))
os.environ.setdefault("AGECOURSE_ARTIFACTS", str(ROOT / "build" / "test-artifacts"))
# Lessons save splits and models here and later lessons reuse them: start each session clean so a
# stale artifact from older code can never make a notebook pass.
shutil.rmtree(os.environ["AGECOURSE_ARTIFACTS"], ignore_errors=True)
os.environ.pop("AGECOURSE_DATA", None)  # the ci profile never reads a local copy of UTKFace
# No test downloads UTKFace (setup(profile="gpu") would on first use); tests of that path re-enable it.
os.environ["AGECOURSE_AUTO_FETCH"] = "0"


def write_image(
    path: Path, size: tuple[int, int] = (40, 40), mode: str = "RGB", fmt: str = "JPEG", seed: int = 0
) -> Path:
    """Write a small random image of the given mode and format (helper for fixtures)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1, "CMYK": 4}[mode]
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    image = Image.fromarray(pixels.squeeze() if channels == 1 else pixels, mode=mode if mode != "CMYK" else None)
    if mode == "CMYK":
        image = Image.fromarray(pixels[..., :3]).convert("CMYK")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, fmt)
    return path


@pytest.fixture
def image_writer():
    """The :func:`write_image` helper, for tests that build their own fixture folders."""
    return write_image


@pytest.fixture(scope="session")
def synthetic_dir() -> Path:
    """600 synthetic faces (not real people) at 64 px, generated once per session into the cache."""
    from agecourse.synthetic import default_synthetic_dir, make_synthetic_faces

    return make_synthetic_faces(default_synthetic_dir(600, 64, 42), n=600, size=64, seed=42)


@pytest.fixture
def real_data_dir() -> Path:
    """The shared real UTKFace sample; the test is skipped where it is absent."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real UTKFace sample not available at {REAL_DATA}")
    return REAL_DATA
