"""Evaluation: predictions table, age and gender metrics, per-band errors, the standard plots.

Introduced in lesson 09 (evaluate); the bias lesson (12) reuses :func:`predict_table`.

The **scoring recipe** lives here and nowhere else: :func:`score` (flip-averaged predictions when
``settings.flip_tta``, then :func:`evaluate_table`) is how lessons, ``agecourse run`` /
``agecourse evaluate`` (:func:`evaluate_folder`) and the benchmarks report a model's quality, and
each says which predictions it used (``metrics["predictions"]``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from agecourse.data import GENDERS, age_band

# TensorFlow (test-time flipping) and matplotlib / seaborn (the plots) are imported inside the
# functions that use them: the command line imports this module for its metrics, and importing
# them would add seconds (and TensorFlow's start-up lines) to ``agecourse data scan``.

# Published results of comparable projects, for the comparison table of lesson 09 and bench/.
# Their splits and data differ from ours (most use a random split of full UTKFace), so the
# comparison is indicative only.
PUBLISHED_RESULTS = [
    {"model": "custom CNN (student project)", "age_mae": 7.56, "gender_accuracy": 0.860},
    {"model": "Xception transfer (student project)", "age_mae": 6.88, "gender_accuracy": 0.868},
    {"model": "custom CNN (student project)", "age_mae": 7.55, "gender_accuracy": 0.878},
    {"model": "custom CNN (student project)", "age_mae": 6.84, "gender_accuracy": 0.902},
    {"model": "ResNet50 transfer (student project)", "age_mae": 8.51, "gender_accuracy": 0.800},
    {"model": "ResNet18, full UTKFace", "age_mae": 5.4, "gender_accuracy": None},
    {"model": "state of the art (Paplham & Franc, CVPR 2024)", "age_mae": 3.87, "gender_accuracy": None},
    {"model": "MiVOLO (state of the art)", "age_mae": 4.23, "gender_accuracy": 0.977},
]


def predict_table(model, dataset, images: pd.DataFrame, flip_average: bool = False) -> pd.DataFrame:
    """Run ``model`` over ``dataset`` (unshuffled, built from ``images``) and return one row per
    image: the labels, ``age_pred``, ``gender_prob``, ``gender_pred`` and ``age_error`` (signed,
    predicted minus true).

    ``flip_average=True`` also predicts every image mirrored left-right and averages the two
    answers (test-time augmentation: twice the prediction time, usually a slightly lower error).
    """
    outputs = _predict_two_heads(model, dataset)
    if flip_average:
        outputs = [(a + b) / 2 for a, b in zip(outputs, _predict_two_heads(model, _mirrored(dataset)))]
    return _table(images, outputs)


def predict_both(model, dataset, images: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(plain, flip_averaged)`` prediction tables of :func:`predict_table`, running the model once
    over the images and once over their mirror images (not three times), for a report that gives
    both scores (the benchmarks)."""
    plain = _predict_two_heads(model, dataset)
    mirrored = _predict_two_heads(model, _mirrored(dataset))
    return _table(images, plain), _table(images, [(a + b) / 2 for a, b in zip(plain, mirrored)])


def _predict_two_heads(model, dataset) -> list[np.ndarray]:
    """``[age, gender probability]`` as flat float64 arrays, whether the model returns a list or a dict."""
    outputs = model.predict(dataset, verbose=0)
    if isinstance(outputs, dict):
        outputs = [outputs["age"], outputs["gender"]]
    return [np.asarray(o, dtype=np.float64).reshape(-1) for o in outputs]


def _mirrored(dataset):
    """``dataset`` with every image flipped left-right (labels unchanged)."""
    # lazy: the command line imports this module for its tables; TensorFlow (seconds) and the
    # plotting libraries below load only when a function needs them
    import tensorflow as tf

    return dataset.map(lambda x, *rest: (tf.image.flip_left_right(x), *rest))


