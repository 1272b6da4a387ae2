"""The registry and model cards of the shipped course models (used by ``write_package_data.py``).

Everything in them is computed here from the training records (``bench/results/course_model_<x>.json``)
and the test-split predictions (``..._predictions.csv``): no number is typed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

INTENDED_USE = (
    "teaching and experimenting in this course; never decisions about people (hiring, access, age checks, "
    "policing, insurance, anything that affects someone)"
)
LICENCE = (
    "UTKFace is available for non-commercial research purposes only, and the copyright of its images "
    "belongs to their original owners (UTKFace's own terms, https://susanqq.github.io/UTKFace/). "
    "Models trained on it, these included, are shared under the same non-commercial research terms. "
    "The course code is MIT-licensed; that licence does not extend to the data or to these weights."
)
TITLES = {
    "a": "Model A (the course's own CNN, lessons 06-08)",
    "b": "Model B (MobileNetV2 + ImageNet weights, lesson 10)",
}
N_BOOTSTRAP = 2000
BOOTSTRAP_SEED = 0


def load_remark(load: dict, cores: int) -> str:
    """How to read a training run's load averages: the run itself keeps every core busy, so only the
    load at the start tells whether other work shared the machine (half the cores or more: it did)."""
    start = load["start"][0] if load.get("start") else None
    if start is None:
        return "load not recorded"
    if start >= cores / 2:
        return "other work was running when training started"
    return "the machine was otherwise idle when training started; the training itself makes the load at the end"


def predictions_table(csv: Path) -> pd.DataFrame:
    """The predictions CSV as :func:`agecourse.evaluate.predict_table` would return it."""
    from agecourse.data import age_band

    table = pd.read_csv(csv)
    table = table.rename(columns={"pred_age": "age_pred", "pred_gender_prob": "gender_prob"})
    table["gender_pred"] = (table["gender_prob"] >= 0.5).astype(int)
    table["age_error"] = table["age_pred"] - table["age"]
    table["age_band"] = age_band(table["age"])
    return table


def interval_entry(val_csv: Path, test_csv: Path) -> dict:
    """The registry's ``age_interval``: the split-conformal half-width (:mod:`agecourse.conformal`)
    from the plain validation predictions, and how often it held the true age on the test faces,
    overall and per age band (plain test predictions, as ``agecourse predict`` gives an age)."""
    from agecourse import conformal

    calibration = pd.read_csv(val_csv).rename(columns={"pred_age": "age_pred"})
    test = pd.read_csv(test_csv).rename(columns={"pred_age_plain": "age_pred"})
    half_width = conformal.conformal_half_width(calibration)
    coverage = conformal.coverage_table(conformal.with_intervals(test, half_width))
    rows = coverage.set_index("age_band")
    # In the order of the bands (the groupby gives them sorted as text: 0-2, 10-19, ...).
    by_start = sorted(
        conformal.band_half_widths(calibration).items(), key=lambda item: int(item[0].split("-")[0].rstrip("+"))
    )
    band_widths = dict(by_start)
    band_rows = conformal.coverage_table(conformal.with_intervals(test, band_widths)).set_index("age_band")
    return {
        "level": conformal.INTERVAL_LEVEL,
        "half_width": half_width,
        "method": (
            f"split conformal prediction (agecourse.conformal, lesson 09) on the plain predictions of the "
            f"{len(calibration):,} validation faces of its split"
        ),
        "calibration_csv": f"bench/results/{val_csv.name}",
        "test_coverage": float(rows.loc["all", "coverage"]),
        "test_coverage_by_band": {
            band: {"count": int(row["count"]), "coverage": float(row["coverage"])}
            for band, row in rows.drop(index="all").iterrows()
        },
        # What agecourse predict uses: one width per band of the predicted age (lesson 09's
        # band-conditional version), with its coverage on the same test faces.
        "band_half_widths": band_widths,
        "band_test_coverage": float(band_rows.loc["all", "coverage"]),
        "band_test_coverage_by_band": {
            band: {"count": int(row["count"]), "coverage": float(row["coverage"]), "width": float(row["width"])}
            for band, row in band_rows.drop(index="all").iterrows()
        },
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def group_tables(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per-age-band, per-gender, per-race and gender x race metrics (``agecourse.bias.group_metrics``)."""
    from agecourse.bias import group_metrics

    return {
        "age band": group_metrics(table, "age_band"),
        "gender": group_metrics(table, "gender"),
        "race": group_metrics(table, "race"),
        "gender x race": group_metrics(table, ("gender", "race")),
    }


