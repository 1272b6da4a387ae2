"""Loading UTKFace: filenames to labels, folders and archives to tables, tables to ``tf.data``.

Introduced in lesson 01 (load) and lesson 03 (preprocess).

UTKFace encodes the labels in each file name, ``age_gender_race_datetime.jpg`` (the aligned and
cropped release appends ``.chip.jpg``). A handful of published names are malformed, and student
projects that ``split("_")`` blindly either crash or silently mislabel them. Here every file ends up
in exactly one of two tables: the accepted images, or the rejects with the reason. Nothing is dropped
without being counted.

Images are never decoded all at once into one big array (23,708 faces at 200 px as float32 is about
11 GB); :func:`make_dataset` streams them through ``tf.data`` instead.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageOps, UnidentifiedImageError
from sklearn.model_selection import train_test_split

from agecourse import config
from agecourse.archive import extract_to_cache, is_archive
from agecourse.synthetic import default_synthetic_dir, make_synthetic_faces

# TensorFlow is imported inside the tf.data functions below, not here: it takes seconds to import and
# prints start-up lines, and reading, checking and splitting file tables (``agecourse data scan``)
# needs none of it.

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
AGE_MIN, AGE_MAX = 0, 116
GENDERS = {0: "male", 1: "female"}
RACES = {0: "White", 1: "Black", 2: "Asian", 3: "Indian", 4: "Others"}
# Age bands used for stratified splits, per-band metrics and the bias lesson.
AGE_BANDS = (0, 3, 10, 20, 30, 40, 50, 60, 70, 117)
MIN_IMAGE_SIDE = 16  # smaller images carry no usable face

_CHIP_SUFFIX = re.compile(r"(\.chip\.jpe?g)$", re.IGNORECASE)


class FilenameError(ValueError):
    """A file name that does not follow ``age_gender_race_datetime.jpg``; the message says why."""


@dataclass(frozen=True)
class FaceLabels:
    """Labels parsed from one UTKFace file name."""

    age: int
    gender: int
    race: int
    datetime: str


def parse_filename(name: str | os.PathLike) -> FaceLabels:
    """Parse ``age_gender_race_datetime.jpg[.chip.jpg]`` into :class:`FaceLabels`.

    Raises :class:`FilenameError` with a short reason: not an image extension, missing field,
    non-integer, gender not 0/1, race not 0-4, or age outside 0-116.

    >>> parse_filename("25_1_3_20170119171136578.jpg.chip.jpg")
    FaceLabels(age=25, gender=1, race=3, datetime='20170119171136578')
    """
    base = Path(name).name
    stem = _CHIP_SUFFIX.sub("", base)
    root, ext = os.path.splitext(stem)
    if ext.lower() not in IMAGE_EXTENSIONS:
        raise FilenameError(f"not an image extension ({ext or 'none'})")
    fields = root.split("_")
    names = ("age", "gender", "race", "datetime")
    if len(fields) < 4:
        # Which label is missing cannot be known (is "61_3_2017..." missing gender or race?).
        raise FilenameError(f"missing field: found {len(fields)} of 4 (age_gender_race_datetime)")
    if len(fields) > 4:
        raise FilenameError(f"too many fields ({len(fields)}, expected 4)")
    values = []
    for label, text in zip(names[:3], fields[:3]):
        if not re.fullmatch(r"\d+", text):
            raise FilenameError(f"{label} is not a non-negative integer ({text!r})")
        values.append(int(text))
    age, gender, race = values
    if not AGE_MIN <= age <= AGE_MAX:
        raise FilenameError(f"age outside {AGE_MIN}-{AGE_MAX} ({age})")
    if gender not in GENDERS:
        raise FilenameError(f"gender not 0/1 ({gender})")
    if race not in RACES:
        raise FilenameError(f"race not 0-4 ({race})")
    return FaceLabels(age=age, gender=gender, race=race, datetime=fields[3])


@dataclass
class LoadResult:
    """What loading a folder gives back: accepted images and rejects, never silently dropped.

    Attributes:
        images: one row per usable image: ``path``, ``age``, ``gender``, ``race``.
        rejects: one row per skipped file: ``file``, ``stage`` (``filename`` or ``image``), ``reason``.
        source: where the files came from (folder, archive or synthetic set).
        converted: number of images that needed a colour/format conversion (still accepted).
    """

    images: pd.DataFrame
    rejects: pd.DataFrame
    source: str
    converted: int = 0

    def summary(self) -> str:
        """One line: how many accepted, rejected and converted, and from where."""
        text = f"{len(self.images)} images accepted, {len(self.rejects)} rejected"
        if self.converted:
            text += f", {self.converted} converted"
        return f"{text} ({self.source})"

    def __repr__(self) -> str:  # shown in notebooks instead of two whole tables
        return f"LoadResult({self.summary()})"


def _empty_rejects() -> pd.DataFrame:
    return pd.DataFrame({"file": pd.Series(dtype=str), "stage": pd.Series(dtype=str), "reason": pd.Series(dtype=str)})


def scan_folder(folder: str | os.PathLike, recursive: bool = True) -> LoadResult:
    """Parse every file name under ``folder`` into labels, without opening the images.

    Hidden files (``.DS_Store``, macOS ``._`` resource forks from zips) are rejected with a reason
    like every other non-image, so the counts add up to the number of files on disk.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    files = sorted(p for p in (folder.rglob("*") if recursive else folder.iterdir()) if p.is_file())
    rows, rejects = [], []
    for path in files:
        try:
            if path.name.startswith("."):
                raise FilenameError("hidden or system file")
            labels = parse_filename(path.name)
        except FilenameError as err:
            rejects.append({"file": str(path), "stage": "filename", "reason": str(err)})
            continue
        rows.append({"path": str(path), "age": labels.age, "gender": labels.gender, "race": labels.race})
    images = pd.DataFrame(rows, columns=["path", "age", "gender", "race"])
    images = images.astype({"age": "int32", "gender": "int32", "race": "int32"})
    return LoadResult(images=images, rejects=pd.DataFrame(rejects) if rejects else _empty_rejects(), source=str(folder))