def _table(images: pd.DataFrame, outputs: list[np.ndarray]) -> pd.DataFrame:
    """The predictions table of :func:`predict_table` from ``[age, gender probability]`` arrays."""
    age, prob = outputs
    if len(age) != len(images):
        raise ValueError(
            f"model returned {len(age)} predictions for {len(images)} images "
            "(was the dataset shuffled, or did some images fail to decode?)"
        )
    table = images.reset_index(drop=True).copy()
    table["age_pred"] = age
    table["gender_prob"] = prob
    table["gender_pred"] = (prob >= 0.5).astype(int)
    table["age_error"] = table["age_pred"] - table["age"]
    table["age_band"] = age_band(table["age"])
    return table


def age_metrics(table: pd.DataFrame) -> dict[str, float]:
    """MAE, RMSE, signed mean error (bias) and R^2 of the age predictions, in years."""
    y, p = table["age"], table["age_pred"]
    return {
        "mae": float(skm.mean_absolute_error(y, p)),
        "rmse": float(np.sqrt(skm.mean_squared_error(y, p))),
        "mean_signed_error": float((p - y).mean()),
        "r2": float(skm.r2_score(y, p)) if len(y) > 1 else float("nan"),
    }


def gender_metrics(table: pd.DataFrame) -> dict:
    """Accuracy, ROC AUC, confusion matrix and per-gender precision / recall / F1 / TNR."""
    y, p = table["gender"].astype(int), table["gender_pred"].astype(int)
    result: dict = {"accuracy": float(skm.accuracy_score(y, p))}
    result["auc"] = float(skm.roc_auc_score(y, table["gender_prob"])) if y.nunique() == 2 else float("nan")
    cm = skm.confusion_matrix(y, p, labels=[0, 1])
    result["confusion_matrix"] = cm.tolist()
    precision, recall, f1, support = skm.precision_recall_fscore_support(y, p, labels=[0, 1], zero_division=0)
    for code, name in GENDERS.items():
        # The true-negative rate of one class is the recall of the other.
        other = 1 - code
        tnr = cm[other, other] / cm[other].sum() if cm[other].sum() else float("nan")
        result[name] = {
            "precision": float(precision[code]),
            "recall": float(recall[code]),
            "f1": float(f1[code]),
            "true_negative_rate": float(tnr),
            "support": int(support[code]),
        }
    return result


def per_band_metrics(table: pd.DataFrame) -> pd.DataFrame:
    """Age MAE, signed error and gender accuracy for each age band."""
    grouped = table.groupby("age_band", observed=True)
    return pd.DataFrame(
        {
            "count": grouped.size(),
            "age_mae": grouped["age_error"].apply(lambda e: e.abs().mean()),
            "mean_signed_error": grouped["age_error"].mean(),
            "gender_accuracy": grouped.apply(lambda g: (g["gender"] == g["gender_pred"]).mean(), include_groups=False),
        }
    )


def evaluate_table(table: pd.DataFrame) -> dict:
    """All headline metrics of a predictions table as a JSON-ready dict."""
    bands = per_band_metrics(table)
    return {
        "count": int(len(table)),
        "age": age_metrics(table),
        "gender": gender_metrics(table),
        "per_age_band": {
            str(k): {c: (float(v) if c != "count" else int(v)) for c, v in row.items()} for k, row in bands.iterrows()
        },
    }


# --- the scoring recipe: how every caller reports a model's quality -------------------------------


def predictions_name(flip_tta: bool) -> str:
    """What the scoring recipe predicts with: ``"flip-averaged"`` (``settings.flip_tta``) or ``"plain"``."""
    return "flip-averaged" if flip_tta else "plain"


def recipe_table(model, dataset, images: pd.DataFrame, settings) -> pd.DataFrame:
    """The predictions table of the scoring recipe for ``settings``: :func:`predict_table`,
    flip-averaged when ``settings.flip_tta`` is on. Lessons, ``agecourse run`` and
    ``agecourse evaluate``, and the benchmarks' headline scores all predict this way."""
    return predict_table(model, dataset, images, flip_average=settings.flip_tta)


