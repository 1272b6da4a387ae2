"""Looking at the data before training on it: parsing tables, demo rejects, plots and arithmetic.

Introduced in lesson 01 (load: :func:`parse_table`, :func:`make_demo_folder`), lesson 02 (explore:
the labelled sample grid, the label distributions and the age imbalance), lesson 03 (preprocess:
resizing, split proportions, throughput and the memory arithmetic of loading everything at once)
and lesson 05 (augment: :func:`plot_augmentations`).

Every plot takes a ``title`` so that lessons can say which data it shows; :func:`data_name` gives
the short name ("synthetic faces (not real people)" or "UTKFace") to put in it.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from PIL import Image

from agecourse.data import GENDERS, RACES, FilenameError, age_band, decode_and_resize, parse_filename

# --- lesson 01: names, rejects ----------------------------------------------------------------


def data_name(settings) -> str:
    """Short name of the data a lesson uses, for plot titles: synthetic faces or UTKFace."""
    return "synthetic faces (not real people)" if settings.uses_synthetic else "UTKFace"


def parse_table(names: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """Parse each file name with :func:`agecourse.data.parse_filename` and tabulate the outcome.

    One row per name: ``name``, ``age``, ``gender``, ``race`` (names, e.g. ``"female"``) for good
    names, or ``reason`` for the malformed ones. Nothing raises, so a whole list can be shown.
    """
    rows = []
    for name in names:
        row = {"name": Path(name).name, "age": None, "gender": None, "race": None, "reason": ""}
        try:
            labels = parse_filename(name)
        except FilenameError as err:
            row["reason"] = str(err)
        else:
            row.update(age=labels.age, gender=GENDERS[labels.gender], race=RACES[labels.race])
        rows.append(row)
    table = pd.DataFrame(rows, columns=["name", "age", "gender", "race", "reason"])
    return table.astype({"age": "Int64"})


def rejects_table(result) -> pd.DataFrame:
    """The rejects of a :class:`agecourse.data.LoadResult` for display: file *name* (not the long
    path), ``stage`` (``filename`` = rejected by its name, ``image`` = by its content) and ``reason``,
    file-name rejects first."""
    rejects = result.rejects
    table = pd.DataFrame(
        {"file": rejects["file"].map(lambda f: Path(f).name), "stage": rejects["stage"], "reason": rejects["reason"]}
    )
    order = table["stage"].map({"filename": 0, "image": 1}).fillna(2)
    return table.assign(_order=order).sort_values(["_order", "file"]).drop(columns="_order").reset_index(drop=True)


# Files written by make_demo_folder: name -> (how it is broken, what the loader should report).
DEMO_BAD_FILES = {
    "61_3_20170109150557335.jpg.chip.jpg": "a real UTKFace name with a label missing",
    "130_0_0_20170117000000001.jpg.chip.jpg": "age outside 0-116",
    "35_2_1_20170117000000002.jpg.chip.jpg": "gender code 2 (only 0 and 1 exist)",
    "notes.txt": "not an image at all",
    ".DS_Store": "a hidden macOS file that zips often carry",
    "30_0_1_20170117000000003.jpg.chip.jpg": "zero bytes (an interrupted copy)",
    "45_1_0_20170117000000004.jpg.chip.jpg": "text saved under a .jpg name",
    "52_0_3_20170117000000005.jpg.chip.jpg": "a JPEG cut off half way (truncated download)",
    "8_1_2_20170117000000006.jpg.chip.jpg": "an 8x8 pixel thumbnail",
    "27_1_2_20170117000000007.jpg.chip.jpg": "PNG data behind a .jpg name (kept, converted)",
}


def make_demo_folder(folder: str | os.PathLike, images: pd.DataFrame, n_good: int = 6, seed: int = 0) -> pd.DataFrame:
    """Fill ``folder`` with ``n_good`` copies of good images plus the deliberately broken files of
    :data:`DEMO_BAD_FILES`, so lesson 01 can show every kind of reject, even on synthetic faces.

    The good images are copied (never moved) from ``images["path"]``. Returns one row per file
    written: ``file`` and ``what`` (how it was made), to compare with the loader's rejects table.
    """
    if len(images) == 0:
        raise ValueError("make_demo_folder needs at least one good image to copy")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    picks = images.sample(min(n_good, len(images)), random_state=seed)["path"].tolist()
    rows = []
    for src in picks:
        dest = folder / Path(src).name
        shutil.copyfile(src, dest)
        rows.append({"file": dest.name, "what": "a good image (copied)"})
    template = picks[0]
    with Image.open(template) as im:
        face = im.convert("RGB")
    jpeg = Path(template).read_bytes()
    writers = {
        "61_3_20170109150557335.jpg.chip.jpg": lambda p: shutil.copyfile(template, p),
        "130_0_0_20170117000000001.jpg.chip.jpg": lambda p: shutil.copyfile(template, p),
        "35_2_1_20170117000000002.jpg.chip.jpg": lambda p: shutil.copyfile(template, p),
        "notes.txt": lambda p: p.write_text("photos from the 2017 trip\n"),
        ".DS_Store": lambda p: p.write_bytes(b"\0\0\0\1Bud1" + bytes(32)),
        "30_0_1_20170117000000003.jpg.chip.jpg": lambda p: p.write_bytes(b""),
        "45_1_0_20170117000000004.jpg.chip.jpg": lambda p: p.write_text("<html>404 Not Found</html>\n"),
        "52_0_3_20170117000000005.jpg.chip.jpg": lambda p: p.write_bytes(jpeg[: len(jpeg) // 2]),
        "8_1_2_20170117000000006.jpg.chip.jpg": lambda p: face.resize((8, 8)).save(p, "JPEG"),
        "27_1_2_20170117000000007.jpg.chip.jpg": lambda p: face.save(p, "PNG"),
    }
    for name, what in DEMO_BAD_FILES.items():
        writers[name](folder / name)
        rows.append({"file": name, "what": what})
    return pd.DataFrame(rows)


# --- lesson 02: look at the faces and the labels ----------------------------------------------


def band_table(images: pd.DataFrame, weight: str | None = None) -> pd.DataFrame:
    """Images per age band (:data:`agecourse.data.AGE_BANDS`): ``count`` and ``share`` (0-1).

    With ``weight`` (a column name), ``share`` is each band's share of the total weight instead,
    i.e. how much the band counts in the loss (lesson 04).
    """
    bands = pd.Series(age_band(images["age"]), index=images.index, name="band")
    counts = bands.value_counts(sort=False)
    mass = images[weight].groupby(bands, observed=False).sum() if weight else counts.astype(float)
    total = float(mass.sum())
    table = pd.DataFrame({"count": counts.astype(int), "share": mass / total if total else mass * 0.0})
    table.index.name = "band"
    return table


def _load_rgb(path: str, size: int | None = None) -> np.ndarray:
    with Image.open(path) as image:
        image = image.convert("RGB")
        if size:
            image = image.resize((size, size), Image.Resampling.LANCZOS)
        return np.asarray(image)


def plot_sample_grid(
    images: pd.DataFrame, n: int = 16, cols: int = 8, seed: int = 0, title: str = "Sample faces", size: int | None = 96
):
    """A grid of ``n`` randomly chosen faces, each labelled with age, gender and race names.

    The sample is seeded, so the same table and seed always show the same faces.
    """
    picks = images.sample(min(n, len(images)), random_state=seed)
    rows = max(1, -(-len(picks) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 2.05 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (_, row) in zip(axes.ravel(), picks.iterrows()):
        ax.imshow(_load_rgb(row["path"], size))
        ax.set_title(f"{int(row['age'])}, {GENDERS[int(row['gender'])]}\n{RACES[int(row['race'])]}", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_distributions(images: pd.DataFrame, title: str = "Label distributions"):
    """Three panels: the age histogram (1-year bins), gender counts and race counts.

    Uses seaborn; gender and race are shown by name, not by UTKFace's codes.
    """
    named = pd.DataFrame(
        {"age": images["age"].astype(int), "gender": images["gender"].map(GENDERS), "race": images["race"].map(RACES)}
    )
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), gridspec_kw={"width_ratios": [2.2, 1, 1.6]})
    sns.histplot(
        named, x="age", hue="gender", multiple="stack", binwidth=1, ax=axes[0], hue_order=list(GENDERS.values())
    )
    axes[0].set_title("age (stacked by gender)")
    sns.countplot(named, x="gender", order=list(GENDERS.values()), ax=axes[1], color="tab:blue")
    axes[1].set_title("gender")
    sns.countplot(named, x="race", order=list(RACES.values()), ax=axes[2], color="tab:green")
    axes[2].set_title("race")
    for ax in axes[1:]:
        for container in ax.containers:
            ax.bar_label(container, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_band_shares(
    tables: dict[str, pd.DataFrame], title: str = "Share of images per age band", weight: str | None = None
):
    """Bar chart of each table's share of images per age band, side by side (one colour each).

    ``tables`` maps a label ("train", "after down-sampling", ...) to an image table. With
    ``weight``, tables that have that column are shown by their share of the total weight.
    """
    long = []
    for label, table in tables.items():
        shares = band_table(table, weight if weight and weight in table else None)
        long.append(
            pd.DataFrame({"band": shares.index.astype(str), "share": shares["share"].to_numpy(), "table": label})
        )
    data = pd.concat(long, ignore_index=True)
    fig, ax = plt.subplots(figsize=(max(7.0, 0.9 * data["band"].nunique() + 0.6 * len(tables)), 3.8))
    sns.barplot(data, x="band", y="share", hue="table", ax=ax)
    ax.set_xlabel("age band (years)")
    ax.set_ylabel("share of images" if not weight else "share of images / of total weight")
    ax.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    if len(tables) == 1:
        ax.get_legend().remove()
    else:
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1.0), title=None, frameon=False)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def mean_predictor_errors(images: pd.DataFrame) -> pd.DataFrame:
    """What predicting the mean age for everyone does, per age band: the extreme case of the
    *regression to the mean* that an imbalanced training set pushes a model towards.

    Returns per band: ``count``, ``mean_age``, ``prediction`` (the overall mean) and
    ``signed_error`` (prediction minus true age, averaged; negative = underestimated).
    """
    overall = float(images["age"].mean())
    bands = pd.Series(age_band(images["age"]), index=images.index, name="band")
    grouped = images["age"].groupby(bands, observed=False)
    table = pd.DataFrame({"count": grouped.size(), "mean_age": grouped.mean().round(1)})
    table["prediction"] = round(overall, 1)
    table["signed_error"] = (overall - table["mean_age"]).round(1)
    return table


# --- lesson 03: resize, split, throughput, memory ---------------------------------------------


def plot_resize(path: str | os.PathLike, image_size: int, title: str = "Before and after decode_and_resize"):
    """One image as stored on disk next to what :func:`agecourse.data.decode_and_resize` makes of
    it, with sizes, dtypes and value ranges in the panel titles."""
    original = _load_rgb(str(path))
    resized = decode_and_resize(str(path), image_size).numpy()
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.8))
    axes[0].imshow(original)
    axes[0].set_title(
        f"file: {original.shape[1]}x{original.shape[0]} px, {original.dtype}\nvalues {original.min()}-{original.max()}",
        fontsize=9,
    )
    axes[1].imshow(resized.astype(np.uint8))
    axes[1].set_title(
        f"decoded: {resized.shape[1]}x{resized.shape[0]} px, {resized.dtype}\n"
        f"values {resized.min():.0f}-{resized.max():.0f}",
        fontsize=9,
    )
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def split_table(split, column: str = "band") -> pd.DataFrame:
    """Share of each age band (``column="band"``) or gender (``column="gender"``) in every part
    of a :class:`agecourse.data.Split`: one column per part, rows summing to 1 per column.
    Stratified parts have near-identical columns."""
    parts = {"train": split.train, "val": split.val, "test": split.test}
    if column == "band":
        table = pd.DataFrame({name: band_table(part)["share"] for name, part in parts.items()})
    elif column == "gender":
        table = (
            pd.DataFrame(
                {name: part["gender"].map(GENDERS).value_counts(normalize=True) for name, part in parts.items()}
            )
            .reindex(list(GENDERS.values()))
            .fillna(0.0)
        )
        table.index.name = "gender"
    else:
        raise ValueError(f"column must be 'band' or 'gender', not {column!r}")
    return table


def time_pass(dataset, max_batches: int | None = None) -> dict[str, float]:
    """Iterate over ``dataset`` once (or ``max_batches`` batches) and measure the throughput.

    Returns ``batches``, ``images``, ``seconds`` and ``images_per_second``. Run it twice on a
    cached dataset to see what the cache saves: the first pass fills it, the second reads it.
    """
    batches = images = 0
    start = time.perf_counter()
    for batch in dataset:
        images += int(batch[0].shape[0])
        batches += 1
        if max_batches is not None and batches >= max_batches:
            break
    seconds = time.perf_counter() - start
    return {
        "batches": batches,
        "images": images,
        "seconds": round(seconds, 3),
        "images_per_second": round(images / seconds, 1) if seconds > 0 else float("inf"),
    }


def numpy_memory_bytes(n: int, size: int, channels: int = 3, dtype: str = "float32") -> int:
    """Bytes needed to hold ``n`` images of ``size`` x ``size`` x ``channels`` in one NumPy array.

    >>> numpy_memory_bytes(23_708, 200) / 1e9  # all of UTKFace at full size as float32
    11.37984
    """
    if n < 0 or size <= 0 or channels <= 0:
        raise ValueError("n must be >= 0, size and channels > 0")
    return int(n) * int(size) ** 2 * int(channels) * np.dtype(dtype).itemsize


def streaming_memory_bytes(
    batch_size: int, size: int, channels: int = 3, dtype: str = "float32", batches_in_flight: int = 1
) -> int:
    """Bytes of images a ``tf.data`` pipeline holds at once: ``batches_in_flight`` batches
    (1 + what ``prefetch`` keeps ready) instead of the whole dataset."""
    return batches_in_flight * numpy_memory_bytes(batch_size, size, channels, dtype)


def format_bytes(n: float) -> str:
    """``11379840000`` -> ``"11.4 GB"`` (decimal units, as disk and RAM are sold)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def memory_table(
    n: int, sizes: Sequence[int] = (200, 128, 64), batch_size: int = 64, dtypes: Sequence[str] = ("float32", "uint8")
) -> pd.DataFrame:
    """The "load everything into NumPy" bill next to streaming one batch, for several image sizes
    and dtypes: columns ``size``, ``dtype``, ``all_images`` and ``one_batch`` (human-readable).
    Repeated sizes are listed once."""
    sizes = list(dict.fromkeys(sizes))
    rows = [
        {
            "size": f"{s}x{s}",
            "dtype": d,
            "all_images": format_bytes(numpy_memory_bytes(n, s, 3, d)),
            "one_batch": format_bytes(numpy_memory_bytes(batch_size, s, 3, d)),
        }
        for s in sizes
        for d in dtypes
    ]
    return pd.DataFrame(rows)


# --- lesson 05: augmentation ------------------------------------------------------------------


def plot_augmentations(
    paths: Sequence[str | os.PathLike], augment, image_size: int, n: int = 6, title: str = "Random augmentations"
):
    """One row per face: the original, then ``n`` random draws of ``augment`` (called with
    ``training=True``, as inside ``fit``)."""
    paths = list(paths)
    fig, axes = plt.subplots(len(paths), n + 1, figsize=(1.5 * (n + 1), 1.6 * len(paths) + 0.5), squeeze=False)
    for r, path in enumerate(paths):
        image = decode_and_resize(str(path), image_size)
        batch = np.repeat(image.numpy()[None], n, axis=0)
        augmented = np.asarray(augment(batch, training=True))
        axes[r, 0].imshow(image.numpy().astype(np.uint8))
        axes[r, 0].set_title("original", fontsize=8)
        for c in range(n):
            axes[r, c + 1].imshow(np.clip(augmented[c], 0, 255).astype(np.uint8))
            axes[r, c + 1].set_title(f"draw {c + 1}", fontsize=8)
    for ax in axes.ravel():
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
