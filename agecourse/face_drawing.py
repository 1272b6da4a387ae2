"""Drawing one synthetic face (not a real person) on a transparent layer, step by step.

Introduced in lesson 01 with :mod:`agecourse.synthetic`, which composes these layers into pictures
(pose, background, light, noise) and writes the UTKFace-named files.

The drawing follows the labels in a few deliberately simple ways, to make a learnable toy:

* **age** sets head proportions, lines, grey hair, baldness, jowls;
* **gender** sets hair length and style, jaw and neck width, eyebrows, lip colour, earrings and
  facial hair (many adult men);
* **race code** sets the skin-tone distribution (:data:`_SKIN_TONE`, overlapping ranges) and
  **nothing else**: head, eye, nose and mouth geometry, hair and eye colours and every random draw
  are the same for all five codes (``tests/test_synthetic.py`` checks that the outline of a face
  never changes with the code).

These cues are simplifications, not facts about people (lesson 02 says so where the faces first
appear). Each step is a small function; :func:`draw_layer` calls them in a fixed order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

# --- colours ---------------------------------------------------------------------------------

# Skin tones from light to dark; a tone in [0, 1] is interpolated along this ramp.
_SKIN_RAMP = np.array(
    [[250, 224, 205], [236, 196, 164], [214, 164, 122], [176, 122, 82], [128, 84, 56], [84, 55, 38]], dtype=float
)
# (mean, sd) of the skin tone per race code. The ranges overlap on purpose: skin tone alone does not
# determine the label, as in real photographs.
_SKIN_TONE = {0: (0.18, 0.09), 1: (0.80, 0.10), 2: (0.30, 0.09), 3: (0.55, 0.12), 4: (0.45, 0.17)}
# Hair and iris colours: one distribution for everyone (the race code sets only the skin tone).
_HAIR = [((20, 16, 14), 6), ((40, 28, 20), 3), ((70, 48, 30), 2), ((110, 78, 45), 1), ((185, 150, 90), 1)]
_EYES = [((50, 32, 22), 6), ((95, 60, 35), 2), ((90, 120, 80), 1), ((70, 110, 160), 1)]
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


class _Pen:
    """Draws on an ``s`` x ``s`` layer with coordinates in units of the picture side (0..1)."""

    def __init__(self, layer: Image.Image):
        self.s = layer.size[0]
        self.d = ImageDraw.Draw(layer)

    def box(self, x0: float, y0: float, x1: float, y1: float) -> list[float]:
        """A bounding box in pixels."""
        return [x0 * self.s, y0 * self.s, x1 * self.s, y1 * self.s]

    def lw(self, frac: float) -> int:
        """A line width that stays visible at every size."""
        return max(1, int(round(frac * self.s)))

    def line(self, points, color, width: float) -> None:
        """A polyline through ``points`` (unit coordinates)."""
        self.d.line([(x * self.s, y * self.s) for x, y in points], fill=color, width=self.lw(width), joint="curve")

    def polygon(self, points, color) -> None:
        """A filled polygon through ``points`` (unit coordinates)."""
        self.d.polygon([(x * self.s, y * self.s) for x, y in points], fill=color)


@dataclass
class _Face:
    """Everything the drawing steps share: labels, proportions (unit coordinates) and colours.

    Proportions depend on age, gender and random variation only -- never on the race code, which
    sets the skin-tone distribution and nothing else.
    """

    age: float
    female: bool
    grow: float  # 0 for a newborn, 1 for an adult
    old: float  # 0 until 35, then lines, sagging and grey hair build up
    skin: tuple
    shadow: tuple
    hh: float  # half head height
    hw: float  # half head width
    jaw: float
    top: float
    chin: float
    eye_y: float
    eye_dx: float
    eye_rx: float
    eye_ry: float
    nose_y: float
    mouth_y: float
    mouth_w: float
    cx: float = 0.5
    hair: tuple = (0, 0, 0)
    style: str = "short"
    bald: bool = False
    hairline: float = 0.0
    volume: float = 0.03
    hair_len: float = 0.0
    ear_h: float = 0.0
    nose_w: float = 0.0

    @property
    def jaw_top(self) -> float:
        return self.top + 2 * self.hh * 0.3


def _proportions(age: float, gender: int, race: int, rng: np.random.Generator) -> _Face:
    """Skin colour and head geometry; the geometry uses age, gender and chance, not ``race``."""
    female = gender == 1
    grow = (min(age, 18.0) / 18.0) ** 0.6  # fast in the first years, like real growth
    old = _smooth(age, 35, 85)
    skin = _skin(rng, race, age)
    hh = 0.33 + 0.02 * grow + rng.normal(0, 0.008)
    aspect = (1.02 + 0.27 * grow - (0.03 if female else 0.0)) * rng.normal(1.0, 0.025)
    hw = hh / aspect
    jaw = hw * ((0.96 - (0.16 if female else 0.06) * grow) + rng.normal(0, 0.025))
    top, chin = 0.5 - hh, 0.5 + hh + 0.025 * old * (not female)
    # Eyes sit low on a baby's face (big forehead) and near the middle on an adult's.
    eye_y = top + 2 * hh * (0.58 - 0.12 * grow + rng.normal(0, 0.01))
    eye_dx = hw * (0.44 + rng.normal(0, 0.025))
    eye_rx = (0.060 - 0.022 * grow) * rng.normal(1.0, 0.07)
    eye_ry = eye_rx * (0.62 + rng.normal(0, 0.06)) * (1 - 0.25 * old)
    nose_y = eye_y + (chin - eye_y) * (0.40 + rng.normal(0, 0.02))
    mouth_y = eye_y + (chin - eye_y) * (0.68 + rng.normal(0, 0.02))
    mouth_w = (0.085 + 0.045 * grow) * rng.normal(1.0, 0.1)
    return _Face(
        age, female, grow, old, skin, _shade(skin, 0.82), hh, hw, jaw, top, chin,
        eye_y, eye_dx, eye_rx, eye_ry, nose_y, mouth_y, mouth_w,
    )  # fmt: skip


def _hair_colour(f: _Face, rng: np.random.Generator) -> tuple:
    """A natural hair colour (same distribution for everyone), greying from the late 30s."""
    hair = _pick(rng, _HAIR)
    grey_age = rng.normal(52, 8)  # by 75 most hair is grey, later white
    greyness = _smooth(f.age, grey_age - 14, grey_age + 20)
    grey = (150, 150, 150) if f.age < 70 else _mix((190, 190, 190), (238, 238, 236), (f.age - 70) / 25)
    return _mix(hair, _shade(grey, rng.normal(1.0, 0.05)), greyness)


def _hair_style(f: _Face, rng: np.random.Generator) -> None:
    """Choose colour, style, receding hairline and baldness (sets them on ``f``)."""
    f.hair = _hair_colour(f, rng)
    if f.age < 2:
        f.style = "fuzz"  # babies: thin, sparse hair
    elif f.female:
        options = [("long", 6), ("bob", 2 + 3 * f.old), ("short", 1 + 2 * f.old), ("pigtails", 3 * (f.age < 12))]
        f.style = _pick(rng, options)
    else:
        f.style = _pick(rng, [("short", 10), ("long", 1), ("buzz", 2)])
    # Receding hairline and baldness: common in older men, rare in women.
    recede = 0.0 if f.female else float(np.clip(rng.normal(_smooth(f.age, 25, 75) * 0.7, 0.25), 0, 1))
    f.bald = (not f.female) and f.age > 30 and rng.random() < 0.45 * _smooth(f.age, 35, 80)
    f.hairline = f.top + 2 * f.hh * (0.14 + 0.04 * (1 - f.grow) + 0.16 * recede)
    f.volume = 0.03 if f.style != "buzz" else 0.01
    f.hair_len = {"long": rng.uniform(0.12, 0.4), "bob": rng.uniform(-0.02, 0.08)}.get(f.style, 0.0)


def _draw_body(pen: _Pen, f: _Face, rng: np.random.Generator) -> None:
    """Shoulders and neck, drawn first: everything else overlaps them."""
    clothes = _CLOTHES[int(rng.integers(len(_CLOTHES)))]
    shoulder_w = 0.25 + 0.2 * f.grow + (0.05 if not f.female else 0.0)
    pen.d.ellipse(pen.box(f.cx - shoulder_w, f.chin + 0.06, f.cx + shoulder_w, f.chin + 0.66), fill=clothes)
    neck_w = f.jaw * (0.55 if f.female else 0.68)
    pen.d.rectangle(pen.box(f.cx - neck_w, f.mouth_y, f.cx + neck_w, f.chin + 0.1), fill=f.shadow)


def _draw_back_hair(pen: _Pen, f: _Face) -> None:
    """Long hair, a bob or pigtails behind the head, and the side hair over the ears' height."""
    cx, hw, v = f.cx, f.hw, f.volume
    if f.style in ("long", "bob") and not f.bald:
        outline = pen.box(cx - hw - v - 0.02, f.top - v, cx + hw + v + 0.02, f.chin + f.hair_len)
        pen.d.rounded_rectangle(outline, radius=0.12 * pen.s, fill=f.hair)
    elif f.style == "pigtails":
        for side in (-1, 1):
            px = cx + side * (hw + 0.05)
            pen.d.ellipse(pen.box(px - 0.05, f.eye_y - 0.02, px + 0.05, f.eye_y + 0.16), fill=f.hair)
    if f.style != "fuzz":  # also left on bald men (a horseshoe of hair)
        pen.d.ellipse(pen.box(cx - hw - v, f.top - v, cx + hw + v, f.eye_y + 0.4 * (f.chin - f.eye_y)), fill=f.hair)