def score(model, dataset, images: pd.DataFrame, settings) -> tuple[pd.DataFrame, dict]:
    """``(table, metrics)`` of the scoring recipe: :func:`recipe_table`, then :func:`evaluate_table`
    with ``metrics["predictions"]`` naming how it predicted (:func:`predictions_name`)."""
    table = recipe_table(model, dataset, images, settings)
    metrics = evaluate_table(table)
    metrics["predictions"] = predictions_name(settings.flip_tta)
    return table, metrics


def score_line(metrics: dict) -> str:
    """One line for a report: age MAE, gender accuracy, how many images, and how they were predicted."""
    how = f" ({metrics['predictions']} predictions)" if "predictions" in metrics else ""
    return (
        f"age MAE {metrics['age']['mae']:.2f} years, gender accuracy {metrics['gender']['accuracy']:.1%} "
        f"on {metrics['count']} images{how}"
    )


def bootstrap_intervals(
    table: pd.DataFrame, n_resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of the test age MAE and gender accuracy (lesson 09).

    A test split of ~1,200 faces measures a model only so precisely: resample its rows with
    replacement ``n_resamples`` times and keep the middle ``level`` of the recomputed metrics. Two
    models whose intervals overlap widely may not really differ; a target missed by less than the
    interval's half-width is within the noise of the split.
    """
    if len(table) == 0:
        raise ValueError("bootstrap_intervals needs a non-empty predictions table")
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(table), size=(n_resamples, len(table)))
    abs_error = (table["age_pred"] - table["age"]).abs().to_numpy(dtype=np.float64)
    correct = (table["gender_pred"].astype(int) == table["gender"].astype(int)).to_numpy(dtype=np.float64)
    tail = 100 * (1 - level) / 2
    result = {}
    for name, values in (("age_mae", abs_error), ("gender_accuracy", correct)):
        low, high = np.percentile(values[rows].mean(axis=1), [tail, 100 - tail])
        result[name] = (float(low), float(high))
    return result


def paired_mae_difference(
    table_a: pd.DataFrame, table_b: pd.DataFrame, n_resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """Age MAE of model A minus model B on the same test faces, with a paired bootstrap interval.

    Pairs rows by ``path`` (both tables must hold the same faces), so the spread comes from the
    difference between the models, not from which faces happen to be in the split: a positive
    difference whose interval stays above 0 means B is more accurate on this data.
    """
    if "path" not in table_a or "path" not in table_b:
        raise ValueError("paired_mae_difference pairs faces by their 'path' column; one table has none")
    a, b = table_a.set_index("path"), table_b.set_index("path")
    if a.index.has_duplicates or b.index.has_duplicates or set(a.index) != set(b.index):
        raise ValueError("the two predictions tables must hold the same faces, once each")
    b = b.loc[a.index]
    difference = ((a["age_pred"] - a["age"]).abs() - (b["age_pred"] - b["age"]).abs()).to_numpy(dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = difference[rng.integers(0, len(difference), size=(n_resamples, len(difference)))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return {"difference": float(difference.mean()), "low": float(low), "high": float(high)}


def classification_report(table: pd.DataFrame) -> str:
    """scikit-learn's text report for the gender head, with class names."""
    return skm.classification_report(
        table["gender"], table["gender_pred"], labels=[0, 1], target_names=[GENDERS[0], GENDERS[1]], zero_division=0
    )


def comparison_table(results: dict[str, dict], include_published: bool = True, data: str = "") -> pd.DataFrame:
    """Our models beside published results: ``results`` maps a model name to an
    :func:`evaluate_table` dict. ``data`` describes what our models were tested on (it fills the
    ``data`` column); published rows are marked as such, with full UTKFace and their own splits,
    so the comparison is indicative only."""
    rows = [
        {
            "model": name,
            "age_mae": r["age"]["mae"],
            "gender_accuracy": r["gender"]["accuracy"],
            "source": "this course",
            "data": data,
        }
        for name, r in results.items()
    ]
    if include_published:
        rows += [
            dict(row, source="published (different split)", data="UTKFace, their own split")
            for row in PUBLISHED_RESULTS
        ]
    return pd.DataFrame(rows)


def save_metrics(metrics: dict, path: str | os.PathLike) -> Path:
    """Write metrics to a JSON file, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2, default=float))
    return path


# --- a folder of UTKFace-named images (``agecourse evaluate``) -----------------------------------


def split_rows(split_csv: str | os.PathLike, rows: str) -> set[str]:
    """File names of the ``rows`` part (``train``, ``val``, ``test`` or ``all``) of a saved split
    (:meth:`agecourse.data.Split.save`, or ``bench/results/course_models_split.csv``, file names only)."""
    path = Path(split_csv).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such split file")
    try:
        table = pd.read_csv(path, dtype={"path": str})
    except (ValueError, pd.errors.ParserError) as err:
        raise ValueError(f"{path}: not a readable split CSV ({err})") from err
    if not {"path", "part"} <= set(table.columns):
        raise ValueError(f"{path}: not a saved split (needs 'path' and 'part' columns)")
    if rows != "all":
        table = table[table["part"] == rows]
    if table.empty:
        raise ValueError(f"{path}: has no {rows!r} rows")
    return set(table["path"].map(lambda p: Path(p).name))


def folder_images(data: str | os.PathLike, split: str | os.PathLike | None = None, rows: str = "test"):
    """The usable UTKFace-named images of a folder or archive (a :class:`agecourse.data.LoadResult`),
    or with ``split`` only those of that saved split's ``rows`` part, matched by file name (every one
    must be in ``data``). Unusable files (malformed names, undecodable images) are in its rejects."""
    from agecourse.data import check_images, load_utkface

    if split is None:
        loaded = load_utkface(data)
    else:
        wanted = split_rows(split, rows)
        loaded = load_utkface(data, check=False)
        names = loaded.images["path"].map(lambda p: Path(p).name)
        missing = wanted - set(names)
        if missing:
            raise ValueError(
                f"{data}: {len(missing)} of the {len(wanted)} {rows!r} files of {split} are not there "
                f"(e.g. {sorted(missing)[0]})"
            )
        good, bad, converted = check_images(loaded.images[names.isin(wanted)].reset_index(drop=True))
        loaded.images, loaded.converted = good, converted
        loaded.rejects = pd.concat([loaded.rejects, bad], ignore_index=True) if len(bad) else loaded.rejects
        loaded.source = f"{loaded.source}, the {len(wanted)} {rows!r} rows of {split}"
    if len(loaded.images) == 0:
        raise ValueError(f"{data}: no usable UTKFace-named images ({len(loaded.rejects)} files rejected)")
    return loaded


def evaluate_folder(
    model,
    settings,
    data: str | os.PathLike,
    batch_size: int = 64,
    split: str | os.PathLike | None = None,
    rows: str = "test",
) -> dict:
    """Metrics of ``model`` on the images of :func:`folder_images` with the scoring recipe of
    ``settings`` (:func:`score`: flip-averaged when ``settings.flip_tta``), at the model's input
    size; what ``agecourse evaluate`` prints. ``metrics["data"]`` says which images were used and
    lists the rejected files with their reasons."""
    from agecourse.data import make_dataset

    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or not shape[1] or shape[1] != shape[2]:
        raise ValueError(f"{model.name} takes {shape[1:3]} images; course models take fixed-size square images")
    loaded = folder_images(data, split, rows)
    images = make_dataset(loaded.images, int(shape[1]), batch_size=batch_size)
    _, metrics = score(model, images, loaded.images, settings)
    metrics["data"] = {
        "source": loaded.source,
        "accepted": len(loaded.images),
        "rejected": len(loaded.rejects),
        "converted": loaded.converted,
        "rejects": loaded.rejects[["file", "reason"]].to_dict(orient="records"),
    }
    metrics["recipe"] = f"the '{settings.profile}' profile's scoring recipe"
    return metrics


# --- plots ------------------------------------------------------------------------------------


def plot_predicted_vs_actual(table: pd.DataFrame, title: str = "Predicted vs actual age"):
    """Scatter of predicted against true age, coloured by gender, with the ideal diagonal."""
    import matplotlib.pyplot as plt  # lazy, like TensorFlow in predict_table: the CLI imports this module
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(5.5, 5))
    data = table.assign(gender_name=table["gender"].map(GENDERS))
    sns.scatterplot(data=data, x="age", y="age_pred", hue="gender_name", alpha=0.5, s=14, ax=ax)
    top = float(max(table["age"].max(), table["age_pred"].max()))
    ax.plot([0, top], [0, top], color="black", lw=1, ls="--", label="perfect")
    ax.set(xlabel="true age", ylabel="predicted age", title=title)
    ax.legend(title="gender")
    fig.tight_layout()
    return fig


def plot_error_histogram(table: pd.DataFrame, title: str = "Signed age error (predicted - true)"):
    """Histogram of signed age errors per gender: where the model over- or under-estimates."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(6, 3.6))
    data = table.assign(gender_name=table["gender"].map(GENDERS))
    sns.histplot(data=data, x="age_error", hue="gender_name", bins=40, element="step", ax=ax)
    ax.axvline(0, color="black", lw=1)
    ax.set(xlabel="years", title=title)
    fig.tight_layout()
    return fig