# --- image checks ---------------------------------------------------------------------------

# Formats and modes that TensorFlow's decoders read directly; anything else is converted once.
_TF_READY_FORMATS = {"JPEG", "PNG"}
_TF_READY_MODES = {"RGB", "L"}


def inspect_image(path: str | os.PathLike) -> tuple[str, str]:
    """Open one image fully and classify it.

    Returns ``(status, detail)`` where status is ``"ok"``, ``"convert"`` (decodable but needs
    conversion to RGB JPEG: CMYK, RGBA, palette, PNG bytes behind a ``.jpg`` name, ...) or
    ``"bad"`` (zero bytes, truncated, not an image, smaller than ``MIN_IMAGE_SIDE``).
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return "bad", "empty file (0 bytes)"
        with Image.open(path) as image:
            fmt, mode, size = image.format, image.mode, image.size
            image.load()  # decodes every byte: catches truncation that .verify() misses
    except UnidentifiedImageError:
        return "bad", "not an image (cannot identify the format)"
    except (OSError, SyntaxError, ValueError) as err:
        return "bad", f"cannot decode: {err}"
    if min(size) < MIN_IMAGE_SIDE:
        return "bad", f"too small ({size[0]}x{size[1]} px, need at least {MIN_IMAGE_SIDE})"
    suffix_is_jpeg = path.suffix.lower() in (".jpg", ".jpeg")
    if fmt not in _TF_READY_FORMATS or mode not in _TF_READY_MODES:
        return "convert", f"{fmt} {mode}"
    if suffix_is_jpeg and fmt != "JPEG":
        return "convert", f"{fmt} data behind a {path.suffix} name"
    return "ok", f"{fmt} {mode}"


def convert_to_rgb_jpeg(path: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Write an RGB JPEG copy of ``path`` to ``dest``; transparent pixels become white."""
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image)
        if image.mode in ("RGBA", "LA", "P"):
            image = image.convert("RGBA")
            background = Image.new("RGB", image.size, (255, 255, 255))
            background.paste(image, mask=image.getchannel("A"))
            image = background
        else:
            image = image.convert("RGB")
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        image.save(dest, "JPEG", quality=95)
    return dest