def _draw_head(pen: _Pen, f: _Face, rng: np.random.Generator) -> None:
    """Ears, cranium, cheeks and jaw, and the jowls of the very old."""
    cx, hw = f.cx, f.hw
    f.ear_h = (0.07 + 0.02 * f.grow + 0.015 * f.old) * rng.normal(1.0, 0.08)
    for side in (-1, 1):
        ex = cx + side * hw * 0.97
        pen.d.ellipse(pen.box(ex - 0.028, f.eye_y - 0.2 * f.ear_h, ex + 0.028, f.eye_y + 0.8 * f.ear_h), fill=f.shadow)
    pen.d.ellipse(pen.box(cx - hw, f.top, cx + hw, f.top + 2 * f.hh * 0.82), fill=f.skin)  # cranium
    pen.d.ellipse(pen.box(cx - f.jaw, f.jaw_top, cx + f.jaw, f.chin), fill=f.skin)  # cheeks and jaw
    if f.old > 0.55:  # jowls: the lower face sags and widens
        sag = (f.old - 0.55) * 0.06
        for side in (-1, 1):
            jx = cx + side * f.jaw * 0.62
            pen.d.ellipse(pen.box(jx - 0.06, f.mouth_y - 0.02, jx + 0.06, f.chin - 0.02 + sag), fill=f.skin)