def plot_band_mae(tables: dict[str, pd.DataFrame], title: str = "Age MAE per age band"):
    """Bar chart of MAE per age band for one or more models (``{name: predictions table}``)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    rows = []
    for name, table in tables.items():
        bands = per_band_metrics(table)
        rows += [{"model": name, "age band": str(band), "MAE": row["age_mae"]} for band, row in bands.iterrows()]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    sns.barplot(data=pd.DataFrame(rows), x="age band", y="MAE", hue="model", ax=ax)
    ax.set(ylabel="MAE (years)", title=title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(table: pd.DataFrame, title: str = "Gender confusion matrix"):
    """Confusion matrix of the gender head with class names (scikit-learn's display)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3.6))
    skm.ConfusionMatrixDisplay.from_predictions(
        table["gender"],
        table["gender_pred"],
        labels=[0, 1],
        display_labels=[GENDERS[0], GENDERS[1]],
        ax=ax,
        colorbar=False,
    )
    ax.set_title(title)
    fig.tight_layout()
    return fig


def gender_metrics_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per-gender precision, recall, true-negative rate, F1 and support as a small table
    (one row per gender), from a predictions table; the numbers of :func:`gender_metrics`."""
    metrics = gender_metrics(table)
    columns = ["precision", "recall", "true_negative_rate", "f1", "support"]
    return pd.DataFrame(
        [{"gender": name, **{c: metrics[name][c] for c in columns}} for name in GENDERS.values()]
    ).set_index("gender")


def age_summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """Overall and per-age-band MAE, RMSE and signed error of the age head in one table, the
    overall row last, so the hardest bands stand out next to the average."""

    def row(errors: pd.Series) -> dict:
        return {
            "count": int(len(errors)),
            "MAE": float(errors.abs().mean()),
            "RMSE": float(np.sqrt((errors**2).mean())),
            "mean signed error": float(errors.mean()),
        }

    rows = {str(band): row(group["age_error"]) for band, group in table.groupby("age_band", observed=True)}
    rows["all ages"] = row(table["age_error"])
    summary = pd.DataFrame.from_dict(rows, orient="index")
    summary.index.name = "age band"
    return summary