def known_gaps(groups: dict[str, pd.DataFrame], overall_mae: float, overall_acc: float) -> list[str]:
    """The worst groups, computed: the reliable groups (>= 30 test faces) with the highest age MAE and
    the lowest gender accuracy, and the groups too small to measure."""
    table = pd.concat(groups.values(), ignore_index=True)
    reliable = table[table["reliable"]]
    gaps = []
    for _, row in reliable.sort_values("age_mae", ascending=False).head(3).iterrows():
        who = f"{row['attribute'].replace('_', ' ')} {row['group']}"
        gaps.append(
            f"age MAE {row['age_mae']:.1f} years for {who} (n={row['count']}, "
            f"overall {overall_mae:.1f}; signed error {row['mean_signed_error']:+.1f})"
        )
    for _, row in reliable.sort_values("gender_accuracy").head(2).iterrows():
        gaps.append(
            f"gender accuracy {row['gender_accuracy']:.0%} for {row['attribute'].replace('_', ' ')} {row['group']} "
            f"(n={row['count']}, overall {overall_acc:.0%})"
        )
    small = table[~table["reliable"]]
    if len(small):
        listed = ", ".join(f"{r['group']} (n={r['count']})" for _, r in small.head(6).iterrows())
        gaps.append(f"too few test faces to measure: {listed}{' ...' if len(small) > 6 else ''}")
    return gaps


def _markdown(frame: pd.DataFrame) -> str:
    columns = ["group", "count", "age_mae", "mean_signed_error", "gender_accuracy"]
    lines = ["| group | faces | age MAE | signed error | gender accuracy |", "|---|---|---|---|---|"]
    for _, row in frame[columns].iterrows():
        mark = "" if row["count"] >= 30 else " (few faces)"
        lines.append(
            f"| {row['group']}{mark} | {row['count']} | {row['age_mae']:.2f} | {row['mean_signed_error']:+.2f} | "
            f"{row['gender_accuracy']:.1%} |"
        )
    return "\n".join(lines)


FORMAT = "weights only (numpy .npz in Keras's weight order); agecourse rebuilds the architecture"


def temperature_entry(val_csv: Path, test_csv: Path) -> dict:
    """The registry's ``gender_temperature``: the temperature (:mod:`agecourse.calibration`) fitted on
    the plain validation predictions, and the expected calibration error before and after it on the
    validation and the plain test predictions (as ``agecourse predict`` gives a probability)."""
    from agecourse import calibration

    validation = pd.read_csv(val_csv).rename(columns={"pred_gender_prob": "gender_prob"})
    test = pd.read_csv(test_csv).rename(columns={"pred_gender_prob_plain": "gender_prob"})
    temperature = calibration.fit_temperature(validation)

    def ece(table: pd.DataFrame, scaled: bool) -> float:
        probability = (
            calibration.apply_temperature(table["gender_prob"], temperature) if scaled else table["gender_prob"]
        )
        return calibration.expected_calibration_error(table.assign(gender_prob=probability))

    return {
        "temperature": temperature,
        "method": (
            f"temperature scaling (agecourse.calibration, lesson 09) fitted on the plain predictions of the "
            f"{len(validation):,} validation faces of its split"
        ),
        "calibration_csv": f"bench/results/{val_csv.name}",
        "bins": calibration.CONFIDENCE_BINS,
        "validation_ece": {"before": ece(validation, False), "after": ece(validation, True)},
        "test_ece": {"before": ece(test, False), "after": ece(test, True)},
    }