def _draw_top_hair(pen: _Pen, f: _Face, rng: np.random.Generator) -> None:
    """Hair on top of the head: a baby's fuzz, or a cap cut by the hairline (plus a fringe)."""
    cx, hw = f.cx, f.hw
    if f.style == "fuzz":
        if f.age >= 1 or rng.random() < 0.5:
            outline = pen.box(cx - hw, f.top - 0.005, cx + hw, f.top + 2 * f.hh * 0.82)
            pen.d.chord(outline, 200, 340, fill=_mix(f.skin, f.hair, 0.55))
        return
    if f.bald:
        return
    # Chord of the cranium ellipse cut by the hairline; a thicker ellipse gives hair volume.
    ry, v = f.hh * 0.82, f.volume
    sin_phi = max(-0.99, min(0.0, (f.hairline - f.top - ry) / ry))
    # Whole degrees: Pillow mis-fills chords (stray bars across the picture) at fractional angles.
    phi = round(math.degrees(math.asin(sin_phi)))
    pen.d.chord(pen.box(cx - hw - v, f.top - v, cx + hw + v, f.top + 2 * ry + v), 180 - phi, 360 + phi, fill=f.hair)
    if f.female and f.style in ("long", "bob") and rng.random() < 0.5:  # side-swept fringe
        side = 1 if rng.random() < 0.5 else -1
        points = [(cx, f.hairline), (cx + side * hw, f.hairline - 0.02), (cx + side * hw, f.eye_y - 0.07)]
        pen.polygon(points, f.hair)


