"""Bias analysis: how errors differ between groups of people, and whether a remedy narrows the gaps.

Introduced in lesson 12 (bias analysis). Works on the predictions table of
:func:`agecourse.evaluate.predict_table` (one row per image: labels, ``age_pred``, ``gender_prob``,
``gender_pred``, ``age_error``).

Groups are UTKFace's own labels: **gender** (0 male, 1 female), **race** (0 White, 1 Black, 2 Asian,
3 Indian, 4 Others, see :data:`agecourse.data.RACES`), the **age band** of the true age
(:data:`agecourse.data.AGE_BANDS`) and intersections such as gender x race. For every group
:func:`group_metrics` reports the count, age MAE, signed mean age error (predicted minus true:
negative means the model guesses too young), gender accuracy, and the two error rates of the gender
head.

**Positive class = female (code 1).** So the *false-positive rate* (FPR) is the share of men the
model calls female, and the *false-negative rate* (FNR) the share of women it calls male. A group
with no men has no FPR (NaN) and a group with no women no FNR: they are undefined, not zero.

Small groups give noisy numbers. Every row carries ``reliable = count >= min_count`` so that small
groups stay visible but marked; :func:`fairness_gaps` says whether a gap involves one.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from agecourse.data import GENDERS, RACES, age_band

POSITIVE_GENDER = 1  # female is the positive class of every FPR / FNR in this module
MIN_GROUP_SIZE = 30  # groups with fewer images are flagged unreliable
ATTRIBUTES = ("gender", "race", "age_band")
DEFAULT_GROUPINGS: tuple[str | tuple[str, ...], ...] = (
    "gender",
    "race",
    "age_band",
    ("gender", "race"),
    ("gender", "age_band"),
)
METRICS = ("age_mae", "mean_signed_error", "gender_accuracy", "false_positive_rate", "false_negative_rate")
_NAMES = {"gender": "gender_name", "race": "race_name", "age_band": "age_band"}


def with_group_names(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of a predictions table with readable group columns: ``gender_name`` (male/female),
    ``race_name`` (White, Black, Asian, Indian, Others) and ``age_band`` (added if missing)."""
    missing = {"age", "gender", "race", "age_pred", "gender_pred"} - set(table.columns)
    if missing:
        raise ValueError(
            f"not a predictions table: missing column(s) {', '.join(sorted(missing))} "
            "(build it with agecourse.evaluate.predict_table)"
        )
    unknown_race = {int(code) for code in table["race"].unique()} - set(RACES)
    if unknown_race:
        raise ValueError(f"race codes {sorted(unknown_race)} are not UTKFace codes 0-4")
    out = table.copy()
    out["gender_name"] = pd.Categorical(out["gender"].astype(int).map(GENDERS), categories=list(GENDERS.values()))
    out["race_name"] = pd.Categorical(out["race"].astype(int).map(RACES), categories=list(RACES.values()))
    if "age_band" not in out:
        out["age_band"] = age_band(out["age"])
    for column in ("gender_name", "race_name", "age_band"):  # plots show only the groups present
        if isinstance(out[column].dtype, pd.CategoricalDtype):
            out[column] = out[column].cat.remove_unused_categories()
    if "age_error" not in out:
        out["age_error"] = out["age_pred"] - out["age"]
    return out


def as_attributes(by: str | Sequence[str]) -> tuple[str, ...]:
    """``by`` as a tuple of attribute names (``"race"`` -> ``("race",)``); a clear error for an
    attribute UTKFace does not label."""
    attributes = (by,) if isinstance(by, str) else tuple(by)
    bad = [a for a in attributes if a not in ATTRIBUTES]
    if bad or not attributes:
        raise ValueError(f"group by one or more of {', '.join(ATTRIBUTES)}, got {by!r}")
    return attributes


def _rates(group: pd.DataFrame) -> dict[str, float]:
    """Count, MAE, signed error, accuracy, FPR and FNR of one group (female = positive)."""
    truth = group["gender"].to_numpy().astype(int) == POSITIVE_GENDER
    predicted = group["gender_pred"].to_numpy().astype(int) == POSITIVE_GENDER
    negatives, positives = int((~truth).sum()), int(truth.sum())
    errors = group["age_error"].to_numpy(dtype=float)
    return {
        "count": len(group),
        "age_mae": float(np.abs(errors).mean()),
        "mean_signed_error": float(errors.mean()),
        "gender_accuracy": float((truth == predicted).mean()),
        "false_positive_rate": float((predicted & ~truth).sum() / negatives) if negatives else np.nan,
        "false_negative_rate": float((~predicted & truth).sum() / positives) if positives else np.nan,
        "men": negatives,
        "women": positives,
    }