def make_entry(
    key: str,
    record: dict,
    table: pd.DataFrame,
    folder: Path,
    age_interval: dict | None = None,
    gender_temperature: dict | None = None,
) -> tuple[dict, dict]:
    """The registry entry of one model (with its ``age_interval`` and ``gender_temperature`` when
    calibrated), and its per-group tables."""
    from agecourse import evaluate as ev

    model_file = folder / record["file"]
    metrics = ev.evaluate_table(table)
    intervals = ev.bootstrap_intervals(table, n_resamples=N_BOOTSTRAP, seed=BOOTSTRAP_SEED)
    groups = group_tables(table)
    data = record["data"]
    description = (
        f"{data['accepted']:,} real UTKFace faces (the aligned & cropped release, part-1 sample), "
        f"split {data['split']['train']:,} / {data['split']['val']:,} / {data['split']['test']:,} "
        f"train / validation / test, stratified by {data['stratified_by']}, seed {data['split_seed']}"
    )
    entry = {
        "name": record["model"],
        "title": TITLES[key],
        "file": model_file.name,
        "sha256": _sha256(model_file),
        "size_bytes": model_file.stat().st_size,
        "format": FORMAT,
        "architecture": record["architecture"],
        "reference": record["reference"],
        "card": f"model_{key}.md",
        "input_size": record["input_size"],
        "input": "RGB face chip, float32 pixel values 0-255, resized to a square",
        "outputs": {"age": "years (regression)", "gender": "probability of female (UTKFace label 1)"},
        "parameters": record["parameters"],
        "training_data": {
            "description": description,
            "dataset": data["name"],
            "accepted": data["accepted"],
            "rejected": data["rejected"],
            "split": data["split"],
            "split_csv": f"bench/results/{data['split_csv']}",
        },
        "split_seed": data["split_seed"],
        "profile_recipe": record["profile"],
        "recipe": record["recipe"],
        "selection": record["selection"],
        "best_epochs": record["best_epochs"],
        "trained": record["when"],
        "train_wall_s": record["train_wall_s"],
        "machine": record["machine"],
        "load_average": record["load_average"],
        "versions": record["versions"],
        "test": {
            "count": metrics["count"],
            "age_mae": metrics["age"]["mae"],
            "age_mae_ci95": list(intervals["age_mae"]),
            "age_rmse": metrics["age"]["rmse"],
            "age_mean_signed_error": metrics["age"]["mean_signed_error"],
            "gender_accuracy": metrics["gender"]["accuracy"],
            "gender_accuracy_ci95": list(intervals["gender_accuracy"]),
            "gender_auc": metrics["gender"]["auc"],
            "bootstrap": {"resamples": N_BOOTSTRAP, "seed": BOOTSTRAP_SEED, "level": 0.95},
            "predictions": record["test_metrics_at_training"]["predictions"].split(" (")[0],
            "predictions_csv": f"bench/results/course_model_{key}_predictions.csv",
        },
        "age_interval": age_interval,
        "gender_temperature": gender_temperature,
        "known_gaps": known_gaps(groups, metrics["age"]["mae"], metrics["gender"]["accuracy"]),
        "intended_use": INTENDED_USE,
        "licence": LICENCE,
    }
    return entry, groups