def _beard_kind(f: _Face, rng: np.random.Generator) -> str:
    """Facial hair, on adult (and some teenage) men only."""
    if not f.female and f.age >= 17:
        return _pick(rng, [("none", 4), ("full", 2.2), ("stubble", 2), ("moustache", 1.2), ("goatee", 0.6)])
    if not f.female and f.age >= 14:
        return _pick(rng, [("none", 3), ("fuzz", 1)])
    return "none"


def _draw_facial_hair(pen: _Pen, f: _Face, rng: np.random.Generator) -> None:
    """Beard, stubble, moustache or goatee (see :func:`_beard_kind`)."""
    kind = _beard_kind(f, rng)
    beard = f.hair if not (f.age > 45 and rng.random() < 0.3) else _mix(f.hair, (220, 220, 218), 0.5)
    cx, mw = f.cx, f.mouth_w
    if kind in ("full", "stubble", "fuzz"):
        color = {"full": beard, "stubble": _mix(f.skin, beard, 0.45), "fuzz": _mix(f.skin, beard, 0.25)}[kind]
        ry = (f.chin - f.jaw_top) / 2
        start_y = f.nose_y + 0.01 if kind == "full" else f.mouth_y - 0.035
        sin_phi = max(0.0, min(0.99, (start_y - f.jaw_top - ry) / ry))
        phi = round(math.degrees(math.asin(sin_phi)))  # whole degrees, as in _draw_top_hair
        outline = pen.box(cx - f.jaw, f.jaw_top, cx + f.jaw, f.chin + (0.015 if kind == "full" else 0.0))
        pen.d.chord(outline, phi, 180 - phi, fill=color)
    if kind in ("moustache", "full", "goatee"):
        pen.d.chord(pen.box(cx - mw * 0.65, f.nose_y + 0.015, cx + mw * 0.65, f.mouth_y + 0.02), 180, 360, fill=beard)
    if kind == "goatee":
        pen.d.ellipse(pen.box(cx - mw * 0.35, f.mouth_y + 0.02, cx + mw * 0.35, f.chin + 0.01), fill=beard)


def _draw_eye(pen: _Pen, f: _Face, side: int, iris: tuple) -> None:
    """One eye: white, iris, pupil, and a heavier upper lid with age."""
    ex, ey, rx, ry = f.cx + side * f.eye_dx, f.eye_y, f.eye_rx, f.eye_ry
    pen.d.ellipse(pen.box(ex - rx, ey - ry, ex + rx, ey + ry), fill=(245, 245, 240))
    ir = min(ry, rx * 0.55)
    pen.d.ellipse(pen.box(ex - ir, ey - ir, ex + ir, ey + ir), fill=iris)
    pr = ir * 0.45
    pen.d.ellipse(pen.box(ex - pr, ey - pr, ex + pr, ey + pr), fill=(10, 10, 10))
    if f.old > 0.5:
        lid = pen.box(ex - rx * 1.05, ey - ry * 1.3, ex + rx * 1.05, ey + ry * 1.1)
        pen.d.chord(lid, 180, 360, fill=_mix(f.skin, f.shadow, 0.5))


def _draw_eyes(pen: _Pen, f: _Face, rng: np.random.Generator) -> None:
    """Both eyes (iris colour from one shared distribution) and the eyebrows."""
    iris = _pick(rng, _EYES)
    brow_color = _mix(_shade(f.hair, 0.8), f.hair, 0.5) if f.style != "fuzz" else _mix(f.skin, f.hair, 0.4)
    brow_w = (0.014 if f.female else 0.022) * (0.6 + 0.4 * f.grow)
    brow_lift = rng.normal(0.0, 0.008)
    arch = 0.012 if f.female else 0.004
    for side in (-1, 1):
        _draw_eye(pen, f, side, iris)
        ex, rx = f.cx + side * f.eye_dx, f.eye_rx
        by = f.eye_y - f.eye_ry - 0.03 - (0.012 if f.female else 0.0) + brow_lift
        pen.line(
            [(ex - side * rx * 1.1, by + 0.006), (ex, by - arch), (ex + side * rx * 1.3, by + 0.004)],
            brow_color,
            brow_w,
        )


def _lip_colour(f: _Face, rng: np.random.Generator) -> tuple:
    """Natural lips, or (for many adult women) lipstick."""
    if f.female and f.age >= 16 and rng.random() < 0.6:
        return _pick(rng, [((185, 30, 50), 2), ((200, 80, 110), 1), ((150, 40, 60), 1)])
    return _mix(f.skin, (190, 70, 80), 0.35)