def check_images(
    images: pd.DataFrame, convert_dir: str | os.PathLike | None = None, workers: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Decode every image once and keep the unusable ones out of training.

    Images that decode but are not plain RGB/grayscale JPEG or PNG are converted to RGB JPEG in
    ``convert_dir`` (``<cache>/converted`` by default) and their ``path`` is pointed at the copy; the
    originals are never modified.

    Returns ``(good_images, rejects, converted_count)``.
    """
    paths = images["path"].tolist()
    workers = workers or min(8, (os.cpu_count() or 2) * 2)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:  # PIL releases the GIL while decoding
        results = list(pool.map(inspect_image, paths))
    keep, rejects, converted = [], [], 0
    new_paths = list(paths)
    for i, (status, detail) in enumerate(results):
        if status == "bad":
            rejects.append({"file": paths[i], "stage": "image", "reason": detail})
            continue
        if status == "convert":
            if convert_dir is None:
                convert_dir = config.cache_dir() / "converted"
            # Named by a hash of the original path, so the copy is stable across runs and saved
            # splits that point at it stay valid.
            digest = hashlib.sha1(str(Path(paths[i]).resolve()).encode()).hexdigest()[:12]
            target = Path(convert_dir) / f"{digest}_{Path(paths[i]).name}"
            if target.suffix.lower() not in (".jpg", ".jpeg"):
                target = target.with_suffix(target.suffix + ".jpg")
            new_paths[i] = str(convert_to_rgb_jpeg(paths[i], target))
            converted += 1
        keep.append(i)
    good = images.assign(path=new_paths).iloc[keep].reset_index(drop=True)
    return good, pd.DataFrame(rejects) if rejects else _empty_rejects(), converted


def load_utkface(
    source: str | os.PathLike,
    check: bool = True,
    max_images: int | None = None,
    seed: int = 42,
    extract_dir: str | os.PathLike | None = None,
) -> LoadResult:
    """Load UTKFace-named images from a folder, a ``.zip`` or a ``.tar.gz``.

    Archives are extracted safely (see :mod:`agecourse.archive`) into ``extract_dir`` or the cache.
    With ``check=True`` every image is decoded once and bad ones are moved to the rejects.
    ``max_images`` keeps a seeded, stratified subset (for quick runs).
    """
    source = Path(source).expanduser()
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such file or folder")
    folder = source
    if source.is_file():
        if not is_archive(source):
            raise ValueError(f"{source}: not a folder, .zip or .tar.gz archive")
        folder = extract_to_cache(source, extract_dir)
    result = scan_folder(folder)
    result.source = str(source)
    if max_images is not None and len(result.images) > max_images:
        total = len(result.images)
        result.images = stratified_sample(result.images, max_images, seed)
        result.source = f"{source}; a stratified sample of {max_images:,} of its {total:,} images (max_images)"
    if check and len(result.images):
        good, bad, converted = check_images(result.images)
        result.images = good
        result.rejects = pd.concat([result.rejects, bad], ignore_index=True) if len(bad) else result.rejects
        result.converted = converted
    return result


# --- labels, strata and splits --------------------------------------------------------------


def age_band(ages) -> pd.Categorical:
    """Label each age with its band, e.g. ``"20-29"``, using :data:`AGE_BANDS`."""
    labels = [f"{lo}-{hi - 1}" if hi < 117 else f"{lo}+" for lo, hi in zip(AGE_BANDS[:-1], AGE_BANDS[1:])]
    return pd.cut(np.asarray(ages), bins=list(AGE_BANDS), right=False, labels=labels)


def strata(images: pd.DataFrame) -> pd.Series:
    """The stratum of each row: age band x gender (what the splits keep in proportion)."""
    return age_band(images["age"]).astype(str) + "/" + images["gender"].astype(str)


def stratified_sample(images: pd.DataFrame, n: int, seed: int = 42) -> pd.DataFrame:
    """A seeded subset of ``n`` rows with the same age-band x gender mix as the whole (for an ``n``
    too small to hold every stratum: the same gender mix, or for a handful of rows a plain sample)."""
    if n >= len(images):
        return images.reset_index(drop=True)
    groups = _split_groups(images, min(n, len(images) - n))
    subset, _ = train_test_split(images, train_size=n, random_state=seed, stratify=groups)
    return subset.sort_values("path").reset_index(drop=True)


def _mergeable_strata(images: pd.DataFrame, minimum: int) -> pd.Series:
    """Strata, with those too small to split folded into one 'rare' group (sklearn needs >= 2)."""
    groups = strata(images)
    counts = groups.value_counts()
    rare = groups.map(counts) < minimum
    groups = groups.where(~rare, "rare")
    if (groups == "rare").sum() == 1:  # a lone rare row joins the biggest stratum
        groups = groups.where(groups != "rare", counts.index[0])
    return groups


@dataclass
class Split:
    """Train, validation and test tables of one seeded split."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame

    def sizes(self) -> dict[str, int]:
        """Rows in each part."""
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the split as one CSV with a ``part`` column (lessons reload it with :meth:`load`)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pd.concat(
            [self.train.assign(part="train"), self.val.assign(part="val"), self.test.assign(part="test")],
            ignore_index=True,
        )
        table.to_csv(path, index=False)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Split:
        """Read a split written by :meth:`save`."""
        table = pd.read_csv(path, dtype={"path": str})
        table = table.astype({c: "int32" for c in ("age", "gender", "race") if c in table.columns})
        parts = {
            name: table[table["part"] == name].drop(columns="part").reset_index(drop=True)
            for name in ("train", "val", "test")
        }
        return cls(**parts)


def split_dataset(
    images: pd.DataFrame, val_fraction: float = 0.15, test_fraction: float = 0.15, seed: int = 42
) -> Split:
    """Deterministic train/val/test split, stratified by age band x gender.

    The same ``images`` and ``seed`` always give the identical split: rows are sorted by path
    first, so the order files were listed in does not matter.
    """
    if not 0 < val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError("val_fraction and test_fraction must be in (0, 1) and sum to less than 1")
    images = images.sort_values("path").reset_index(drop=True)
    if len(images) < 10:
        raise ValueError(f"need at least 10 images to split, got {len(images)}")
    test_groups = _split_groups(images, _smaller_side(len(images), test_fraction))
    rest, test = train_test_split(images, test_size=test_fraction, random_state=seed, stratify=test_groups)
    val_share = val_fraction / (1 - test_fraction)
    val_groups = _split_groups(rest, _smaller_side(len(rest), val_share))
    train, val = train_test_split(rest, test_size=val_share, random_state=seed, stratify=val_groups)
    return Split(*(part.reset_index(drop=True) for part in (train, val, test)))


def _split_groups(images: pd.DataFrame, smaller_side: int) -> pd.Series | None:
    """What to stratify a two-way split of ``images`` by, when its smaller side gets
    ``smaller_side`` rows: age band x gender; for sets too small to put every stratum on both sides
    (scikit-learn needs at least one row per group on each), gender only; for tiny sets nothing."""
    groups = _mergeable_strata(images, 2)
    if groups.nunique() <= smaller_side:
        return groups
    gender = images["gender"].astype(str)
    if gender.nunique() <= smaller_side and gender.value_counts().min() >= 2:
        return gender
    return None


def _smaller_side(n: int, fraction: float) -> int:
    """Rows on the smaller side when scikit-learn moves ``fraction`` of ``n`` rows to the test side."""
    moved = math.ceil(fraction * n)
    return min(moved, n - moved)


# --- tf.data ----------------------------------------------------------------------------------


def decode_and_resize(path, image_size: int):
    """Read one image file into a float32 ``(size, size, 3)`` tensor with values in 0-255.

    Works on JPEG and PNG, grayscale or colour (grayscale is repeated to three channels).
    Normalisation to 0-1 (Model A) or the backbone's own range (Model B) happens inside the model,
    so the same pipeline feeds both.
    """
    # lazy: TensorFlow takes seconds to import, and the command line's data commands, the settings and
    # the splits use this module without it; only the functions that build tensors import it
    import tensorflow as tf

    data = tf.io.read_file(path)
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image = tf.image.resize(image, (image_size, image_size), antialias=True)
    image = tf.clip_by_value(image, 0.0, 255.0)  # antialiased resizing overshoots a little
    return tf.ensure_shape(image, (image_size, image_size, 3))


def make_dataset(
    images: pd.DataFrame,
    image_size: int,
    batch_size: int = 64,
    shuffle: bool = False,
    seed: int = 42,
    cache: str | os.PathLike | None = None,
    augment=None,
    sample_weight: str | None = None,
    repeat: bool = False,
):
    """Stream ``images`` as batches of ``(image, {"age": ..., "gender": ...})``.

    Decoding and resizing run in parallel, a batch at a time, so memory stays flat however many
    images there are. Only file paths are shuffled (cheap, seeded, reshuffled every epoch).

    Args:
        images: table with ``path``, ``age``, ``gender`` (from :func:`load_utkface` or a split).
        image_size: side length in pixels of the square model input.
        shuffle: shuffle every epoch (training) or keep order (evaluation).
        cache: ``None`` (decode every epoch), ``"memory"`` (keep decoded images in RAM: fast,
            needs ``n * size * size * 12`` bytes) or a file path for an on-disk cache.
        augment: optional Keras layer or callable applied to training batches.
        sample_weight: name of a column holding per-image weights (lesson 04), yielded as the
            third element.
    """
    import tensorflow as tf

    if len(images) == 0:
        raise ValueError("no images to stream: the table is empty")
    labels = {"age": images["age"].to_numpy(np.float32), "gender": images["gender"].to_numpy(np.float32)}
    parts = (images["path"].astype(str).to_numpy(), labels)
    if sample_weight is not None:
        parts += (images[sample_weight].to_numpy(np.float32),)
    ds = tf.data.Dataset.from_tensor_slices(parts)  # one element per image: (path, labels[, weight])
    if shuffle and cache is None:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)  # only paths: cheap
    ds = ds.map(
        lambda path, *rest: (decode_and_resize(path, image_size), *rest),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    ds = ds.ignore_errors(log_warning=True)  # a file that still fails to decode is skipped, with a warning
    if cache is not None:
        ds = ds.cache("" if str(cache) == "memory" else str(cache))  # decode each image once
        if shuffle:  # after the cache: a cache replays its first order, so shuffle what it yields
            ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size)
    if augment is not None:
        ds = ds.map(lambda x, *rest: (augment(x, training=True), *rest), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)  # prepare the next batches while the model trains on this one


