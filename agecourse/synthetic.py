"""Synthetic faces: procedurally drawn cartoon faces that stand in for UTKFace offline.

Introduced in lesson 01.

**These faces are synthetic. They are not photographs and not real people.** They exist only so
that every lesson, test and CI job runs without downloading UTKFace (first run, no network, no
licence accepted yet). Results on them say nothing about real faces.

Each face is drawn with PIL from its labels (:mod:`agecourse.face_drawing`, step by step), with the
same meaning as in UTKFace file names:

* **age** (0-116) sets the head proportions (babies: round head, big forehead, eyes low on the
  face, big eyes; adults: longer face), the lines that appear after about 35 (forehead, smile
  lines, crow's feet, eye bags), greying and then white hair, a receding or bald head for many old
  men, and sagging jowls for the very old;
* **gender** (0 male, 1 female) sets the usual hair length, jaw width, eyebrows, lip colour,
  earrings, and facial hair (beard, moustache, stubble) on many adult men only;
* **race** (0 White, 1 Black, 2 Asian, 3 Indian, 4 Others) sets a skin-tone *distribution*
  (the ranges overlap, as they do in real life) and **nothing else**: head, eye, nose and mouth
  geometry, hair and eye colour are drawn the same way for every code (``tests/test_synthetic.py``
  checks that the outline of a face does not change with the race code).

These cues are simplifications chosen to make a learnable toy, not facts about people: real skin
tone does not determine anyone's ethnicity, and hair length, lipstick, earrings and facial hair do
not determine anyone's gender. Lesson 02 says so where the faces first appear.

Everything else is random nuisance (background, position, rotation, scale, lighting, eye and mouth
shape, hair and eye colour, glasses, clothing, noise), so a model cannot memorise the pictures but can still learn the
labels: a small CNN reaches an age error well below guessing the mean and a gender accuracy well
above chance (see ``tests/test_synthetic.py``). The labels follow UTKFace's skewed distribution
(:func:`sample_labels`).

Generation is deterministic: face ``i`` of a set depends only on ``(seed, i)``.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from agecourse import config
from agecourse.face_drawing import draw_layer

__all__ = [
    "GENERATOR_VERSION",
    "MANIFEST_NAME",
    "default_synthetic_dir",
    "draw_face",
    "make_synthetic_faces",
    "sample_labels",
]

# Bump whenever the drawing (here or in agecourse.face_drawing) or the label sampling changes:
# cached sets with an older version are regenerated instead of silently reused.
GENERATOR_VERSION = 2
MANIFEST_NAME = "SYNTHETIC_FACES.txt"
# A fixed, obviously fake capture date keeps the UTKFace-style names valid (17 digits) and unique.
_DATETIME_BASE = 20000101000000000
# Only names with that fake date count as synthetic: real UTKFace chips (dated 2016-2017) never
# match, so a real dataset folder is never mistaken for a stale synthetic set and deleted.
_SYNTHETIC_NAME = re.compile(r"^\d{1,3}_[01]_[0-4]_20000101\d{9}\.jpg\.chip\.jpg$")
_SUPERSAMPLE = 2  # draw at twice the size and box-downsample: cheap anti-aliasing

# Label proportions of UTKFace (about 23,700 faces): 52 % male; races in code order 0-4.
_P_FEMALE = 0.48
_RACE_P = np.array([0.42, 0.19, 0.15, 0.17, 0.07])


# --- labels --------------------------------------------------------------------------------


def _age_weights() -> np.ndarray:
    """Relative frequency of each age 0..116, shaped like UTKFace's histogram.

    A bump of babies and toddlers (age 1 is UTKFace's most common age), few school children,
    a broad peak at 20-35 and a long tail past 100.
    """
    ages = np.arange(117, dtype=float)
    toddlers = np.where((ages >= 1) & (ages <= 5), np.exp(-(ages - 1) / 1.6), 0.0)
    children = np.where((ages >= 6) & (ages <= 15), 1.0, 0.0)
    young = np.exp(-0.5 * ((ages - 28) / 6.5) ** 2)
    middle = np.exp(-0.5 * ((ages - 48) / 15.0) ** 2)
    tail = np.where(ages >= 60, np.exp(-(ages - 60) / 11.0), 0.0)
    weights = 0.115 * toddlers / toddlers.sum() + 0.06 * children / children.sum()
    weights += 0.42 * young / young.sum() + 0.29 * middle / middle.sum() + 0.115 * tail / tail.sum()
    weights[0] = 0.0  # UTKFace has no age-0 faces; babies are labelled 1
    return weights / weights.sum()


def sample_labels(n: int, seed: int = 0) -> pd.DataFrame:
    """Draw ``n`` label rows ``(age, gender, race)`` distributed roughly like UTKFace.

    Ages: about 11 % aged 1-5, most between 20 and 35, a long tail to 100+. Gender: 52 % male
    (0), 48 % female (1). Race: White 42 %, Black 19 %, Asian 15 %, Indian 17 %, Others 7 %.
    The same ``(n, seed)`` always gives the same table.

    >>> sample_labels(3, seed=0).columns.tolist()
    ['age', 'gender', 'race']
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    # Its own stream (spawn key (1,)), separate from the per-face streams (0, i).
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    age = rng.choice(117, size=n, p=_age_weights())
    gender = (rng.random(n) < _P_FEMALE).astype(int)
    race = rng.choice(5, size=n, p=_RACE_P / _RACE_P.sum())
    return pd.DataFrame({"age": age, "gender": gender, "race": race}).astype("int32")


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    """A random two-colour linear gradient (float RGB), like the varied backdrops of UTKFace."""
    c0 = rng.uniform(20, 235, 3).astype(np.float32)
    c1 = np.clip(c0 + rng.normal(0, 45, 3), 0, 255).astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    t = math.cos(angle) * ramp[None, :] + math.sin(angle) * ramp[:, None] + 0.5
    return c0 + (c1 - c0) * t[..., None]


def _pose(layer: Image.Image, s: int, rng: np.random.Generator) -> Image.Image:
    """Pose nuisance: a small rotation, scale and shift, like imperfect face alignment."""
    angle = math.radians(rng.normal(0, 5))
    scale = rng.uniform(0.9, 1.1)
    shift = rng.normal(0, 0.03, 2) * s
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    c = s / 2
    # Inverse map (output pixel -> layer pixel) around the centre, as Image.transform expects.
    coeffs = (
        cos,
        sin,
        c - cos * (c + shift[0]) - sin * (c + shift[1]),
        -sin,
        cos,
        c + sin * (c + shift[0]) - cos * (c + shift[1]),
    )
    # Nearest-neighbour is several times faster than bilinear here, and the box reduction right
    # after it smooths the edges anyway.
    return layer.transform((s, s), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.NEAREST)


def _light_and_noise(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Lighting nuisance (exposure, colour cast, a soft light from one side) and sensor noise."""
    direction = rng.uniform(0, 2 * math.pi)
    ramp = np.linspace(-1, 1, size, dtype=np.float32)
    light = 1 + rng.uniform(0, 0.22) * (math.cos(direction) * ramp[None, :] + math.sin(direction) * ramp[:, None])
    gain = (rng.uniform(0.8, 1.15) * rng.normal(1.0, 0.03, 3)).astype(np.float32)
    img = img * (light[..., None] * gain)
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    img += noise * np.float32(rng.uniform(1, 6)) + np.float32(0.5)
    return img


def draw_face(
    age: int, gender: int, race: int, size: int = 64, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """Draw one *synthetic* face (not a real person) as a ``uint8`` array of shape ``(size, size, 3)``.

    Args:
        age: 0-116 years: head proportions, lines, grey hair, baldness.
        gender: 0 male, 1 female: hair length, jaw, facial hair, lip colour, earrings.
        race: 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others: the skin-tone distribution only.
        size: side in pixels (any size from about 16; 32-224 is typical).
        rng: a ``numpy.random.Generator`` (or an int seed) for the random look; ``None`` draws from
            fresh entropy (not reproducible).

    The same labels and generator state always give the same picture.
    """
    if not 0 <= age <= 116:
        raise ValueError(f"age must be 0-116, got {age}")
    if gender not in (0, 1):
        raise ValueError(f"gender must be 0 or 1, got {gender}")
    if race not in (0, 1, 2, 3, 4):
        raise ValueError(f"race must be 0-4, got {race}")
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    s = size * _SUPERSAMPLE
    layer = draw_layer(float(age), int(gender), int(race), s, rng)

    layer = _pose(layer, s, rng).reduce(_SUPERSAMPLE)
    rgba = np.asarray(layer, dtype=np.float32)
    alpha = rgba[..., 3:] / 255.0
    img = _background(size, rng) * (1 - alpha) + rgba[..., :3] * alpha
    img = _light_and_noise(img, size, rng)
    return np.clip(img, 0, 255).astype(np.uint8)


# --- files -------------------------------------------------------------------------------------


def face_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of face ``index`` in a set made with ``seed`` (depends on nothing else).

    Equal to ``np.random.SeedSequence(seed).spawn(...)[index]`` under spawn key ``(0, index)``.
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, index)))


def default_synthetic_dir(n: int, size: int, seed: int) -> Path:
    """Cache folder for a synthetic set: ``<cache>/synthetic-faces-n{n}-s{size}-seed{seed}``.

    ``<cache>`` is :func:`agecourse.config.cache_dir`, the same place downloads go.
    """
    return config.cache_dir() / f"synthetic-faces-n{n}-s{size}-seed{seed}"


def _file_name(age: int, gender: int, race: int, index: int) -> str:
    return f"{age}_{gender}_{race}_{_DATETIME_BASE + index}.jpg.chip.jpg"


def _manifest_text(n: int, size: int, seed: int) -> str:
    return (
        "SYNTHETIC FACES - NOT REAL PEOPLE\n"
        "These images were drawn by a program (agecourse.synthetic). They are cartoons, not\n"
        "photographs of anyone, and stand in for UTKFace only so that the course runs offline.\n"
        "File names follow UTKFace: age_gender_race_datetime.jpg.chip.jpg (the date is fake).\n"
        "\n"
        f"generator_version={GENERATOR_VERSION}\nn={n}\nsize={size}\nseed={seed}\n"
    )


def _read_manifest(folder: Path) -> dict[str, str] | None:
    try:
        text = (folder / MANIFEST_NAME).read_text(encoding="utf-8")
    except OSError:
        return None
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _is_complete(folder: Path, n: int, size: int, seed: int) -> bool:
    """True when ``folder`` holds exactly the set the manifest describes, all files present."""
    params = _read_manifest(folder)
    wanted = {"generator_version": str(GENERATOR_VERSION), "n": str(n), "size": str(size), "seed": str(seed)}
    if params is None or any(params.get(k) != v for k, v in wanted.items()):
        return False
    present = {p for p in os.listdir(folder) if _SYNTHETIC_NAME.match(p)}
    return len(present) == n


def _write_set(folder: Path, n: int, size: int, seed: int) -> None:
    labels = sample_labels(n, seed)
    for i, (age, gender, race) in enumerate(labels[["age", "gender", "race"]].itertuples(index=False)):
        pixels = draw_face(int(age), int(gender), int(race), size=size, rng=face_rng(seed, i))
        Image.fromarray(pixels).save(folder / _file_name(int(age), int(gender), int(race), i), "JPEG", quality=92)
    # Written last: a set interrupted half-way has no manifest and is regenerated next time.
    (folder / MANIFEST_NAME).write_text(_manifest_text(n, size, seed), encoding="utf-8")


def make_synthetic_faces(
    dest: str | os.PathLike, n: int = 600, size: int = 64, seed: int = 0, overwrite: bool = False
) -> Path:
    """Write ``n`` *synthetic* faces (not real people) as UTKFace-named JPEGs into ``dest``.

    Names are ``{age}_{gender}_{race}_{datetime}.jpg.chip.jpg`` with a fake, unique 17-digit date
    (``20000101000000000 + i``), so the normal UTKFace loader reads them. A manifest,
    ``SYNTHETIC_FACES.txt``, says that the faces are synthetic and records ``n``, ``size``, ``seed``
    and the generator version. When it matches, nothing is redrawn (calling twice is cheap) unless
    ``overwrite=True``. The output is identical for the same arguments.

    Only synthetic files are ever replaced: a folder holding other images (real UTKFace, say) raises
    :class:`FileExistsError` rather than mixing cartoons into it. Returns ``dest``.
    """
    if n < 1 or size < 8:
        raise ValueError(f"need n >= 1 and size >= 8, got n={n}, size={size}")
    dest = Path(dest).expanduser()
    if dest.is_dir() and not overwrite and _is_complete(dest, n, size, seed):
        return dest
    if dest.is_dir():
        names = os.listdir(dest)
        foreign = [p for p in names if p.lower().endswith((".jpg", ".jpeg", ".png")) and not _SYNTHETIC_NAME.match(p)]
        if foreign:
            raise FileExistsError(
                f"{dest} holds {len(foreign)} images that are not synthetic faces "
                f"(e.g. {foreign[0]}); choose an empty folder"
            )
        (dest / MANIFEST_NAME).unlink(missing_ok=True)
        for p in names:  # a stale or partial synthetic set
            if _SYNTHETIC_NAME.match(p):
                (dest / p).unlink()
        _write_set(dest, n, size, seed)
        return dest
    # A new folder is filled under a temporary name and renamed in one step, so a concurrent run
    # (or an interrupted one) never sees a half-written set.
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        _write_set(tmp, n, size, seed)
        try:
            tmp.rename(dest)
        except OSError:
            if not _is_complete(dest, n, size, seed):  # not another run's identical set: a real error
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
