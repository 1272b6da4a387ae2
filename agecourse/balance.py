"""Balancing the age distribution of a training table: capping, re-sampling and sample weights.

Introduced in lesson 04 (balance).

UTKFace has many more faces in their twenties and of babies than of people over 70. A model trained
on it drifts towards the common ages (*regression to the mean*): rare old faces are predicted too
young. Four remedies, each a function that returns a **new** table and never edits its input:

* :func:`cap_ages` -- clip (or drop) ages above a limit, e.g. 80: the long sparse tail stops
  dominating squared errors, at the price of never predicting above the cap.
* :func:`downsample` -- keep at most ``max_per_band`` images per age band (seeded): balanced, but
  throws away data.
* :func:`upsample` -- repeat images of rare bands until each has ``min_per_band`` (seeded): keeps
  all data, but repeats the same faces, so use it together with augmentation (lesson 05).
* :func:`add_sample_weights` -- one weight per image, inversely proportional to its band's
  frequency (smoothed by a power, optionally clipped) and normalised to mean 1: nothing is thrown
  away or repeated, and :func:`agecourse.data.make_dataset` passes the weights to the loss.

The same idea works for any other labelled grouping: :func:`add_group_weights` gives every
gender x race cell (or race alone) the same total weight, optionally on top of the age-band weights
(lesson 12's mitigation of a gap between groups of people).

Balance only the **training** part. Validation and test must keep the real distribution, or the
reported error no longer describes the data the model will meet.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from agecourse.data import AGE_BANDS, AGE_MAX


def bands_of(images: pd.DataFrame, edges: Sequence[int] | None = None) -> pd.Series:
    """The age band of every row as strings (``"20-29"``, ``"70+"``), indexed like ``images``.

    ``edges`` are the band boundaries, lower bound included; ``None`` means the course's
    :data:`agecourse.data.AGE_BANDS`. Use finer edges (e.g. every 5 years) for smoother weights.
    """
    edges = list(AGE_BANDS if edges is None else edges)
    if sorted(edges) != edges or len(set(edges)) != len(edges) or len(edges) < 2:
        raise ValueError(f"band edges must be at least two increasing numbers, got {edges}")
    ages = images["age"].to_numpy()
    if len(ages) and (ages.min() < edges[0] or ages.max() >= edges[-1]):
        raise ValueError(f"ages {ages.min()}-{ages.max()} fall outside the band edges {edges[0]}-{edges[-1] - 1}")
    labels = [f"{lo}+" if hi > AGE_MAX else f"{lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:])]
    bands = pd.cut(ages, bins=edges, right=False, labels=labels)
    return pd.Series(bands, index=images.index, name="band")


def cap_ages(images: pd.DataFrame, max_age: int = 80, drop: bool = False) -> pd.DataFrame:
    """Ages above ``max_age`` become ``max_age`` (or, with ``drop=True``, those rows are removed).

    Clipping keeps every face but changes labels: a 95-year-old is taught as 80, so the model can no
    longer predict above the cap, and its error on those faces is at least ``age - max_age``.
    """
    if max_age < 0:
        raise ValueError(f"max_age must be >= 0, got {max_age}")
    if drop:
        return images[images["age"] <= max_age].reset_index(drop=True)
    return images.assign(age=images["age"].clip(upper=max_age).astype(images["age"].dtype))


def downsample(
    images: pd.DataFrame, max_per_band: int | None = None, seed: int = 42, edges: Sequence[int] | None = None
) -> pd.DataFrame:
    """Keep at most ``max_per_band`` randomly chosen (seeded) images in every age band.

    ``None`` uses the median band count, a common compromise: the biggest bands shrink to a
    typical size and the small ones are untouched. Returns the kept rows sorted by ``path``.
    """
    bands = bands_of(images, edges)
    counts = bands.value_counts()
    counts = counts[counts > 0]
    limit = int(np.median(counts)) if max_per_band is None else int(max_per_band)
    if limit < 1:
        raise ValueError(f"max_per_band must be at least 1, got {limit}")
    kept = [
        group.sample(min(limit, len(group)), random_state=seed) for _, group in images.groupby(bands, observed=True)
    ]
    return pd.concat(kept).sort_values("path").reset_index(drop=True)


def upsample(
    images: pd.DataFrame, min_per_band: int | None = None, seed: int = 42, edges: Sequence[int] | None = None
) -> pd.DataFrame:
    """Repeat randomly chosen (seeded) images of the rarer bands until every non-empty band has at
    least ``min_per_band`` rows; every original row is kept exactly once plus any repeats.

    ``None`` uses the largest band count (full balance). Repeated rows are the same files, so
    without augmentation the model sees identical faces again and can memorise them. Empty bands
    stay empty: there is nothing to repeat. The result is shuffled (seeded).
    """
    bands = bands_of(images, edges)
    counts = bands.value_counts()
    counts = counts[counts > 0]
    target = int(counts.max()) if min_per_band is None else int(min_per_band)
    if target < 1:
        raise ValueError(f"min_per_band must be at least 1, got {target}")
    rng = np.random.default_rng(seed)
    parts = [images]
    for _, group in images.groupby(bands, observed=True):
        missing = target - len(group)
        if missing > 0:
            parts.append(group.iloc[rng.integers(0, len(group), missing)])
    combined = pd.concat(parts, ignore_index=True)
    return combined.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def scale_to_mean_one(raw: np.ndarray, max_weight: float | None) -> np.ndarray:
    """Scale positive ``raw`` weights to mean 1 (the loss keeps its scale); with ``max_weight``,
    clip the largest at that value and scale the others up so the mean stays exactly 1 (no weight
    exceeds the clip). :func:`band_weights` and :func:`add_group_weights` finish with it."""
    weights = raw / raw.mean()
    if max_weight is None or weights.max() <= max_weight:
        return weights
    if max_weight < 1:
        raise ValueError(f"max_weight must be at least 1 (weights have mean 1), got {max_weight}")
    order = np.sort(raw)[::-1]
    n = len(raw)
    suffix = np.cumsum(order[::-1])[::-1]  # suffix[k] = sum of order[k:]
    # Find how many of the largest weights end up clipped: k clipped, the rest scaled by s.
    # The first k that keeps the largest unclipped weight within the limit is the answer (it also
    # leaves every clipped weight above it, so exactly k are clipped and the mean is 1).
    for k in range(1, n):
        scale = (n - k * max_weight) / suffix[k]
        if scale * order[k] <= max_weight:
            return np.minimum(raw * scale, max_weight)
    raise AssertionError("unreachable")


def band_weights(
    images: pd.DataFrame, power: float = 1.0, max_weight: float | None = None, edges: Sequence[int] | None = None
) -> pd.Series:
    """The weight of one image in each band: ``(1 / band_count) ** power``, scaled so the weights
    of all rows average exactly 1, optionally clipped at ``max_weight``.

    ``power=1`` balances fully (every band carries the same total weight), ``power=0.5`` is a
    softer square-root version, ``power=0`` gives every image weight 1. Indexed by band name.
    """
    if power < 0:
        raise ValueError(f"power must be >= 0, got {power}")
    if len(images) == 0:
        raise ValueError("cannot weight an empty table")
    bands = bands_of(images, edges)
    counts = bands.value_counts(sort=False)
    counts = counts[counts > 0]
    per_band = (1.0 / counts.astype(float)) ** power
    raw = bands.astype(str).map(per_band).to_numpy(dtype=float)
    weights = scale_to_mean_one(raw, max_weight)
    table = pd.Series(weights, index=bands.astype(str).to_numpy()).groupby(level=0).first()
    return table.reindex(counts.index.astype(str)).rename("weight")


def add_sample_weights(
    images: pd.DataFrame,
    column: str = "weight",
    power: float = 1.0,
    max_weight: float | None = None,
    edges: Sequence[int] | None = None,
) -> pd.DataFrame:
    """A copy of ``images`` with a ``column`` of per-image weights from :func:`band_weights`.

    Pass the column to :func:`agecourse.data.make_dataset` (``sample_weight="weight"``) and Keras
    multiplies each image's loss by it. The mean is 1, so the loss keeps its usual scale and the
    learning rate needs no change.
    """
    per_band = band_weights(images, power=power, max_weight=max_weight, edges=edges)
    bands = bands_of(images, edges).astype(str)
    return images.assign(**{column: bands.map(per_band).astype("float64").to_numpy()})


GROUP_COLUMNS = ("gender", "race")


def group_weights(
    images: pd.DataFrame,
    by: str | Sequence[str] = ("race", "gender"),
    power: float = 1.0,
) -> pd.Series:
    """One raw weight per row, ``(1 / size of its group) ** power``, for the groups of ``by``
    (``"race"``, ``"gender"`` or both); indexed like ``images``, not yet scaled.

    ``power=1`` gives every group the same total weight (balanced), ``0.5`` a softer square-root
    version, ``0`` weight 1 everywhere. :func:`add_group_weights` scales them to mean 1.
    """
    columns = [by] if isinstance(by, str) else list(by)
    bad = [c for c in columns if c not in GROUP_COLUMNS]
    if bad or not columns:
        raise ValueError(f"group by one or more of {', '.join(GROUP_COLUMNS)}, got {by!r}")
    missing = [c for c in columns if c not in images]
    if missing:
        raise ValueError(f"the table has no {', '.join(missing)} column to group by")
    if power < 0:
        raise ValueError(f"power must be >= 0, got {power}")
    if len(images) == 0:
        raise ValueError("cannot weight an empty table")
    sizes = images.groupby(columns)[columns[0]].transform("size").astype(float)
    return ((1.0 / sizes) ** power).rename("group_weight")


def add_group_weights(
    images: pd.DataFrame,
    by: str | Sequence[str] = ("race", "gender"),
    column: str = "weight",
    power: float = 1.0,
    max_weight: float | None = None,
    combine: bool = False,
) -> pd.DataFrame:
    """A copy of ``images`` with per-image weights that balance the groups of ``by``.

    With ``combine=True`` the new weights multiply the existing ``column`` (e.g. the age-band
    weights of :func:`add_sample_weights`), so rare ages *and* rare groups count more. Either way
    the result is scaled to mean 1 and, with ``max_weight``, clipped without changing the mean.
    """
    raw = group_weights(images, by=by, power=power).to_numpy(dtype=float)
    if combine:
        if column not in images:
            raise ValueError(f"combine=True needs an existing {column!r} column to multiply")
        existing = images[column].to_numpy(dtype=float)
        if (existing <= 0).any() or not np.isfinite(existing).all():
            raise ValueError(f"the {column!r} column must hold positive finite weights to combine with")
        raw = raw * existing
    return images.assign(**{column: scale_to_mean_one(raw, max_weight)})


def weight_shares(
    images: pd.DataFrame, by: str | Sequence[str] = ("race", "gender"), weight: str = "weight"
) -> pd.DataFrame:
    """Per group of ``by``: ``images`` (count), ``image_share`` and ``weight_share`` (the share of the
    total weight the group carries, i.e. how much it counts in the loss)."""
    columns = [by] if isinstance(by, str) else list(by)
    grouped = images.groupby(columns)
    result = pd.DataFrame({"images": grouped.size(), "weight": grouped[weight].sum()})
    result["image_share"] = result["images"] / result["images"].sum()
    result["weight_share"] = result["weight"] / result["weight"].sum()
    return result.drop(columns="weight")


def compare(
    tables: dict[str, pd.DataFrame], weight: str | None = None, edges: Sequence[int] | None = None
) -> pd.DataFrame:
    """Rows per band for several tables side by side (one column per table), with a ``total`` row.

    With ``weight``, tables that have that column also get a ``<name> (weight share)`` column:
    the share of the total weight each band carries, i.e. how much it counts in the loss.
    """
    columns = {}
    for name, table in tables.items():
        bands = bands_of(table, edges)
        columns[name] = bands.value_counts(sort=False)
        if weight and weight in table:
            mass = table[weight].groupby(bands, observed=False).sum()
            columns[f"{name} (weight share)"] = mass / mass.sum()
    result = pd.DataFrame(columns)
    result.index = result.index.astype(str)
    result.loc["total"] = result.sum()
    shares = [c for c in result.columns if str(c).endswith("(weight share)")]
    result[shares] = result[shares].round(3)
    return result.astype({c: "int64" for c in result.columns if c not in shares})


# --- a short training that shows what balancing does (lesson 04; lesson 12's remedy) -------------

QUICK_EPOCHS = 8  # epochs of each short run (fewer when the profile trains fewer)
QUICK_BUDGET_S = 60.0  # and at most this many seconds of training per run, in every profile


def quick_recipe(settings):
    """``(settings, time_budget_s)`` for a short Model A run that lessons 04 and 12 train twice side by
    side (plain and balanced, same seed): the profile's recipe with at most :data:`QUICK_EPOCHS` epochs
    and :data:`QUICK_BUDGET_S` seconds per run. In the ``ci`` profile the network is also smaller
    (32 px, filters 8-16-32), so each run takes seconds; it then barely beats predicting the mean
    age, and balancing shows as a shift of the errors between age bands, which is what it does."""
    quick = settings.replace(epochs=min(settings.epochs, QUICK_EPOCHS))
    if settings.profile == "ci":
        quick = quick.replace(image_size=32, model_filters=(8, 16, 32), dense_units=32)
    return quick, QUICK_BUDGET_S


def describe_quick(quick, budget_s: float) -> str:
    """One line on what :func:`quick_recipe`'s run trains and its time limit, printed before training."""
    return (
        f"Each run: Model A at {quick.image_size} px, filters {'-'.join(map(str, quick.model_filters))}, "
        f"at most {quick.epochs} epochs or {budget_s:.0f} s of training, seed {quick.seed} "
        f"('{quick.profile}' profile)."
    )


def plot_balance(
    before: pd.DataFrame,
    after: pd.DataFrame,
    title: str = "Age bands before and after",
    labels: tuple[str, str] = ("before", "after"),
    weight: str | None = None,
    edges: Sequence[int] | None = None,
):
    """Bar chart of images per age band before and after a balancing step.

    With ``weight`` (a column of ``after``), the "after" bars show the band's *effective* count:
    the sum of its weights, which is what the loss sees.
    """
    frames = []
    for label, table in zip(labels, (before, after)):
        bands = bands_of(table, edges)
        if weight and weight in table:
            values = table[weight].groupby(bands, observed=False).sum()
            label = f"{label} (sum of weights)"
        else:
            values = bands.value_counts(sort=False)
        frames.append(pd.DataFrame({"band": values.index.astype(str), "images": values.to_numpy(), "table": label}))
    data = pd.concat(frames, ignore_index=True)
    fig, ax = plt.subplots(figsize=(9.5, 3.6))
    sns.barplot(data, x="band", y="images", hue="table", ax=ax)
    ax.set_xlabel("age band (years)")
    ax.set_ylabel("images (or sum of weights)" if weight else "images")
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1.0), title=None, frameon=False)
    ax.set_title(title)
    fig.tight_layout()
    return fig
