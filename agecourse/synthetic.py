"""Synthetic faces: procedurally drawn cartoon faces that stand in for UTKFace offline.

Introduced in lesson 01.

**These faces are synthetic. They are not photographs and not real people.** They exist only so
that every lesson, test and CI job runs without downloading UTKFace (first run, no network, no
licence accepted yet). Results on them say nothing about real faces.

Each face is drawn with PIL from its labels, with the same meaning as in UTKFace file names:

* **age** (0-116) sets the head proportions (babies: round head, big forehead, eyes low on the
  face, big eyes; adults: longer face), the lines that appear after about 35 (forehead, smile
  lines, crow's feet, eye bags), greying and then white hair, a receding or bald head for many old
  men, and sagging jowls for the very old;
* **gender** (0 male, 1 female) sets the usual hair length, jaw width, eyebrows, lip colour,
  earrings, and facial hair (beard, moustache, stubble) on many adult men only;
* **race** (0 White, 1 Black, 2 Asian, 3 Indian, 4 Others) sets a skin-tone *distribution*
  (the ranges overlap, as they do in real life) and tendencies for hair and eye colour.

Everything else is random nuisance (background, position, rotation, scale, lighting, eye and mouth
shape, glasses, clothing, noise), so a model cannot memorise the pictures but can still learn the
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
from PIL import Image, ImageDraw

from agecourse import config

__all__ = [
    "GENERATOR_VERSION",
    "MANIFEST_NAME",
    "default_synthetic_dir",
    "draw_face",
    "make_synthetic_faces",
    "sample_labels",
]

# Bump whenever the drawing or the label sampling changes: cached sets with an older version are
# regenerated instead of silently reused.
GENERATOR_VERSION = 1
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


# --- colours ---------------------------------------------------------------------------------

# Skin tones from light to dark; a tone in [0, 1] is interpolated along this ramp.
_SKIN_RAMP = np.array(
    [[250, 224, 205], [236, 196, 164], [214, 164, 122], [176, 122, 82], [128, 84, 56], [84, 55, 38]], dtype=float
)
# (mean, sd) of the skin tone per race code. The ranges overlap on purpose: skin tone alone does not
# determine the label, as in real photographs.
_SKIN_TONE = {0: (0.18, 0.09), 1: (0.80, 0.10), 2: (0.30, 0.09), 3: (0.55, 0.12), 4: (0.45, 0.17)}
_HAIR = {  # (colour, weight) per race code
    0: [((60, 40, 25), 3), ((110, 75, 45), 3), ((200, 165, 100), 2), ((150, 70, 35), 1), ((25, 20, 18), 1)],
    1: [((22, 18, 16), 6), ((50, 35, 25), 2)],
    2: [((18, 16, 16), 6), ((55, 38, 25), 2)],
    3: [((20, 17, 15), 5), ((50, 35, 25), 2)],
    4: [((30, 22, 18), 3), ((70, 48, 30), 3), ((120, 80, 45), 1)],
}
_EYES = {  # iris colour tendencies per race code
    0: [((70, 110, 160), 3), ((90, 120, 80), 2), ((95, 60, 35), 4)],
    1: [((50, 30, 20), 1)],
    2: [((45, 30, 20), 1)],
    3: [((55, 35, 22), 1)],
    4: [((60, 40, 25), 3), ((90, 110, 80), 1)],
}
_CLOTHES = [
    (40, 60, 120),
    (160, 40, 40),
    (40, 40, 40),
    (230, 230, 230),
    (60, 120, 70),
    (200, 170, 60),
    (110, 60, 130),
    (90, 90, 100),
    (200, 120, 150),
    (70, 130, 170),
]


def _pick(rng: np.random.Generator, options: list) -> tuple:
    """One value from ``[(value, weight), ...]`` (plain Python: ``rng.choice`` is slow for a single pick)."""
    x = rng.random() * sum(w for _, w in options)
    for value, weight in options:
        x -= weight
        if x < 0:
            return value
    return options[-1][0]


def _mix(a, b, t: float) -> tuple[int, int, int]:
    """Blend two RGB colours: ``t=0`` gives ``a``, ``t=1`` gives ``b``."""
    t = min(max(float(t), 0.0), 1.0)
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))


def _shade(color, factor: float) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, round(c * factor)))) for c in color)


def _skin(rng: np.random.Generator, race: int, age: float) -> tuple[int, int, int]:
    mean, sd = _SKIN_TONE[int(race)]
    tone = float(np.clip(rng.normal(mean, sd), 0.0, 1.0))
    pos = tone * (len(_SKIN_RAMP) - 1)
    lo = int(min(pos, len(_SKIN_RAMP) - 2))
    color = _SKIN_RAMP[lo] + (_SKIN_RAMP[lo + 1] - _SKIN_RAMP[lo]) * (pos - lo)
    color = color * rng.normal(1.0, 0.03, 3)  # small hue jitter
    if age < 4:  # babies look a little pinker
        color = color + np.array([8.0, -2.0, 0.0])
    return tuple(int(c) for c in np.clip(color, 0, 255))


# --- drawing ---------------------------------------------------------------------------------


def _smooth(x: float, lo: float, hi: float) -> float:
    """0 below ``lo``, 1 above ``hi``, a smooth ramp between (smoothstep)."""
    t = min(max((x - lo) / (hi - lo), 0.0), 1.0)
    return t * t * (3 - 2 * t)


def _draw_layer(age: float, gender: int, race: int, s: int, rng: np.random.Generator) -> Image.Image:
    """Draw the person (hair, head, face, neck, shoulders) on a transparent ``s`` x ``s`` RGBA layer.

    Geometry is in units of the picture side (0..1), converted to pixels at the last moment.
    Every random draw happens in a fixed order so a face depends only on its generator.
    """
    female = gender == 1
    layer = Image.new("RGBA", (s, s), (128, 128, 128, 0))
    d = ImageDraw.Draw(layer)

    def box(x0: float, y0: float, x1: float, y1: float) -> list[float]:
        return [x0 * s, y0 * s, x1 * s, y1 * s]

    def lw(frac: float) -> int:  # a line width that stays visible at every size
        return max(1, int(round(frac * s)))

    def line(points, color, width: float) -> None:
        d.line([(x * s, y * s) for x, y in points], fill=color, width=lw(width), joint="curve")

    # Growth: 0 for a newborn, 1 for an adult; fast in the first years like real growth.
    grow = (min(age, 18.0) / 18.0) ** 0.6
    old = _smooth(age, 35, 85)  # 0 until 35, then lines, sagging and grey hair build up
    skin = _skin(rng, race, age)
    shadow = _shade(skin, 0.82)

    # --- proportions ---
    hh = 0.33 + 0.02 * grow + rng.normal(0, 0.008)  # half head height
    aspect = (1.02 + 0.27 * grow - (0.03 if female else 0.0)) * rng.normal(1.0, 0.025)
    hw = hh / aspect  # half head width
    jaw = hw * ((0.96 - (0.16 if female else 0.06) * grow) + rng.normal(0, 0.025))
    cx, cy = 0.5, 0.5
    top, chin = cy - hh, cy + hh + 0.025 * old * (gender == 0)
    # Eyes sit low on a baby's face (big forehead) and near the middle on an adult's.
    eye_y = top + 2 * hh * (0.58 - 0.12 * grow + rng.normal(0, 0.01))
    eye_dx = hw * (0.44 + rng.normal(0, 0.025))
    eye_rx = (0.060 - 0.022 * grow) * rng.normal(1.0, 0.07)
    eye_ry = eye_rx * (0.62 + rng.normal(0, 0.06)) * (1 - 0.25 * old) * (0.85 if race == 2 else 1.0)
    nose_y = eye_y + (chin - eye_y) * (0.40 + rng.normal(0, 0.02))
    mouth_y = eye_y + (chin - eye_y) * (0.68 + rng.normal(0, 0.02))
    mouth_w = (0.085 + 0.045 * grow) * rng.normal(1.0, 0.1)

    # --- hair style ---
    hair = _mix(_pick(rng, _HAIR[int(race)]), (200, 170, 120), 0.35 * (1 - grow) * (race == 0))
    # Greying starts anywhere from the late 30s; by 75 most hair is grey, later white.
    grey_age = rng.normal(52, 8)
    greyness = _smooth(age, grey_age - 14, grey_age + 20)
    grey = (150, 150, 150) if age < 70 else _mix((190, 190, 190), (238, 238, 236), (age - 70) / 25)
    hair = _mix(hair, _shade(grey, rng.normal(1.0, 0.05)), greyness)
    if age < 2:
        style = "fuzz"  # babies: thin, sparse hair
    elif female:
        style = _pick(rng, [("long", 6), ("bob", 2 + 3 * old), ("short", 1 + 2 * old), ("pigtails", 3 * (age < 12))])
    else:
        style = _pick(rng, [("short", 10), ("long", 1), ("buzz", 2)])
    # Receding hairline and baldness: common in older men, rare in women.
    recede = 0.0 if female else float(np.clip(rng.normal(_smooth(age, 25, 75) * 0.7, 0.25), 0, 1))
    bald = (not female) and age > 30 and rng.random() < 0.45 * _smooth(age, 35, 80)
    hairline = top + 2 * hh * (0.14 + 0.04 * (1 - grow) + 0.16 * recede)
    volume = 0.03 if style != "buzz" else 0.01
    hair_len = {"long": rng.uniform(0.12, 0.4), "bob": rng.uniform(-0.02, 0.08)}.get(style, 0.0)

    # --- shoulders, neck (drawn first: everything else overlaps them) ---
    clothes = _CLOTHES[int(rng.integers(len(_CLOTHES)))]
    shoulder_w = 0.25 + 0.2 * grow + (0.05 if not female else 0.0)
    d.ellipse(box(cx - shoulder_w, chin + 0.06, cx + shoulder_w, chin + 0.06 + 0.6), fill=clothes)
    neck_w = jaw * (0.55 if female else 0.68)
    d.rectangle(box(cx - neck_w, mouth_y, cx + neck_w, chin + 0.1), fill=shadow)

    # --- hair behind the head ---
    if style in ("long", "bob") and not bald:
        d.rounded_rectangle(
            box(cx - hw - volume - 0.02, top - volume, cx + hw + volume + 0.02, chin + hair_len),
            radius=0.12 * s,
            fill=hair,
        )
    elif style == "pigtails":
        for side in (-1, 1):
            px = cx + side * (hw + 0.05)
            d.ellipse(box(px - 0.05, eye_y - 0.02, px + 0.05, eye_y + 0.16), fill=hair)
    if style != "fuzz":
        # Side hair over the ears' height, also left on bald men (a horseshoe of hair).
        d.ellipse(box(cx - hw - volume, top - volume, cx + hw + volume, eye_y + 0.4 * (chin - eye_y)), fill=hair)

    # --- ears and head ---
    ear_h = (0.07 + 0.02 * grow + 0.015 * old) * rng.normal(1.0, 0.08)
    for side in (-1, 1):
        ex = cx + side * hw * 0.97
        d.ellipse(box(ex - 0.028, eye_y - 0.2 * ear_h, ex + 0.028, eye_y + 0.8 * ear_h), fill=shadow)
    d.ellipse(box(cx - hw, top, cx + hw, top + 2 * hh * 0.82), fill=skin)  # cranium
    jaw_top = top + 2 * hh * 0.3
    d.ellipse(box(cx - jaw, jaw_top, cx + jaw, chin), fill=skin)  # cheeks and jaw
    if old > 0.55:  # jowls: the lower face sags and widens
        sag = (old - 0.55) * 0.06
        for side in (-1, 1):
            jx = cx + side * jaw * 0.62
            d.ellipse(box(jx - 0.06, mouth_y - 0.02, jx + 0.06, chin - 0.02 + sag), fill=skin)

    # --- hair on top of the head (fringe / cap) ---
    if style == "fuzz":
        if age >= 1 or rng.random() < 0.5:
            d.chord(box(cx - hw, top - 0.005, cx + hw, top + 2 * hh * 0.82), 200, 340, fill=_mix(skin, hair, 0.55))
    elif not bald:
        # Chord of the cranium ellipse cut by the hairline; a thicker ellipse gives hair volume.
        ry = hh * 0.82
        ecy = top + ry
        sin_phi = max(-0.99, min(0.0, (hairline - ecy) / ry))
        # Whole degrees: Pillow mis-fills chords (stray bars across the picture) at fractional angles.
        phi = round(math.degrees(math.asin(sin_phi)))
        d.chord(
            box(cx - hw - volume, top - volume, cx + hw + volume, top + 2 * ry + volume),
            180 - phi,
            360 + phi,
            fill=hair,
        )
        if female and style in ("long", "bob") and rng.random() < 0.5:  # side-swept fringe
            side = 1 if rng.random() < 0.5 else -1
            d.polygon(
                [
                    (cx * s, hairline * s),
                    ((cx + side * hw) * s, (hairline - 0.02) * s),
                    ((cx + side * hw) * s, (eye_y - 0.07) * s),
                ],
                fill=hair,
            )

    # --- facial hair: adult men only ---
    beard_kind = "none"
    if not female and age >= 17:
        beard_kind = _pick(rng, [("none", 4), ("full", 2.2), ("stubble", 2), ("moustache", 1.2), ("goatee", 0.6)])
    elif not female and age >= 14:
        beard_kind = _pick(rng, [("none", 3), ("fuzz", 1)])
    beard = hair if not (age > 45 and rng.random() < 0.3) else _mix(hair, (220, 220, 218), 0.5)
    if beard_kind in ("full", "stubble", "fuzz"):
        color = {"full": beard, "stubble": _mix(skin, beard, 0.45), "fuzz": _mix(skin, beard, 0.25)}[beard_kind]
        ry = (chin - jaw_top) / 2
        ecy = jaw_top + ry
        start_y = nose_y + 0.01 if beard_kind == "full" else mouth_y - 0.035
        phi = round(math.degrees(math.asin(max(0.0, min(0.99, (start_y - ecy) / ry)))))  # whole degrees, as above
        d.chord(
            box(cx - jaw, jaw_top, cx + jaw, chin + (0.015 if beard_kind == "full" else 0.0)),
            phi,
            180 - phi,
            fill=color,
        )
    if beard_kind in ("moustache", "full", "goatee"):
        d.chord(box(cx - mouth_w * 0.65, nose_y + 0.015, cx + mouth_w * 0.65, mouth_y + 0.02), 180, 360, fill=beard)
    if beard_kind == "goatee":
        d.ellipse(box(cx - mouth_w * 0.35, mouth_y + 0.02, cx + mouth_w * 0.35, chin + 0.01), fill=beard)

    # --- eyes and brows ---
    iris = _pick(rng, _EYES[int(race)])
    brow_color = _mix(_shade(hair, 0.8), hair, 0.5) if style != "fuzz" else _mix(skin, hair, 0.4)
    brow_w = (0.014 if female else 0.022) * (0.6 + 0.4 * grow)
    brow_lift = rng.normal(0.0, 0.008)
    for side in (-1, 1):
        ex = cx + side * eye_dx
        d.ellipse(box(ex - eye_rx, eye_y - eye_ry, ex + eye_rx, eye_y + eye_ry), fill=(245, 245, 240))
        ir = min(eye_ry, eye_rx * 0.55)
        d.ellipse(box(ex - ir, eye_y - ir, ex + ir, eye_y + ir), fill=iris)
        pr = ir * 0.45
        d.ellipse(box(ex - pr, eye_y - pr, ex + pr, eye_y + pr), fill=(10, 10, 10))
        if old > 0.5:  # heavier upper lids with age
            d.chord(
                box(ex - eye_rx * 1.05, eye_y - eye_ry * 1.3, ex + eye_rx * 1.05, eye_y + eye_ry * 1.1),
                180,
                360,
                fill=_mix(skin, shadow, 0.5),
            )
        by = eye_y - eye_ry - 0.03 - (0.012 if female else 0.0) + brow_lift
        arch = 0.012 if female else 0.004
        line(
            [(ex - side * eye_rx * 1.1, by + 0.006), (ex, by - arch), (ex + side * eye_rx * 1.3, by + 0.004)],
            brow_color,
            brow_w,
        )

    # --- nose and mouth ---
    nose_w = (0.028 + 0.02 * grow + 0.01 * old) * rng.normal(1.0, 0.1)
    d.chord(box(cx - nose_w, nose_y - 0.03, cx + nose_w, nose_y + 0.012), 20, 160, fill=_shade(skin, 0.7))
    lip = _mix(skin, (190, 70, 80), 0.35)
    if female and age >= 16 and rng.random() < 0.6:  # lipstick
        lip = _pick(rng, [((185, 30, 50), 2), ((200, 80, 110), 1), ((150, 40, 60), 1)])
    lip_h = (0.018 + 0.01 * rng.random()) * (1 - 0.35 * old)
    smile = rng.random() < 0.5
    if smile:
        d.chord(box(cx - mouth_w / 2, mouth_y - lip_h * 1.4, cx + mouth_w / 2, mouth_y + lip_h * 1.6), 0, 180, fill=lip)
    else:
        d.ellipse(box(cx - mouth_w / 2, mouth_y - lip_h, cx + mouth_w / 2, mouth_y + lip_h), fill=lip)
        line([(cx - mouth_w / 2, mouth_y), (cx + mouth_w / 2, mouth_y)], _shade(lip, 0.6), 0.006)
    if female and age >= 12 and rng.random() < 0.35:  # earrings
        for side in (-1, 1):
            ex = cx + side * hw * 0.99
            d.ellipse(
                box(ex - 0.012, eye_y + 0.8 * ear_h - 0.01, ex + 0.012, eye_y + 0.8 * ear_h + 0.014),
                fill=(230, 200, 80),
            )
    if age < 12 or (female and rng.random() < 0.3):  # rosy cheeks / blush
        blush = _mix(skin, (235, 120, 120), 0.35)
        for side in (-1, 1):
            bx = cx + side * hw * 0.55
            d.ellipse(box(bx - 0.035, nose_y - 0.02, bx + 0.035, nose_y + 0.03), fill=blush)

    # --- lines of age: more, longer and darker as age grows past ~35 ---
    lines = _smooth(age + rng.normal(0, 6), 32, 80)
    if lines > 0:
        ink = _mix(skin, _shade(skin, 0.55), 0.45 + 0.55 * lines)
        wid = 0.006 + 0.004 * lines
        span = hw * (0.35 + 0.3 * lines)
        brow_y = eye_y - eye_ry - 0.035
        for k in range(int(1 + 3.5 * lines)):  # forehead lines between brows and hairline
            fy = brow_y - 0.03 - k * 0.028
            if fy > hairline + 0.01 or bald:
                line([(cx - span, fy + 0.006), (cx, fy), (cx + span, fy + 0.006)], ink, wid)
        for side in (-1, 1):  # smile lines from the nose to the mouth corners
            nx = cx + side * (nose_w + 0.012)
            mx = cx + side * (mouth_w / 2 + 0.02)
            line([(nx, nose_y - 0.01), (mx + side * 0.01, (nose_y + mouth_y) / 2), (mx, mouth_y + 0.02)], ink, wid)
        if lines > 0.35:
            for side in (-1, 1):  # crow's feet and bags under the eyes
                ox = cx + side * (eye_dx + eye_rx)
                for dy in (-0.015, 0.0, 0.015):
                    line([(ox + side * 0.008, eye_y + dy * 0.5), (ox + side * 0.035, eye_y + dy * 1.6)], ink, wid)
                ex = cx + side * eye_dx
                d.arc(
                    box(ex - eye_rx, eye_y - eye_ry, ex + eye_rx, eye_y + eye_ry + 0.03),
                    20,
                    160,
                    fill=ink,
                    width=lw(wid),
                )
        if lines > 0.7:  # chin and cheek creases of the very old
            for side in (-1, 1):
                line([(cx + side * jaw * 0.5, mouth_y + 0.02), (cx + side * jaw * 0.55, chin - 0.05)], ink, wid)
        if age > 62 and rng.random() < 0.6:  # age spots
            spot = _shade(skin, 0.78)
            for _ in range(int(rng.integers(2, 6))):
                sx, sy = cx + rng.uniform(-0.8, 0.8) * hw, rng.uniform(top + 0.06, eye_y - 0.03)
                d.ellipse(box(sx - 0.008, sy - 0.008, sx + 0.008, sy + 0.008), fill=spot)

    # --- glasses: more common with age ---
    if age >= 7 and rng.random() < 0.06 + 0.3 * _smooth(age, 40, 70):
        frame = _pick(rng, [((25, 25, 25), 4), ((120, 80, 40), 2), ((180, 180, 185), 2)])
        sun = rng.random() < 0.12
        for side in (-1, 1):
            ex = cx + side * eye_dx
            r = eye_rx * 1.45
            d.rounded_rectangle(
                box(ex - r, eye_y - r * 0.8, ex + r, eye_y + r * 0.8),
                radius=r * 0.4 * s,
                outline=frame,
                width=lw(0.008),
                fill=(30, 30, 35) if sun else None,
            )
        line([(cx - eye_dx + eye_rx * 1.45, eye_y), (cx + eye_dx - eye_rx * 1.45, eye_y)], frame, 0.008)
    if style == "pigtails" or (female and age < 12 and rng.random() < 0.3):  # a hair bow
        bow = _CLOTHES[int(rng.integers(len(_CLOTHES)))]
        bx = cx + hw * 0.6
        d.polygon(
            [
                ((bx - 0.04) * s, (top - 0.01) * s),
                ((bx + 0.04) * s, (top + 0.05) * s),
                ((bx + 0.04) * s, (top - 0.01) * s),
                ((bx - 0.04) * s, (top + 0.05) * s),
            ],
            fill=bow,
        )
    return layer


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    """A random two-colour linear gradient (float RGB), like the varied backdrops of UTKFace."""
    c0 = rng.uniform(20, 235, 3).astype(np.float32)
    c1 = np.clip(c0 + rng.normal(0, 45, 3), 0, 255).astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    t = math.cos(angle) * ramp[None, :] + math.sin(angle) * ramp[:, None] + 0.5
    return c0 + (c1 - c0) * t[..., None]


def draw_face(
    age: int, gender: int, race: int, size: int = 64, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """Draw one *synthetic* face (not a real person) as a ``uint8`` array of shape ``(size, size, 3)``.

    Args:
        age: 0-116 years: head proportions, lines, grey hair, baldness.
        gender: 0 male, 1 female: hair, jaw, facial hair, lips.
        race: 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others: skin-tone and hair/eye colour tendencies.
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
    layer = _draw_layer(float(age), int(gender), int(race), s, rng)

    # Pose nuisance: small rotation, scale and shift, like imperfect face alignment.
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
    layer = layer.transform((s, s), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.NEAREST)
    layer = layer.reduce(_SUPERSAMPLE)

    rgba = np.asarray(layer, dtype=np.float32)
    alpha = rgba[..., 3:] / 255.0
    img = _background(size, rng) * (1 - alpha) + rgba[..., :3] * alpha
    # Lighting nuisance: overall exposure, colour cast and a soft light from one side.
    direction = rng.uniform(0, 2 * math.pi)
    ramp = np.linspace(-1, 1, size, dtype=np.float32)
    light = 1 + rng.uniform(0, 0.22) * (math.cos(direction) * ramp[None, :] + math.sin(direction) * ramp[:, None])
    gain = (rng.uniform(0.8, 1.15) * rng.normal(1.0, 0.03, 3)).astype(np.float32)
    img *= light[..., None] * gain
    noise = rng.standard_normal(img.shape, dtype=np.float32)  # sensor noise
    img += noise * np.float32(rng.uniform(1, 6)) + np.float32(0.5)
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