def group_metrics(
    table: pd.DataFrame, by: str | Sequence[str] = "gender", min_count: int = MIN_GROUP_SIZE
) -> pd.DataFrame:
    """Per-group metrics of a predictions table.

    Args:
        table: from :func:`agecourse.evaluate.predict_table` (needs ``age``, ``gender``, ``race``,
            ``age_pred``, ``gender_pred``).
        by: ``"gender"``, ``"race"``, ``"age_band"``, or several of them for intersections, e.g.
            ``("gender", "race")``.
        min_count: groups with fewer images get ``reliable=False`` (kept, not hidden).

    Returns:
        One row per non-empty group: ``attribute`` (e.g. ``"gender x race"``), ``group`` (e.g.
        ``"female / Black"``), ``count``, ``age_mae``, ``mean_signed_error``, ``gender_accuracy``,
        ``false_positive_rate`` (men called female), ``false_negative_rate`` (women called male),
        ``men``, ``women`` and ``reliable``.
    """
    attributes = as_attributes(by)
    named = with_group_names(table)
    columns = [_NAMES[a] for a in attributes]
    rows = []
    for key, group in named.groupby(columns, observed=True, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        rows.append({"attribute": " x ".join(attributes), "group": " / ".join(str(k) for k in key), **_rates(group)})
    result = pd.DataFrame(rows, columns=["attribute", "group", "count", *METRICS, "men", "women"])
    result["reliable"] = result["count"] >= min_count
    return result


def overall_metrics(table: pd.DataFrame, min_count: int = MIN_GROUP_SIZE) -> pd.DataFrame:
    """The same columns as :func:`group_metrics` for the whole table (``attribute="overall"``,
    ``group="all"``): the reference every group is compared with."""
    named = with_group_names(table)
    row = pd.DataFrame([{"attribute": "overall", "group": "all", **_rates(named)}])
    row["reliable"] = row["count"] >= min_count
    return row


def bias_report(
    table: pd.DataFrame,
    groupings: Sequence[str | Sequence[str]] = DEFAULT_GROUPINGS,
    min_count: int = MIN_GROUP_SIZE,
    overall: bool = True,
) -> pd.DataFrame:
    """:func:`group_metrics` for several groupings stacked into one table (overall row first)."""
    parts = [overall_metrics(table, min_count)] if overall else []
    parts += [group_metrics(table, by, min_count) for by in groupings]
    return pd.concat(parts, ignore_index=True)


def fairness_gaps(metrics: pd.DataFrame, columns: Sequence[str] = METRICS, reliable_only: bool = False) -> pd.DataFrame:
    """Largest minus smallest value of each metric across the groups of each attribute.

    Args:
        metrics: from :func:`group_metrics` or :func:`bias_report` (the ``overall`` row is ignored).
        columns: the metrics to compare.
        reliable_only: compare only groups flagged reliable (``count >= min_count``).

    Returns:
        One row per attribute and metric: ``largest`` and ``largest_group``, ``smallest`` and
        ``smallest_group``, ``gap`` (largest - smallest), ``groups`` compared, and ``small_group``
        (True when the largest or smallest group is flagged unreliable, so the gap may be noise).
        Groups where a metric is undefined (FPR of an all-female group) are skipped for that metric;
        with fewer than two groups left the gap is NaN.
    """
    rows = []
    for attribute, part in metrics[metrics["attribute"] != "overall"].groupby("attribute", sort=False):
        if reliable_only:
            part = part[part["reliable"]]
        for column in columns:
            values = part.dropna(subset=[column])
            row = {
                "attribute": attribute,
                "metric": column,
                "largest": np.nan,
                "largest_group": None,
                "smallest": np.nan,
                "smallest_group": None,
                "gap": np.nan,
                "groups": len(values),
                "small_group": False,
            }
            if len(values) >= 2:
                high = values.loc[values[column].idxmax()]
                low = values.loc[values[column].idxmin()]
                row.update(
                    largest=float(high[column]),
                    largest_group=high["group"],
                    smallest=float(low[column]),
                    smallest_group=low["group"],
                    gap=float(high[column] - low[column]),
                    small_group=not (bool(high["reliable"]) and bool(low["reliable"])),
                )
            rows.append(row)
    return pd.DataFrame(
        rows,
        columns=[
            "attribute",
            "metric",
            "largest",
            "largest_group",
            "smallest",
            "smallest_group",
            "gap",
            "groups",
            "small_group",
        ],
    )


def compare_before_after(
    table_before: pd.DataFrame,
    table_after: pd.DataFrame,
    by: str | Sequence[str] = "gender",
    columns: Sequence[str] = METRICS,
    min_count: int = MIN_GROUP_SIZE,
) -> pd.DataFrame:
    """Per-group metrics of two predictions tables (before and after a remedy) side by side.

    Both tables should cover the same test images. Returns the overall row and one row per group
    of ``by`` with ``count``, ``reliable`` and, for each metric, ``<metric>_before``,
    ``<metric>_after`` and ``<metric>_change`` (after - before; for MAE and error rates a negative
    change is an improvement, for accuracy a positive one, for the signed error closer to 0 is).
    """
    if len(table_before) != len(table_after):
        raise ValueError(
            f"the tables differ in size ({len(table_before)} vs {len(table_after)}): "
            "compare predictions on the same test images"
        )

    def metrics_of(table: pd.DataFrame) -> pd.DataFrame:
        return pd.concat([overall_metrics(table, min_count), group_metrics(table, by, min_count)], ignore_index=True)

    before, after = metrics_of(table_before), metrics_of(table_after)
    keys = ["attribute", "group"]
    merged = before[keys + ["count", "reliable"]].copy()
    after = before[keys].merge(after, on=keys, how="left")
    for column in columns:
        merged[f"{column}_before"] = before[column].to_numpy()
        merged[f"{column}_after"] = after[column].to_numpy()
        merged[f"{column}_change"] = merged[f"{column}_after"] - merged[f"{column}_before"]
    return merged


def compare_gaps(gaps_before: pd.DataFrame, gaps_after: pd.DataFrame) -> pd.DataFrame:
    """Two :func:`fairness_gaps` tables side by side: ``gap_before``, ``gap_after``, ``change`` and
    the groups at the extremes after the remedy (a remedy can move the gap to other groups)."""
    keys = ["attribute", "metric"]
    merged = gaps_before[keys + ["gap"]].merge(
        gaps_after[keys + ["gap", "largest_group", "smallest_group", "small_group"]],
        on=keys,
        suffixes=("_before", "_after"),
        how="outer",
    )
    merged["change"] = merged["gap_after"] - merged["gap_before"]
    return merged[keys + ["gap_before", "gap_after", "change", "largest_group", "smallest_group", "small_group"]]


def compare_models(
    tables: dict[str, pd.DataFrame],
    by: str | Sequence[str] = "gender",
    metric: str = "age_mae",
    min_count: int = MIN_GROUP_SIZE,
) -> pd.DataFrame:
    """One metric per group for several models on the same test faces, side by side.

    Args:
        tables: model name -> predictions table (e.g. ``{"Model A": ..., "Model B": ...}``).
        by: the grouping, as in :func:`group_metrics`.
        metric: one of :data:`METRICS`.

    Returns:
        One row per group (the overall row first) with ``count``, ``reliable`` and one column per
        model, then a final ``gap`` row: largest minus smallest group value of each model.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    sizes = {name: len(table) for name, table in tables.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"the tables differ in size ({sizes}): compare models on the same test images")
    result = None
    for name, table in tables.items():
        metrics = pd.concat([overall_metrics(table, min_count), group_metrics(table, by, min_count)], ignore_index=True)
        part = metrics.set_index("group")[["count", "reliable", metric]].rename(columns={metric: name})
        result = part if result is None else result.join(part[[name]], how="left")  # same faces, same groups
    groups = result.drop(index="all")
    gap = {name: groups[name].max() - groups[name].min() for name in tables}
    result.loc["gap (largest - smallest)"] = {
        "count": groups["count"].sum(),
        "reliable": groups["reliable"].all(),
        **gap,
    }
    return result


def per_group(table: pd.DataFrame, by: str | list[str]) -> pd.DataFrame:
    """Count, age MAE and gender accuracy of each group: one pandas ``groupby``."""
    return (
        table.assign(
            abs_error=(table["age_pred"] - table["age"]).abs(),
            correct=(table["gender_pred"] == table["gender"]).astype(float),
        )
        .groupby(by, observed=True)
        .agg(count=("abs_error", "size"), age_mae=("abs_error", "mean"), gender_accuracy=("correct", "mean"))
    )


def group_labels(table: pd.DataFrame, by: str | Sequence[str]) -> pd.Series:
    """The group of every row as one string, as in :func:`group_metrics` (``"female / Black"`` for
    ``by=("gender", "race")``), indexed like ``table``."""
    attributes = as_attributes(by)
    named = with_group_names(table)
    parts = [named[_NAMES[a]].astype(str) for a in attributes]
    labels = parts[0]
    for part in parts[1:]:
        labels = labels + " / " + part
    return labels.rename("group")


def abs_errors_and_hits(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per face: the absolute age error in years and 1.0 / 0.0 for a right / wrong gender prediction."""
    abs_error = (table["age_pred"] - table["age"]).abs().to_numpy(dtype=np.float64)
    correct = (table["gender_pred"].astype(int) == table["gender"].astype(int)).to_numpy(dtype=np.float64)
    return abs_error, correct


def percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """The middle ``level`` of ``values`` (bootstrap replicates): ``(low, high)`` percentiles."""
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def group_intervals(
    table: pd.DataFrame,
    by: str | Sequence[str] = "race",
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    min_count: int = MIN_GROUP_SIZE,
) -> pd.DataFrame:
    """Age MAE and gender accuracy of every group with percentile bootstrap intervals.

    Each group's faces are resampled with replacement ``n_resamples`` times (within the group, so
    its size stays fixed): a group of 40 faces gets a wide interval, which is the honest answer to
    "how sure are we of this number?". Returns one row per group (overall first) with ``count``,
    ``age_mae``, ``age_mae_low``, ``age_mae_high``, ``gender_accuracy``, ``gender_accuracy_low``,
    ``gender_accuracy_high`` and ``reliable``.
    """
    rng = np.random.default_rng(seed)
    rows = []
    abs_error, correct = abs_errors_and_hits(table)
    order = ["all", *group_metrics(table, by, min_count)["group"]]
    row_labels = group_labels(table, by).to_numpy()
    for group in order:
        mask = np.ones(len(table), bool) if group == "all" else row_labels == group
        err, ok = abs_error[mask], correct[mask]
        picks = rng.integers(0, len(err), size=(n_resamples, len(err)))
        mae_low, mae_high = percentile_interval(err[picks].mean(axis=1), level)
        acc_low, acc_high = percentile_interval(ok[picks].mean(axis=1), level)
        rows.append(
            {
                "attribute": "overall" if group == "all" else " x ".join(as_attributes(by)),
                "group": group,
                "count": int(mask.sum()),
                "age_mae": float(err.mean()),
                "age_mae_low": mae_low,
                "age_mae_high": mae_high,
                "gender_accuracy": float(ok.mean()),
                "gender_accuracy_low": acc_low,
                "gender_accuracy_high": acc_high,
                "reliable": int(mask.sum()) >= min_count,
            }
        )
    return pd.DataFrame(rows)


def _paired(before: pd.DataFrame, after: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two predictions tables with rows in the same face order (paired by ``path``)."""
    if "path" not in before or "path" not in after:
        raise ValueError("before/after tables are paired by their 'path' column; one table has none")
    a, b = before.set_index("path", drop=False), after.set_index("path", drop=False)
    if a.index.has_duplicates or b.index.has_duplicates or set(a.index) != set(b.index):
        raise ValueError("the before and after tables must hold the same test faces, once each")
    return a.reset_index(drop=True), b.loc[a.index].reset_index(drop=True)


INTERVAL_METRICS = ("age_mae", "gender_accuracy")  # the metrics with bootstrap intervals here


def _metric_rows(table: pd.DataFrame, metric: str) -> np.ndarray:
    if metric not in INTERVAL_METRICS:
        raise ValueError(f"metric must be one of {', '.join(INTERVAL_METRICS)}, got {metric!r}")
    abs_error, correct = abs_errors_and_hits(table)
    return abs_error if metric == "age_mae" else correct


def paired_group_changes(
    before: pd.DataFrame,
    after: pd.DataFrame,
    by: str | Sequence[str] = "race",
    metrics: Sequence[str] = ("age_mae", "gender_accuracy"),
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    min_count: int = MIN_GROUP_SIZE,
) -> pd.DataFrame:
    """Every group's metric before and after a remedy, and the change with a paired bootstrap interval.

    The same faces are resampled for both tables (within each group), so the interval measures how
    much the *models* differ on this group, not which faces happen to be in it. A change whose
    interval contains 0 is not distinguishable from noise at this group size. Returns one row per
    group (overall first) with ``count``, ``reliable`` and, per metric, ``<m>_before``,
    ``<m>_after``, ``<m>_change`` (after - before), ``<m>_change_low`` and ``<m>_change_high``.
    """
    a, b = _paired(before, after)
    labels = group_labels(a, by).to_numpy()
    order = ["all", *group_metrics(a, by, min_count)["group"]]
    values = {m: (_metric_rows(a, m), _metric_rows(b, m)) for m in metrics}
    rng = np.random.default_rng(seed)
    rows = []
    for group in order:
        mask = np.ones(len(a), bool) if group == "all" else labels == group
        picks = rng.integers(0, int(mask.sum()), size=(n_resamples, int(mask.sum())))
        row = {
            "attribute": "overall" if group == "all" else " x ".join(as_attributes(by)),
            "group": group,
            "count": int(mask.sum()),
            "reliable": int(mask.sum()) >= min_count,
        }
        for m, (va, vb) in values.items():
            diff = vb[mask] - va[mask]
            low, high = percentile_interval(diff[picks].mean(axis=1), level)
            row.update(
                {
                    f"{m}_before": float(va[mask].mean()),
                    f"{m}_after": float(vb[mask].mean()),
                    f"{m}_change": float(diff.mean()),
                    f"{m}_change_low": low,
                    f"{m}_change_high": high,
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


def gap_change(
    before: pd.DataFrame,
    after: pd.DataFrame,
    by: str | Sequence[str],
    metric: str,
    groups: tuple[str, str],
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, float | str | int]:
    """The gap ``metric(groups[0]) - metric(groups[1])`` before and after a remedy, with intervals.

    Faces are resampled within each of the two groups (stratified, sizes fixed) and paired across the
    two tables. Returns ``gap_before`` / ``gap_after`` with ``_low`` / ``_high`` bounds, ``change``
    (after - before: towards 0 means the gap narrowed) with its interval, and the group sizes.
    """
    a, b = _paired(before, after)
    labels = group_labels(a, by).to_numpy()
    first, second = groups
    masks = [labels == g for g in groups]
    for group, mask in zip(groups, masks):
        if not mask.any():
            raise ValueError(f"no test faces in group {group!r} of {by!r}")
    va, vb = _metric_rows(a, metric), _metric_rows(b, metric)
    rng = np.random.default_rng(seed)
    means_a, means_b = [], []
    for mask in masks:
        idx = np.flatnonzero(mask)
        picks = idx[rng.integers(0, len(idx), size=(n_resamples, len(idx)))]
        means_a.append(va[picks].mean(axis=1))
        means_b.append(vb[picks].mean(axis=1))
    gaps_a, gaps_b = means_a[0] - means_a[1], means_b[0] - means_b[1]
    gap_a = float(va[masks[0]].mean() - va[masks[1]].mean())
    gap_b = float(vb[masks[0]].mean() - vb[masks[1]].mean())
    result: dict[str, float | str | int] = {
        "attribute": " x ".join(as_attributes(by)),
        "metric": metric,
        "groups": f"{first} minus {second}",
        "count_first": int(masks[0].sum()),
        "count_second": int(masks[1].sum()),
        "gap_before": gap_a,
        "gap_after": gap_b,
        "change": gap_b - gap_a,
    }
    for name, values in (("gap_before", gaps_a), ("gap_after", gaps_b), ("change", gaps_b - gaps_a)):
        result[f"{name}_low"], result[f"{name}_high"] = percentile_interval(values, level)
    return result


def plot_group_intervals(tables: dict[str, pd.DataFrame], metric: str = "gender_accuracy", title: str | None = None):
    """Each group's ``metric`` with its 95 % interval (:func:`group_intervals` tables), one marker
    per table (e.g. before and after a remedy), side by side: overlapping bars mean the two values
    are not clearly different at this group size."""
    first = next(iter(tables.values()))
    groups = list(first["group"])
    fig, ax = plt.subplots(figsize=(max(5.0, 0.7 * len(groups) + 2.5), 3.8))
    offsets = np.linspace(-0.15, 0.15, len(tables)) if len(tables) > 1 else [0.0]
    for (name, table), offset in zip(tables.items(), offsets):
        table = table.set_index("group").reindex(groups)
        x = np.arange(len(groups)) + offset
        low = table[metric] - table[f"{metric}_low"]
        high = table[f"{metric}_high"] - table[metric]
        ax.errorbar(x, table[metric], yerr=[low, high], fmt="o", capsize=3, label=name)
    labels = [f"{g}\n(n={n})" for g, n in zip(groups, first["count"])]
    ax.set_xticks(np.arange(len(groups)), labels, rotation=45, ha="right", fontsize=8)
    ax.set(ylabel=metric.replace("_", " "), title=title or f"{metric.replace('_', ' ')} with 95 % intervals")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# --- plots ------------------------------------------------------------------------------------


def plot_signed_errors(
    table: pd.DataFrame,
    by: str = "race",
    hue: str | None = "gender",
    title: str = "Signed age error (predicted - true) per group",
):
    """Box plots of the signed age error per group (and per gender within it): a box below zero
    means that group is guessed too young; a taller box means less consistent predictions."""
    as_attributes(by)
    named = with_group_names(table)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * named[_NAMES[by]].nunique() + 3), 3.8))
    sns.boxplot(
        data=named, x=_NAMES[by], y="age_error", hue=_NAMES[hue] if hue else None, ax=ax, fliersize=2, linewidth=0.8
    )
    ax.axhline(0, color="black", lw=1)
    ax.set(xlabel=by.replace("_", " "), ylabel="years (predicted - true)", title=title)
    if by == "age_band":
        ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    return fig


def plot_error_distributions(
    table: pd.DataFrame, by: str = "gender", title: str = "Distribution of the signed age error"
):
    """Overlaid density curves of the signed age error, one per group of ``by`` (each scaled to
    its own group, so a small group is not dwarfed by a big one)."""
    as_attributes(by)
    named = with_group_names(table)
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    sns.kdeplot(data=named, x="age_error", hue=_NAMES[by], common_norm=False, ax=ax, warn_singular=False)
    ax.axvline(0, color="black", lw=1)
    ax.set(xlabel="years (predicted - true)", title=title)
    fig.tight_layout()
    return fig


def plot_predicted_vs_actual_by_gender(table: pd.DataFrame, title: str = "Predicted vs true age, per gender"):
    """One scatter panel per gender (coloured by race) with the ideal diagonal: whether one gender's
    ages are pulled more towards the middle than the other's."""
    named = with_group_names(table)
    grid = sns.relplot(
        data=named, x="age", y="age_pred", col="gender_name", hue="race_name", s=12, alpha=0.6, height=3.6, aspect=1.0
    )
    top = float(max(named["age"].max(), named["age_pred"].max()))
    for ax in grid.axes.flat:
        ax.plot([0, top], [0, top], color="black", lw=1, ls="--")
        ax.set(xlabel="true age", ylabel="predicted age")
    grid.set_titles("{col_name}")
    grid.legend.set_title("race")
    grid.figure.suptitle(title, y=1.03)
    return grid.figure


def plot_group_metric(metrics: pd.DataFrame, metric: str = "age_mae", title: str | None = None):
    """Bar chart of one metric per group of a :func:`group_metrics` table, small (unreliable)
    groups hatched and their counts written on the bars."""
    data = metrics[metrics["attribute"] != "overall"]
    fig, ax = plt.subplots(figsize=(max(4.5, 0.55 * len(data) + 2), 3.6))
    bars = ax.bar(data["group"], data[metric].fillna(0), color="#4c72b0")
    for bar, (_, row) in zip(bars, data.iterrows()):
        if not row["reliable"]:
            bar.set_hatch("//")
            bar.set_alpha(0.5)
        ax.annotate(
            f"n={row['count']}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=7,
        )
    ax.set(
        ylabel=metric.replace("_", " "),
        title=title or f"{metric.replace('_', ' ')} by {data['attribute'].iloc[0]} (hatched: too few images to trust)",
    )
    ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    return fig