def _draw_nose_and_mouth(pen: _Pen, f: _Face, rng: np.random.Generator) -> None:
    """The nose, then a smiling or closed mouth."""
    cx, mw, my = f.cx, f.mouth_w, f.mouth_y
    f.nose_w = (0.028 + 0.02 * f.grow + 0.01 * f.old) * rng.normal(1.0, 0.1)
    pen.d.chord(
        pen.box(cx - f.nose_w, f.nose_y - 0.03, cx + f.nose_w, f.nose_y + 0.012), 20, 160, fill=_shade(f.skin, 0.7)
    )
    lip = _lip_colour(f, rng)
    lip_h = (0.018 + 0.01 * rng.random()) * (1 - 0.35 * f.old)
    if rng.random() < 0.5:  # smile
        pen.d.chord(pen.box(cx - mw / 2, my - lip_h * 1.4, cx + mw / 2, my + lip_h * 1.6), 0, 180, fill=lip)
    else:
        pen.d.ellipse(pen.box(cx - mw / 2, my - lip_h, cx + mw / 2, my + lip_h), fill=lip)
        pen.line([(cx - mw / 2, my), (cx + mw / 2, my)], _shade(lip, 0.6), 0.006)


def _draw_earrings_and_blush(pen: _Pen, f: _Face, rng: np.random.Generator) -> None:
    """Earrings (some girls and women) and rosy cheeks (children, some women)."""
    if f.female and f.age >= 12 and rng.random() < 0.35:
        y = f.eye_y + 0.8 * f.ear_h
        for side in (-1, 1):
            ex = f.cx + side * f.hw * 0.99
            pen.d.ellipse(pen.box(ex - 0.012, y - 0.01, ex + 0.012, y + 0.014), fill=(230, 200, 80))
    if f.age < 12 or (f.female and rng.random() < 0.3):
        blush = _mix(f.skin, (235, 120, 120), 0.35)
        for side in (-1, 1):
            bx = f.cx + side * f.hw * 0.55
            pen.d.ellipse(pen.box(bx - 0.035, f.nose_y - 0.02, bx + 0.035, f.nose_y + 0.03), fill=blush)


def _draw_forehead_and_smile_lines(pen: _Pen, f: _Face, lines: float, ink: tuple, wid: float) -> None:
    """Forehead lines between brows and hairline, and smile lines from the nose to the mouth."""
    cx = f.cx
    span = f.hw * (0.35 + 0.3 * lines)
    brow_y = f.eye_y - f.eye_ry - 0.035
    for k in range(int(1 + 3.5 * lines)):
        fy = brow_y - 0.03 - k * 0.028
        if fy > f.hairline + 0.01 or f.bald:
            pen.line([(cx - span, fy + 0.006), (cx, fy), (cx + span, fy + 0.006)], ink, wid)
    for side in (-1, 1):
        nx = cx + side * (f.nose_w + 0.012)
        mx = cx + side * (f.mouth_w / 2 + 0.02)
        pen.line(
            [(nx, f.nose_y - 0.01), (mx + side * 0.01, (f.nose_y + f.mouth_y) / 2), (mx, f.mouth_y + 0.02)], ink, wid
        )


def _draw_eye_lines(pen: _Pen, f: _Face, ink: tuple, wid: float) -> None:
    """Crow's feet and bags under the eyes."""
    for side in (-1, 1):
        ox = f.cx + side * (f.eye_dx + f.eye_rx)
        for dy in (-0.015, 0.0, 0.015):
            pen.line([(ox + side * 0.008, f.eye_y + dy * 0.5), (ox + side * 0.035, f.eye_y + dy * 1.6)], ink, wid)
        ex = f.cx + side * f.eye_dx
        bag = pen.box(ex - f.eye_rx, f.eye_y - f.eye_ry, ex + f.eye_rx, f.eye_y + f.eye_ry + 0.03)
        pen.d.arc(bag, 20, 160, fill=ink, width=pen.lw(wid))


