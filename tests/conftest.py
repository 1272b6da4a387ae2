"""Shared fixtures. Tests run offline on synthetic faces and tiny fixtures built here; the real
UTKFace sample in ../shared is used only by tests marked ``real_data``, which skip without it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
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


def make_tiny_split(folder: Path, sizes: tuple[int, int, int] = (16, 6, 6), side: int = 40):
    """A :class:`~agecourse.data.Split` of random-pixel JPEGs with UTKFace names: ages spread over
    5-110, genders alternating, races cycling. Enough for a real training of a second or two."""
    from agecourse.data import Split

    parts = []
    for part, count in zip(("train", "val", "test"), sizes):
        rows = []
        for i in range(count):
            age, gender, race = 5 + (7 * i + 3 * len(part)) % 106, i % 2, i % 5
            path = write_image(folder / part / f"{age}_{gender}_{race}_2017{i:04d}.jpg", size=(side, side), seed=i)
            rows.append({"path": str(path), "age": age, "gender": gender, "race": race})
        parts.append(pd.DataFrame(rows))
    return Split(*parts)


@pytest.fixture
def split_maker():
    """The :func:`make_tiny_split` helper, for tests that need a split of their own size."""
    return make_tiny_split


@pytest.fixture(scope="session")
def tiny_split(tmp_path_factory):
    """16 / 6 / 6 random 40 px JPEGs with UTKFace labels (see :func:`make_tiny_split`), made once."""
    return make_tiny_split(tmp_path_factory.mktemp("tiny-split"))


@pytest.fixture
def tiny_settings(tmp_path, monkeypatch):
    """``ci`` settings for real trainings of a second or two, artifacts in a fresh folder: Model A at
    24 px with two narrow blocks, Model B at 32 px (MobileNetV2 alpha 0.35), one epoch per phase."""
    from agecourse.config import get_settings

    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path / "artifacts"))
    return get_settings(
        "ci",
        image_size=24,
        model_filters=(4, 8),
        dense_units=8,
        epochs=1,
        batch_size=8,
        cache=None,
        transfer_image_size=32,
        transfer_alpha=0.35,
        transfer_epochs_frozen=1,
        transfer_epochs_finetune=1,
    )


def make_prediction_table(age, gender, age_pred, gender_prob, race=None) -> pd.DataFrame:
    """A table with the columns of :func:`agecourse.evaluate.predict_table`, from hand-chosen labels
    and predictions, so that metrics on it have answers one can work out by hand."""
    from agecourse.data import age_band

    table = pd.DataFrame({"age": age, "gender": gender, "age_pred": age_pred, "gender_prob": gender_prob})
    if race is not None:
        table["race"] = race
    table["gender_pred"] = (table["gender_prob"] >= 0.5).astype(int)
    table["age_error"] = table["age_pred"] - table["age"]
    table["age_band"] = age_band(table["age"])
    return table


@pytest.fixture
def table_maker():
    """The :func:`make_prediction_table` helper."""
    return make_prediction_table