def describe(images: pd.DataFrame) -> dict:
    """Label distribution of a table: counts, age statistics, per band, per gender, per race."""
    ages = images["age"]
    return {
        "count": int(len(images)),
        "age": {
            "mean": round(float(ages.mean()), 2) if len(images) else None,
            "median": float(ages.median()) if len(images) else None,
            "min": int(ages.min()) if len(images) else None,
            "max": int(ages.max()) if len(images) else None,
            "bands": {str(k): int(v) for k, v in pd.Series(age_band(ages)).value_counts(sort=False).items()},
        },
        "gender": {GENDERS[int(k)]: int(v) for k, v in images["gender"].value_counts().sort_index().items()},
        "race": {RACES[int(k)]: int(v) for k, v in images["race"].value_counts().sort_index().items()},
    }


def load_course_data(settings) -> LoadResult:
    """Load the data a lesson should use under ``settings`` (a :class:`agecourse.config.Settings`).

    Real UTKFace when ``settings.data_dir`` is set (folder or archive), otherwise the built-in
    *synthetic* faces, generated once into the cache. The result's ``source`` says which.
    """
    if settings.data_dir is not None:
        return load_utkface(settings.data_dir, max_images=settings.max_images, seed=settings.seed)
    # Drawn larger than the model input, like the 200 px UTKFace chips, so resizing behaves alike.
    size = min(200, max(64, 2 * settings.image_size))
    folder = make_synthetic_faces(
        default_synthetic_dir(settings.synthetic_count, size, settings.seed),
        n=settings.synthetic_count,
        size=size,
        seed=settings.seed,
    )
    result = load_utkface(folder, check=False)
    result.source = f"synthetic faces (not real people), {settings.synthetic_count} at {size} px, in {folder}"
    return result