def _draw_age_lines(pen: _Pen, f: _Face, rng: np.random.Generator) -> None:
    """Lines of age: more, longer and darker as age grows past ~35; age spots after 62."""
    lines = _smooth(f.age + rng.normal(0, 6), 32, 80)
    if lines <= 0:
        return
    ink = _mix(f.skin, _shade(f.skin, 0.55), 0.45 + 0.55 * lines)
    wid = 0.006 + 0.004 * lines
    _draw_forehead_and_smile_lines(pen, f, lines, ink, wid)
    if lines > 0.35:
        _draw_eye_lines(pen, f, ink, wid)
    if lines > 0.7:  # chin and cheek creases of the very old
        for side in (-1, 1):
            pen.line(
                [(f.cx + side * f.jaw * 0.5, f.mouth_y + 0.02), (f.cx + side * f.jaw * 0.55, f.chin - 0.05)], ink, wid
            )
    if f.age > 62 and rng.random() < 0.6:
        spot = _shade(f.skin, 0.78)
        for _ in range(int(rng.integers(2, 6))):
            sx, sy = f.cx + rng.uniform(-0.8, 0.8) * f.hw, rng.uniform(f.top + 0.06, f.eye_y - 0.03)
            pen.d.ellipse(pen.box(sx - 0.008, sy - 0.008, sx + 0.008, sy + 0.008), fill=spot)


def _draw_glasses(pen: _Pen, f: _Face, rng: np.random.Generator) -> None:
    """Glasses (sometimes sunglasses), more common with age."""
    if not (f.age >= 7 and rng.random() < 0.06 + 0.3 * _smooth(f.age, 40, 70)):
        return
    frame = _pick(rng, [((25, 25, 25), 4), ((120, 80, 40), 2), ((180, 180, 185), 2)])
    sun = rng.random() < 0.12
    r = f.eye_rx * 1.45
    for side in (-1, 1):
        ex = f.cx + side * f.eye_dx
        rim = pen.box(ex - r, f.eye_y - r * 0.8, ex + r, f.eye_y + r * 0.8)
        style = dict(outline=frame, width=pen.lw(0.008), fill=(30, 30, 35) if sun else None)
        # Pillow's rounded_rectangle fails on a rim at most 3 pixels high (faces of about 16-20 px):
        # square corners there; larger faces are drawn as before.
        if rim[3] - rim[1] > 3:
            pen.d.rounded_rectangle(rim, radius=r * 0.4 * pen.s, **style)
        else:
            pen.d.rectangle(rim, **style)
    pen.line([(f.cx - f.eye_dx + r, f.eye_y), (f.cx + f.eye_dx - r, f.eye_y)], frame, 0.008)


def _draw_bow(pen: _Pen, f: _Face, rng: np.random.Generator) -> None:
    """A hair bow: always with pigtails, sometimes for young girls."""
    if not (f.style == "pigtails" or (f.female and f.age < 12 and rng.random() < 0.3)):
        return
    bow = _CLOTHES[int(rng.integers(len(_CLOTHES)))]
    bx, t = f.cx + f.hw * 0.6, f.top
    pen.polygon([(bx - 0.04, t - 0.01), (bx + 0.04, t + 0.05), (bx + 0.04, t - 0.01), (bx - 0.04, t + 0.05)], bow)


def draw_layer(age: float, gender: int, race: int, s: int, rng: np.random.Generator) -> Image.Image:
    """Draw the person (hair, head, face, neck, shoulders) on a transparent ``s`` x ``s`` RGBA layer.

    Geometry is in units of the picture side (0..1), converted to pixels at the last moment. Every
    random draw happens in a fixed order, the same for every race code, so a face depends only on its
    generator and the race code changes nothing but the skin colour.
    """
    layer = Image.new("RGBA", (s, s), (128, 128, 128, 0))
    pen = _Pen(layer)
    face = _proportions(age, gender, race, rng)
    _hair_style(face, rng)
    _draw_body(pen, face, rng)
    _draw_back_hair(pen, face)
    _draw_head(pen, face, rng)
    _draw_top_hair(pen, face, rng)
    _draw_facial_hair(pen, face, rng)
    _draw_eyes(pen, face, rng)
    _draw_nose_and_mouth(pen, face, rng)
    _draw_earrings_and_blush(pen, face, rng)
    _draw_age_lines(pen, face, rng)
    _draw_glasses(pen, face, rng)
    _draw_bow(pen, face, rng)
    return layer