def write_card(entry: dict, groups: dict[str, pd.DataFrame], path: Path) -> Path:
    """Write the markdown model card of one entry."""
    test = entry["test"]
    data = entry["training_data"]
    recipe = ", ".join(f"{k} {v}" for k, v in entry["recipe"].items())
    best = "; ".join(
        f"{phase}: epoch {info['epoch']} of {info['epochs_run']} (validation age MAE {info['val_age_mae']:.2f})"
        for phase, info in entry["best_epochs"].items()
        if info
    )
    load = entry["load_average"]
    machine = entry["machine"]
    lines = [
        f"# Model card: {entry['title']}",
        "",
        f"Shipped as `agecourse/course_models/{entry['file']}` (`{entry['name']}`, "
        f"{entry['size_bytes'] / 1e6:.1f} MB, SHA-256 `{entry['sha256']}`). Written by "
        "`scripts/write_package_data.py` from its training record and test predictions; do not edit by hand.",
        "",
        "## What it does",
        "",
        f"Takes a face photo cropped like a UTKFace chip ({entry['input']}, {entry['input_size']} px) and returns "
        "an age in years and the probability that UTKFace's annotators would label the face female. It knows "
        "nothing but these two labels, which are annotations of apparent age and binary gender, not facts "
        "about a person.",
        "",
        "## Intended use",
        "",
        f"Intended use: {entry['intended_use']}.",
        "",
        "## Data and split",
        "",
        f"- Data: {data['description']}.",
        f"- Files rejected while loading: {data['rejected']}. The split lists file names only: `{data['split_csv']}`.",
        f"- Model choice: {entry['selection']}. Lowest validation loss: {best}.",
        f"- Recipe (the `{entry['profile_recipe']}` profile): {recipe}.",
        f"- Trained {entry['trained']} in {entry['train_wall_s'] / 60:.1f} minutes of wall time on "
        f"{machine['cores']} cores "
        f"({machine['cpu']}), 1-minute load average {load['start'][0] if load['start'] else 'n/a'} at start, "
        f"{load['end'][0] if load['end'] else 'n/a'} at the end ({load_remark(load, machine['cores'])}).",
        "",
        "## Test results",
        "",
        f"On the {test['count']:,} test faces (never used for training or model choice), scored with the "
        f"shipped file and the recipe's scoring ({test['predictions']} predictions, as `agecourse evaluate` "
        "scores it):",
        "",
        f"- age MAE **{test['age_mae']:.2f} years** (95 % bootstrap interval {test['age_mae_ci95'][0]:.2f}-"
        f"{test['age_mae_ci95'][1]:.2f}), RMSE {test['age_rmse']:.2f}, mean signed error "
        f"{test['age_mean_signed_error']:+.2f}",
        f"- gender accuracy **{test['gender_accuracy']:.1%}** ({test['gender_accuracy_ci95'][0]:.1%}-"
        f"{test['gender_accuracy_ci95'][1]:.1%}), ROC AUC {test['gender_auc']:.3f}",
        "",
        f"Intervals: percentile bootstrap over test faces, {test['bootstrap']['resamples']} resamples, seed "
        f"{test['bootstrap']['seed']}. Reproduce with `agecourse evaluate {entry['name']} --data "
        f"PATH/TO/utkface-part1 --split {data['split_csv']} --rows test`.",
        "",
    ]
    for title, frame in groups.items():
        lines += [f"### Per {title}", "", _markdown(frame), ""]
    interval = entry.get("age_interval")
    if interval:
        by_band = ", ".join(
            f"{band}: {row['coverage']:.0%} (n={row['count']})"
            for band, row in interval["test_coverage_by_band"].items()
        )
        band_coverage = ", ".join(
            f"{band}: {row['coverage']:.0%} (n={row['count']})"
            for band, row in interval["band_test_coverage_by_band"].items()
        )
        widths = ", ".join(f"{band}: ± {width:.1f}" for band, width in interval["band_half_widths"].items())
        lines += [
            "## Age intervals",
            "",
            f"`agecourse predict`, lesson 13 and the demo give each age a {interval['level']:.0%} interval from "
            f"{interval['method']} (`{interval['calibration_csv']}`), one width per band of the **predicted** age "
            f"(lesson 09's band-conditional version), in years: {widths}. On the test faces it held the true age "
            f"for **{interval['band_test_coverage']:.1%}** of them; per band of the true age: {band_coverage}.",
            "",
            f"One width for all faces (± {interval['half_width']:.1f} years) held for "
            f"**{interval['test_coverage']:.1%}**; per band of the true age: {by_band}. Either promise is for "
            "faces like the validation ones taken together, not "
            "for each band exactly, nor for photos unlike UTKFace chips.",
            "",
        ]
    temperature = entry.get("gender_temperature")
    if temperature:
        lines += [
            "## Gender probability",
            "",
            f"The model's raw probability of female is "
            f"{'over' if temperature['temperature'] > 1 else 'under'}-confident on the validation faces. "
            f"`agecourse predict`, lesson 13 and the demo divide its logit by **{temperature['temperature']:.2f}**, "
            f"from {temperature['method']}; no prediction changes side, so accuracy is the same. Expected "
            f"calibration error ({temperature['bins']} confidence bins) on the test faces: "
            f"**{temperature['test_ece']['before']:.3f}** raw, **{temperature['test_ece']['after']:.3f}** scaled "
            f"(validation: {temperature['validation_ece']['before']:.3f} and "
            f"{temperature['validation_ece']['after']:.3f}).",
            "",
        ]
    lines += [
        "Signed error is predicted minus true age (negative: guesses too young). Groups with fewer than 30 test "
        "faces are marked: their numbers are noise more than measurement.",
        "",
        "## Known failure cases",
        "",
        *[f"- {gap}" for gap in entry["known_gaps"]],
        "- photos unlike UTKFace chips: faces not frontal, not centred, partly hidden, very small or dark, "
        "drawings and masks; a face detector's crop that differs from UTKFace's alignment",
        "- UTKFace's labels themselves: age, gender and race are annotations of the photos, not self-reported, "
        "and contain errors; race comes in five coarse categories and gender in two",
        "",
        "## Licence and ownership",
        "",
        entry["licence"],
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_seen_files(split_csv: Path, path: Path) -> Path:
    """Write the sorted file names of the split's training and validation rows, gzipped (no
    timestamp, so the file only changes when the names do): the faces the shipped models saw."""
    import gzip

    table = pd.read_csv(split_csv)
    names = sorted(table.loc[table["part"].isin(["train", "val"]), "path"].map(lambda p: Path(p).name))
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as fh:
        fh.write(("\n".join(names) + "\n").encode("utf-8"))
    return path


def write_all(
    folder: Path,
    records: dict[str, Path],
    predictions: dict[str, Path],
    split_csv: Path | None = None,
    calibrations: dict[str, Path] | None = None,
) -> list[Path]:
    """Write ``registry.json`` and ``model_<key>.md`` for every model with a training record, and
    (given the split) ``training_files.txt.gz``; a model with validation predictions in
    ``calibrations`` gets its age interval (:func:`interval_entry`) and gender temperature
    (:func:`temperature_entry`); the temperature needs the validation file's ``pred_gender_prob``."""
    import time

    entries, written = [], []
    if split_csv is not None:
        written.append(write_seen_files(split_csv, folder / "training_files.txt.gz"))
    for key in sorted(records):
        record = json.loads(records[key].read_text())
        calibration = (calibrations or {}).get(key)
        interval = interval_entry(calibration, predictions[key]) if calibration else None
        has_probability = calibration is not None and "pred_gender_prob" in pd.read_csv(calibration, nrows=1)
        temperature = temperature_entry(calibration, predictions[key]) if has_probability else None
        entry, groups = make_entry(key, record, predictions_table(predictions[key]), folder, interval, temperature)
        written.append(write_card(entry, groups, folder / entry["card"]))
        entries.append(entry)
    registry = {
        "about": "Models shipped with agecourse, written by scripts/write_package_data.py; see agecourse.course_models",
        "written": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "models": entries,
    }
    path = folder / "registry.json"
    path.write_text(json.dumps(registry, indent=2, default=str) + "\n", encoding="utf-8")
    return [*written, path]
