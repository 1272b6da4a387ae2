"""Collect every result in ``bench/results/`` into the table of ``bench/README.md`` and draw the
MAE-per-age-band plot.

Reads whatever exists (``pipeline``, ``speed``, ``notebooks_ci``, ``notebooks_cpu``,
``notebooks_cpu_utkface``, ``model_a``, ``model_b``, ``bias`` JSON, and the models'
``*_predictions.csv``); anything missing is shown as "not run".
The generated part of the README sits between two marker lines; the text around it is kept.

    python bench/bench_report.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import LESSON_FIELDS, MODEL_A_FIELDS, MODEL_B_FIELDS, RESULTS, ROOT, stale_fields  # noqa: E402

README = ROOT / "bench" / "README.md"
BEGIN, END = "<!-- BEGIN RESULTS (bench_report.py) -->", "<!-- END RESULTS -->"
TOP_README = ROOT / "README.md"
TOP_BEGIN, TOP_END = "<!-- BEGIN RESULTS SUMMARY (bench/bench_report.py) -->", "<!-- END RESULTS SUMMARY -->"
PLOT = RESULTS / "mae_per_band.png"
NOT_RUN = "not run"
RSS_TARGET_BYTES = 1.5e9
SPEEDUP_TARGET = 2.0
CI_NOTEBOOK_TARGET_S = 40  # per lesson, on an idle 2-core machine (the project's test budget)
CPU_NOTEBOOK_TARGET_S = 600  # per lesson in the cpu profile on 2 cores (issue 25)
CPU_NOTEBOOK_MEMORY_BYTES = 2e9  # a Binder session's memory
# The notebook runs: result name -> how the table calls it.
NOTEBOOK_RUNS = {
    "notebooks_ci": "ci",
    "notebooks_cpu": "cpu, synthetic faces",
    "notebooks_cpu_utkface": "cpu, real faces",
}

# Anchors that agecourse.evaluate.PUBLISHED_RESULTS does not hold (the other ones come from there).
EXTRA_ANCHORS = [
    {
        "model": "same custom CNN (student project) after tuning",
        "age_mae": 7.0,
        "gender_accuracy": 0.90,
        "approx": True,
        "after_mae": 7.55,  # listed right after that project's first result
    },
]


def anchors() -> list[dict]:
    """agecourse.evaluate.PUBLISHED_RESULTS with the extra anchors placed after their project's row."""
    from agecourse.evaluate import PUBLISHED_RESULTS

    rows = list(PUBLISHED_RESULTS)
    for extra in EXTRA_ANCHORS:
        after = next((i for i, r in enumerate(rows) if r["age_mae"] == extra["after_mae"]), len(rows) - 1)
        rows.insert(after + 1, extra)
    return rows


def load(name: str) -> dict | None:
    """``bench/results/<name>.json`` or ``None`` when that benchmark has not been run."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def fmt(value, digits: int = 1, suffix: str = "") -> str:
    """A number rounded for the table, or "not run"/"–" for missing values."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{suffix}"
    return f"{value}{suffix}"


def gb(mib: float | None) -> float | None:
    """MiB (what ru_maxrss gives) to decimal GB (what the target says)."""
    return None if mib is None else mib * 2**20 / 1e9


def verdict(ok: bool | None) -> str:
    """Met / NOT met / not run."""
    return NOT_RUN if ok is None else ("**met**" if ok else "**not met**")


def load_note(result: dict) -> str:
    """When and under what load a result was measured."""
    load_avg = result.get("load_average", {})
    start, end = load_avg.get("start"), load_avg.get("end")
    loads = f"load {start[0]:.1f} → {end[0]:.1f} on {load_avg.get('cores')} cores" if start and end else "load unknown"
    return f"{result.get('when', '?')}, {loads}"


def pm(summary: dict, digits: int = 2, scale: float = 1.0, suffix: str = "") -> str:
    """``mean ± sd`` of a :func:`common.mean_sd` summary, e.g. ``5.31 ± 0.08``."""
    sd = summary.get("sd")
    mean = f"{scale * summary['mean']:.{digits}f}"
    return mean + (f" ± {scale * sd:.{digits}f}" if sd is not None else "") + suffix


def model_row(name: str, result: dict | None) -> dict:
    """One row of the quality table for Model A or B: the three-seed means of the recipe's test scores."""
    if result is None or "summary" not in result:
        note = NOT_RUN if result is None else "an old single-run result: rerun the benchmark (three seeds)"
        return {"model": name, "age_mae": None, "gender_accuracy": None, "note": note}
    summary = result["summary"]
    recipe = summary["test_recipe"]
    first = result["per_seed"][0]
    predictions_kind = first["scores"]["recipe"]["predictions"]
    values = result.get("values", {})
    bits = [
        f"{first['scores']['test']['count']:,} test faces of the UTKFace part-1 sample",
        f"seeds {', '.join(str(s) for s in result['seeds'])}",
        f"{predictions_kind} predictions",
    ]
    if "transfer_image_size" in values:
        bits.append(
            f"{values['transfer_backbone']} alpha {values['transfer_alpha']} at {values['transfer_image_size']} px"
        )
    elif "image_size" in values:
        bits.append(f"{values['image_size']} px")
    bits.append(f"training {pm(summary['train_wall_s'], 1, 1 / 60)} min per seed")
    return {
        "model": name,
        "age_mae": recipe["age_mae"]["mean"],
        "gender_accuracy": recipe["gender_accuracy"]["mean"],
        "age_mae_text": pm(recipe["age_mae"]),
        "gender_text": pm(recipe["gender_accuracy"], 1, 100, " %"),
        "note": "; ".join(bits),
        "summary": summary,
    }


def predictions(name: str, seed: int | None = None, flip_average: bool = False) -> pd.DataFrame | None:
    """A model's predictions CSV with the columns :mod:`agecourse.evaluate` needs, or ``None``: one
    seed's rows (``seed``; the first seed in the file when ``None``), plain or flip-averaged."""
    from agecourse.data import age_band

    path = RESULTS / f"{name}_predictions.csv"
    if not path.exists():
        return None
    table = pd.read_csv(path)
    if "seed" in table.columns:
        table = table[table["seed"] == (table["seed"].iloc[0] if seed is None else seed)].reset_index(drop=True)
    if flip_average:
        table = table.drop(columns=["pred_age", "pred_gender_prob"]).rename(
            columns={"pred_age_flip_avg": "pred_age", "pred_gender_prob_flip_avg": "pred_gender_prob"}
        )
    table = table.rename(columns={"pred_age": "age_pred", "pred_gender_prob": "gender_prob"})
    missing = {"age", "age_pred", "gender"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    if "gender_pred" not in table.columns:
        if "gender_prob" not in table.columns:
            raise ValueError(f"{path}: needs a gender_pred or gender_prob column")
        table["gender_pred"] = (table["gender_prob"] >= 0.5).astype(int)
    table["age_error"] = table["age_pred"] - table["age"]
    table["age_band"] = age_band(table["age"])
    return table


def band_plot(tables: dict[str, pd.DataFrame]) -> Path | None:
    """Save the MAE-per-age-band bar chart of both models (agecourse.evaluate.plot_band_mae)."""
    if not tables:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from agecourse.evaluate import plot_band_mae

    fig = plot_band_mae(tables, title="Age MAE per age band, test split of the UTKFace part-1 sample")
    fig.savefig(PLOT, dpi=110)
    plt.close(fig)
    return PLOT


def section_pipeline(result: dict | None) -> tuple[list[str], dict]:
    lines = ["### Data pipeline: one pass over a full-UTKFace-sized set", ""]
    if result is None:
        return [*lines, NOT_RUN, ""], {"rss": None, "speedup": None}
    s = result["settings"]
    lines += [
        f"{s['images']:,} images decoded to {s['image_size']} px, {s['data']}; {s.get('repeats', '')}. "
        f"Measured {load_note(result)}.",
        "",
        "| approach | images/s | peak RSS | seconds (in process) | process wall s (with imports) |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label in (
        ("naive", "student approach: PIL → float32 per image → `np.array`"),
        ("agecourse", "agecourse: `scan_folder` + `make_dataset` (tf.data)"),
    ):
        r = result.get(key)
        if r:
            lines.append(
                f"| {label} | {fmt(r['images_per_s'], 0)} | {fmt(gb(r['peak_rss_mb']), 2)} GB "
                f"| {fmt(r['seconds'])} | {fmt(r.get('process_wall_s'))} |"
            )
    ours, naive = result["agecourse"], result["naive"]
    rss_ok = ours["peak_rss_mb"] * 2**20 <= RSS_TARGET_BYTES
    speed_ok = result["speedup"] >= SPEEDUP_TARGET
    lines += [
        "",
        f"Speed-up {result['speedup']:.2f}×; the naive approach peaks at "
        f"{gb(naive['peak_rss_mb']):.1f} GB ({result['rss_ratio_naive_over_agecourse']:.1f}× agecourse) "
        f"for an array of {naive['array_gb']:.1f} GB.",
        "",
    ]
    return lines, {"rss": rss_ok, "speedup": speed_ok, "rss_value": ours["peak_rss_mb"], "x": result["speedup"]}


def describe_model(row: dict) -> str:
    """What was timed, e.g. " (filters 16-32-64-128)" for Model A; empty when not recorded."""
    if "filters" in row:
        return f" (filters {'-'.join(str(f) for f in row['filters'])})"
    if "backbone" in row:
        return f", {row['backbone']}"
    return ""


def section_speed(result: dict | None) -> list[str]:
    lines = ["### Training and inference speed (CPU)", ""]
    if result is None:
        return [*lines, NOT_RUN, ""]
    s = result["settings"]
    lines += [
        f"Batch {s['batch_size']}, {s['timed_steps']} timed steps after {s['warmup_steps']} warm-up, "
        f"{s['augmentation']}. Measured {load_note(result)}.",
        "",
    ]
    if "training" in result:
        lines += [
            "| model | phase | px | images/s (median step) | trainable / total params |",
            "|---|---|---:|---:|---:|",
        ]
        for r in result["training"]:
            lines.append(
                f"| {r['model']} | {r['phase']}{describe_model(r)} | {r['image_size']} | {fmt(r['images_per_s'])} "
                f"| {r['trainable_params']:,} / {r['total_params']:,} |"
            )
        lines.append("")
    lat = result.get("latency")
    if lat:
        lines += [
            f"`predict_faces` on one {lat['photo_px'][0]}×{lat['photo_px'][1]} photo ({lat['photo']}); "
            f"median of {lat['detect_only']['runs']} runs:",
            "",
            "| model | input px | predict_faces (read + detect + crop + model) | eager model call "
            "| `predict_on_batch` |",
            "|---|---:|---:|---:|---:|",
        ]
        for name in ("A", "B"):
            r = lat.get(f"model_{name}")
            if r:
                compiled = r.get("model_predict_on_batch", {}).get("median_ms")
                lines.append(
                    f"| {name} | {r['image_size']} | {fmt(r['predict_faces']['median_ms'])} ms "
                    f"| {fmt(r['model_call_only']['median_ms'])} ms | {fmt(compiled)}{' ms' if compiled else ''} |"
                )
        lines += ["", f"Face detection alone: {fmt(lat['detect_only']['median_ms'])} ms median.", ""]
    return lines


def uncertainty_lines(tables: dict[str, pd.DataFrame]) -> list[str]:
    """95 % bootstrap intervals of each model's test metrics, and of the paired A - B MAE difference."""
    from agecourse.evaluate import bootstrap_intervals, paired_mae_difference

    if not tables:
        return []
    bits = []
    for label, table in tables.items():
        ci = bootstrap_intervals(table)
        (mae_lo, mae_hi), (acc_lo, acc_hi) = ci["age_mae"], ci["gender_accuracy"]
        bits.append(f"{label} MAE {mae_lo:.2f}–{mae_hi:.2f}, gender accuracy {100 * acc_lo:.1f}–{100 * acc_hi:.1f} %")
    text = (
        f"How precise one run's score is: 95 % bootstrap intervals over the {len(next(iter(tables.values()))):,} "
        "test faces for each model's first seed, with the recipe's predictions "
        f"(`agecourse.evaluate.bootstrap_intervals`, 2,000 resamples): {'; '.join(bits)}."
    )
    if len(tables) == 2:
        (label_a, a), (label_b, b) = tables.items()
        try:
            diff = paired_mae_difference(a, b)
        except ValueError as error:  # different splits: say so instead of comparing unpaired faces
            text += f" No paired comparison: {error}."
        else:
            text += (
                f" {label_a} minus {label_b}, paired on the same faces: {diff['difference']:+.2f} years of MAE "
                f"({diff['low']:+.2f} to {diff['high']:+.2f})."
            )
    return [text, ""]


def seed_lines(label: str, result: dict) -> list[str]:
    """Per-seed rows of one model: validation and test, plain and flip-averaged, epochs and minutes."""
    lines = []
    for run in result["per_seed"]:
        scores, training = run["scores"], run["training"]
        epochs = (
            f"{training['epochs_frozen']} + {training['epochs_finetune']}"
            if "epochs_frozen" in training
            else f"{training['epochs_run']}/{training['epochs_max']}"
        )
        val, test, flip = scores["validation"], scores["test"], scores["test_flip_average"]
        lines.append(
            f"| {label} | {run['seed']} | {val['age_mae']:.2f} / {100 * val['gender_accuracy']:.1f} % "
            f"| {val['flip_average']['age_mae']:.2f} / {100 * val['flip_average']['gender_accuracy']:.1f} % "
            f"| {test['age_mae']:.2f} / {100 * test['gender_accuracy']:.1f} % "
            f"| {flip['age_mae']:.2f} / {100 * flip['gender_accuracy']:.1f} % | {epochs} "
            f"| {training['train_wall_s'] / 60:.1f} |"
        )
    return lines


def against_model_a(b: dict | None) -> dict | None:
    """Model B against Model A seed by seed, recomputed here from both results files' per-seed scores
    (``bench_model_b.compare_with_model_a``), so it always pairs the files as they are now."""
    if not b or "per_seed" not in b:
        return None
    from bench_model_b import compare_with_model_a

    return compare_with_model_a(b["per_seed"], b["data"]["split"])


def paired_lines(b: dict | None) -> list[str]:
    """Model B minus Model A over the same seeds (:func:`against_model_a`)."""
    against = against_model_a(b)
    if not against:
        return ["Model B against Model A: not run (both benchmarks, same seeds).", ""]
    if not against.get("paired"):
        return [f"Model B against Model A: not paired ({against['why']}).", ""]
    mae, accuracy = against["difference_b_minus_a"]["age_mae"], against["difference_b_minus_a"]["gender_accuracy"]

    def interval(summary: dict, scale: float = 1.0, digits: int = 2) -> str:
        low, high = summary["ci95"]
        return f"{scale * low:+.{digits}f} to {scale * high:+.{digits}f}"

    return [
        f"Model B minus Model A, seed by seed (seeds {', '.join(str(s) for s in against['seeds'])}, same split, "
        f"the recipes' predictions): age MAE {', '.join(f'{d:+.2f}' for d in mae['values'])} "
        f"(mean {mae['mean']:+.2f}, 95 % t-interval {interval(mae)}); gender accuracy "
        f"{', '.join(f'{100 * d:+.1f}' for d in accuracy['values'])} points (mean {100 * accuracy['mean']:+.1f}, "
        f"{interval(accuracy, 100, 1)}). Model B is called better on a measure only when every seed agrees and "
        f"the interval excludes zero: age MAE **{'yes' if against['b_better_age_mae'] else 'no'}**, gender "
        f"accuracy **{'yes' if against['b_better_gender_accuracy'] else 'no'}**.",
        "",
    ]


def section_quality(a: dict | None, b: dict | None, tables: dict[str, pd.DataFrame] | None = None) -> list[str]:
    lines = ["### Model quality (three seeds)", ""]
    rows = [model_row("Model A (this course)", a), model_row("Model B (this course)", b)]
    lines += [
        "Test scores of each recipe, mean ± sd over its seeds (same split; each seed changes initialisation "
        "and shuffling, and for Model B its cached views); the test split was scored once per seed.",
        "",
        "| model | age MAE (years) | gender accuracy | source / conditions |",
        "|---|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| **{r['model']}** | {r.get('age_mae_text', fmt(r['age_mae'], 2))} "
            f"| {r.get('gender_text', fmt(r['gender_accuracy'], 3))} | {r['note']} |"
        )
    for r in anchors():
        acc = None if r["gender_accuracy"] is None else 100 * r["gender_accuracy"]
        approx = "about " if r.get("approx") else ""
        mae, acc_text = f"{approx}{fmt(r['age_mae'], 2)}", f"{approx if acc else ''}{fmt(acc, 1, ' %')}"
        lines.append(f"| {r['model']} | {mae} | {acc_text} | published; different split and data |")
    lines += [
        "",
        "The published numbers use other splits, mostly of the full 23,708-image UTKFace (the course's "
        "real-data runs use the 7,850-image part-1 sample), other image sizes and much longer training; "
        "the state-of-the-art rows train large models on far more data. The comparison is indicative only.",
        "",
    ]
    per_seed = [seed_lines(label, result) for label, result in (("A", a), ("B", b)) if result and "per_seed" in result]
    if per_seed:
        lines += [
            "Every seed (validation: what model choices may look at; test: scored once per seed):",
            "",
            "| model | seed | validation MAE / gender | validation, flip-averaged | test | test, flip-averaged "
            "| epochs | training min |",
            "|---|---:|---:|---:|---:|---:|---|---:|",
            *[line for block in per_seed for line in block],
            "",
        ]
    lines += [*paired_lines(b), *uncertainty_lines(tables or {})]
    if PLOT.exists():
        lines += [f"![MAE per age band]({PLOT.relative_to(README.parent).as_posix()})", ""]
    else:
        lines += ["MAE per age band plot: not run (no predictions CSV yet).", ""]
    return lines


def section_ensemble(result: dict | None) -> list[str]:
    """Model A + Model B averaged (bench_ensemble.py): weights from validation, three-seed test."""
    lines = ["### Model A + Model B averaged (issue 26's targets)", ""]
    if not result:
        return [*lines, f"{NOT_RUN}: `bench/bench_ensemble.py` has not written `results/ensemble.json`.", ""]
    val, test, goal = result["validation"], result["test"], result["targets"]["b"]
    lines += [
        f"Weights chosen on the validation split ({val['validation_faces']:,} faces, {val['scoring']}): "
        f"age {val['age_weight_a']:.2f} × Model A + {1 - val['age_weight_a']:.2f} × Model B (lowest validation MAE), "
        f"probability of female {val['gender_weight_a']:.2f} × A + {1 - val['gender_weight_a']:.2f} × B (lowest "
        f"validation cross-entropy). Test split scored once with them, {test['scoring']}, seeds "
        f"{', '.join(str(s) for s in test['seeds'])}; mean ± sd over the seeds. Gender accuracy is also given "
        f"for faces aged {result['adult_age']} and over: babies' gender is barely visible in a face.",
        "",
        f"| model | age MAE (years) | gender accuracy | gender accuracy, ages ≥ {result['adult_age']} |",
        "|---|---:|---:|---:|",
    ]
    names = {"a": "Model A", "b": "Model B", "a+b": "Model A + Model B"}
    for key, name in names.items():
        row = test["summary"][key]
        lines.append(
            f"| {name} | {pm(row['age_mae'])} | {pm(row['gender_accuracy'], 1, 100, ' %')} "
            f"| {pm(row['gender_accuracy_age_10_plus'], 1, 100, ' %')} |"
        )
    best = test["summary"]["a+b"]
    lines += [
        "",
        f"Issue 26's Model B target (≤ {goal['age_mae_max']} years and ≥ {100 * goal['gender_accuracy_min']:.0f} %): "
        f"Model B {verdict(result['targets_met_model_b_target']['b']['age_mae'])} / "
        f"{verdict(result['targets_met_model_b_target']['b']['gender_accuracy'])}; the average "
        f"{best['age_mae']['mean'] - goal['age_mae_max']:+.3f} years and "
        f"{100 * (best['gender_accuracy']['mean'] - goal['gender_accuracy_min']):+.1f} points from it "
        f"({verdict(result['targets_met_model_b_target']['a+b']['age_mae'])} / "
        f"{verdict(result['targets_met_model_b_target']['a+b']['gender_accuracy'])}). The average is a measured "
        "recipe, not a shipped model: the course ships Model A and Model B separately.",
        "",
    ]
    return lines


def section_tuning(result: dict | None) -> list[str]:
    """The tuning log: every trial of ``bench/tune.py``, validation split only."""
    lines = ["### Tuning log (validation split only)", ""]
    if result is None:
        return [*lines, NOT_RUN, ""]
    lines += [
        "Every row is one trial of `bench/tune.py` (the command is in the row); none reads the test split.",
        "",
        "| trial | question | model | validation MAE / gender accuracy | conditions |",
        "|---|---|---|---|---|",
    ]
    for name, trial in result["trials"].items():
        out = trial["result"]
        where = f"`{trial['command']}`; {load_note(trial)}"
        if trial["kind"] == "history":
            for key, row in out.items():
                if "skipped" in row:
                    lines.append(f"| {name} | {trial['question']} | {key.upper()} | {row['skipped']} | {where} |")
                    continue
                restored, last = row["restored"], row["last"]
                lines.append(
                    f"| {name} | {trial['question']} | {key.upper()} ({row['phase']}) "
                    f"| restored epoch {restored['epoch']}: {restored['age_mae']:.2f} / "
                    f"{100 * restored['gender_accuracy']:.1f} %; last epoch {last['epoch']}: {last['age_mae']:.2f} / "
                    f"{100 * last['gender_accuracy']:.1f} % | from {row['source']}; {where} |"
                )
        elif trial["kind"] == "flip":
            for key, row in out.items():
                plain, flip = row["plain"], row["flip_average"]
                lines.append(
                    f"| {name} | {trial['question']} | {key.upper()} (shipped {row['model']} as it was then, "
                    f"{row['image_size']} px) "
                    f"| plain {plain['age_mae']:.2f} / {100 * plain['gender_accuracy']:.1f} %; flip-averaged "
                    f"{flip['age_mae']:.2f} / {100 * flip['gender_accuracy']:.1f} % | {where} |"
                )
        elif "skipped" in out:
            lines.append(f"| {name} | {trial['question']} | – | {out['skipped']} | {where} |")
        else:
            plain, flip = out["plain"], out["flip_average"]
            changes = ", ".join(f"`{k}={v}`" for k, v in out["set"].items())
            note = f" ({trial['note']})" if trial.get("note") else ""
            if "recipe" in out:  # the recipe it ran, against the cpu recipe (+ its changes) of today
                fields = MODEL_A_FIELDS if out["model"] == "a" else MODEL_B_FIELDS
                moved = stale_fields(out["recipe"], fields)
                if moved:
                    note += f" (the cpu recipe has moved since this ran: {'; '.join(moved)})"
            lines.append(
                f"| {name} | {trial['question']}{note} | {out['model'].upper()}: cpu recipe + {changes} "
                f"| plain {plain['age_mae']:.2f} / {100 * plain['gender_accuracy']:.1f} %; flip-averaged "
                f"{flip['age_mae']:.2f} / {100 * flip['gender_accuracy']:.1f} % "
                f"| seed {out['seed']}, {out['epochs_run']} epochs, {out['train_wall_s'] / 60:.1f} min; {where} |"
            )
    return [*lines, ""]


def section_bias(result: dict | None) -> list[str]:
    """Lesson 12's real-faces mitigation (``bench_bias.py``): targeted gaps and the overall cost."""
    lines = ["### Bias on real faces: age-band weights vs + race x gender balance", ""]
    if result is None:
        return [*lines, NOT_RUN, ""]

    def span(value: float, low: float, high: float, digits: int = 3) -> str:
        return f"{value:+.{digits}f} ({low:+.{digits}f} to {high:+.{digits}f})"

    arms = result["arms"]
    lines += [
        f"Model A, `cpu` profile, seed {result['data']['seed']}, trained twice on the same split: "
        + "; ".join(
            f"arm {k} ({v['name']}): {v['training']['epochs_run']}/{v['training']['epochs_max']} epochs, "
            f"{v['training']['train_wall_s'] / 60:.0f} min"
            for k, v in arms.items()
        )
        + f"; {load_note(result)}. Gaps and changes with 95 % bootstrap intervals (paired for changes).",
        "",
        "| measure | arm a | arm b | change (b - a) |",
        "|---|---:|---:|---:|",
    ]
    overall = next(r for r in result["comparison"]["paired_changes"]["race"] if r["group"] == "all")
    for metric in ("age_mae", "gender_accuracy"):
        change = span(overall[f"{metric}_change"], overall[f"{metric}_change_low"], overall[f"{metric}_change_high"])
        lines.append(
            f"| overall {metric.replace('_', ' ').replace('mae', 'MAE')} | {overall[f'{metric}_before']:.3f} "
            f"| {overall[f'{metric}_after']:.3f} | {change} |"
        )
    for gap in result["comparison"]["targeted_gaps"]:
        lines.append(
            f"| {gap['metric'].replace('_', ' ')} gap, {gap['groups']} (n={gap['count_first']}, {gap['count_second']}) "
            f"| {span(gap['gap_before'], gap['gap_before_low'], gap['gap_before_high'])} "
            f"| {span(gap['gap_after'], gap['gap_after_low'], gap['gap_after_high'])} "
            f"| {span(gap['change'], gap['change_low'], gap['change_high'])} |"
        )
    return [*lines, "", "Lesson 12 shows every group; the full record is `bench/results/bias.json`.", ""]


def notebook_timings_problem(result: dict | None, label: str) -> str:
    """Why a notebook-timing run must not be published (empty when it may): a run that did not record
    the recipe its lessons trained with, or whose profile has moved since, times lessons that no
    longer exist in that form."""
    if result is None:
        return ""
    recipe = result["settings"].get("recipe")
    if recipe is None:
        return f"the {label} run did not record the recipe its lessons trained with"
    moved = stale_fields(recipe, LESSON_FIELDS)
    return f"the {label} profile has moved since this run ({'; '.join(moved)})" if moved else ""


def section_notebooks(
    ci: dict | None, cpu: dict | None, cpu_utkface: dict | None = None
) -> tuple[list[str], dict, dict]:
    """The per-lesson table (seconds, and peak memory for the cpu runs), and the ci and cpu targets:
    ``(lines, ci_check, cpu_check)``."""
    lines = ["### Notebook run time and memory per lesson", ""]
    runs = dict(zip(NOTEBOOK_RUNS, (ci, cpu, cpu_utkface)))
    withheld = {}
    for name, result in runs.items():
        label = NOTEBOOK_RUNS[name]
        problem = notebook_timings_problem(result, label)
        if problem:  # stale timings are caught, not published
            withheld[name] = f"{problem}; rerun `bench/bench_notebooks.py --profile {label.split(',')[0]}`"
    runs = {name: None if name in withheld else result for name, result in runs.items()}
    lines += [f"- {NOTEBOOK_RUNS[name]} timings withheld: {why}." for name, why in withheld.items()]
    if withheld:
        lines.append("")
    if all(result is None for result in runs.values()):
        return [*lines, NOT_RUN, ""], {"ok": None, "text": NOT_RUN}, {"ok": None, "text": NOT_RUN}
    names = sorted({lesson for result in runs.values() for lesson in (result or {}).get("lessons", {})})

    def cells(run: str, lesson: str) -> list[str]:
        memory = run != "notebooks_ci"
        result = runs[run]
        r = None if result is None else result["lessons"].get(lesson)
        if r is None:
            text = "withheld" if run in withheld else NOT_RUN
            return [text, text] if memory else [text]
        seconds = f"{r['seconds']:.0f} s" + ("" if r["status"] == "ok" else f" **{r['status']}**")
        if not memory:
            return [seconds]
        peak = r.get("peak_rss_mb")
        return [seconds, "not recorded" if peak is None else f"{peak / 1000:.2f} GB"]

    header = ["lesson", "ci profile"]
    for run in ("notebooks_cpu", "notebooks_cpu_utkface"):
        header += [NOTEBOOK_RUNS[run], f"peak memory ({NOTEBOOK_RUNS[run].split(', ')[1]})"]
    lines += ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for lesson in names:
        row = [lesson] + [c for run in NOTEBOOK_RUNS for c in cells(run, lesson)]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    for run, result in runs.items():
        if result:
            s = result["settings"]
            budget = s.get("recipe", {}).get("values", {}).get("lesson_budget_s")
            lines.append(
                f"- {NOTEBOOK_RUNS[run]}: {s['data']}; {s['runner']}; artifacts {s['artifacts']}; "
                + "".join(f"{k}={v}; " for k, v in s.get("environment", {}).items())
                + (f"lessons 08 and 10 train for {budget:.0f} s (`lesson_budget_s`); " if budget else "")
                + f"measured {load_note(result)}; "
                f"{result['summary']['ok']}/{result['summary']['notebooks']} ok, "
                f"total {result['summary']['total_seconds']:.0f} s."
            )
            loads = [r["load_1min_before"] for r in result["lessons"].values() if r.get("load_1min_before") is not None]
            if loads and run != "notebooks_ci":
                lines.append(f"  - 1-minute load before each lesson: {min(loads):.1f} to {max(loads):.1f}")
            merged = result.get("merged_from")
            if merged:
                lines.append(f"  - kept from the earlier run of {merged['when']}: {', '.join(merged['lessons_kept'])}")
            for name, r in result["lessons"].items():
                if r["status"] != "ok":
                    lines.append(f"  - {name}: {r['status']}: {r.get('error', '')}")
                if r.get("tensorflow_log_lines"):
                    lines.append(
                        f"  - {name}: TensorFlow start-up lines in its outputs: {r['tensorflow_log_lines'][0]}"
                    )
    lines.append("")
    ci_check = {"ok": None, "text": NOT_RUN}
    if runs["notebooks_ci"]:
        ci_lessons = runs["notebooks_ci"]["lessons"]
        over = {k: r for k, r in ci_lessons.items() if r["status"] != "ok" or r["seconds"] > CI_NOTEBOOK_TARGET_S}
        ci_check["ok"] = not over
        slowest = max(ci_lessons.items(), key=lambda kv: kv[1]["seconds"])
        ci_check["text"] = (
            "over: " + ", ".join(f"{k} {r['seconds']:.0f} s ({r['status']})" for k, r in over.items())
            if over
            else f"all {len(ci_lessons)} ok, slowest {slowest[0]} {slowest[1]['seconds']:.0f} s"
        )
    return lines, ci_check, cpu_target(runs)


def cpu_target(runs: dict[str, dict | None]) -> dict:
    """Every cpu lesson within :data:`CPU_NOTEBOOK_TARGET_S` and :data:`CPU_NOTEBOOK_MEMORY_BYTES`,
    judged on each cpu run that is published: ``{"ok": bool | None, "text": ...}``."""
    texts, oks = [], []
    for run in ("notebooks_cpu", "notebooks_cpu_utkface"):
        result = runs.get(run)
        if not result:
            continue
        lessons = result["lessons"]
        over = [
            f"{k} {r['seconds']:.0f} s, {(r.get('peak_rss_mb') or 0) / 1000:.2f} GB ({r['status']})"
            for k, r in lessons.items()
            if r["status"] != "ok"
            or r["seconds"] > CPU_NOTEBOOK_TARGET_S
            or r.get("peak_rss_mb") is None
            or r["peak_rss_mb"] * 1e6 > CPU_NOTEBOOK_MEMORY_BYTES
        ]
        slowest = max(lessons.items(), key=lambda kv: kv[1]["seconds"])
        largest = max((r.get("peak_rss_mb") or 0) for r in lessons.values()) / 1000
        oks.append(not over)
        label = NOTEBOOK_RUNS[run].split(", ")[1]
        texts.append(
            f"{label}: over: {'; '.join(over)}"
            if over
            else f"{label}: all {len(lessons)} ok, slowest {slowest[0]} {slowest[1]['seconds']:.0f} s, "
            f"largest peak {largest:.2f} GB"
        )
    if not texts:
        return {"ok": None, "text": NOT_RUN}
    return {"ok": all(oks), "text": "; ".join(texts)}


def section_machine(results: dict[str, dict | None]) -> list[str]:
    lines = ["### Machines", ""]
    seen = {}
    for name, r in results.items():
        if r and "machine" not in r:
            seen.setdefault("machine not recorded", []).append(name)
        elif r:
            m, v = r["machine"], r.get("versions", {})
            key = f"{m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, {m['os']}, Python {m['python']}; " + (
                ", ".join(f"{k} {val}" for k, val in v.items() if val)
            )
            seen.setdefault(key, []).append(name)
    lines += [f"- {key}: {', '.join(names)}" for key, names in seen.items()] or [NOT_RUN]
    return [*lines, ""]


def target_text(key: str, value) -> str:
    """``age_mae_max``, 5.5 -> "age MAE ≤ 5.5"; ``gender_accuracy_min`` -> "gender accuracy ≥ ..."."""
    name, _, bound = key.rpartition("_")
    if bound not in ("max", "min"):
        name, bound = key, ""
    name = name.replace("_", " ").replace("mae", "MAE")
    return f"{name} {'≤' if bound == 'max' else '≥' if bound == 'min' else '='} {value}"


def best_student_mae() -> float:
    """The lowest age MAE among the published student projects (``agecourse.evaluate.PUBLISHED_RESULTS``)."""
    return min(r["age_mae"] for r in anchors() if "student project" in r["model"] and not r.get("approx"))


def flip_tta_of(result: dict | None) -> bool:
    """Whether a model result's recipe scores flip-averaged predictions."""
    return bool((result or {}).get("values", {}).get("flip_tta"))


def build_results_markdown() -> str:
    """The generated part of bench/README.md."""
    names = ("pipeline", "speed", *NOTEBOOK_RUNS, "model_a", "model_b", "ensemble", "bias", "tuning", "photo")
    results = {name: load(name) for name in names}
    # The bootstrap intervals (and main's band plot): the profile seed's run, the recipe's predictions.
    raw = recipe_predictions()
    pipe_lines, pipe = section_pipeline(results["pipeline"])
    nb_lines, ci_check, cpu_check = section_notebooks(*(results[name] for name in NOTEBOOK_RUNS))
    rows = [model_row("A", results["model_a"]), model_row("B", results["model_b"])]
    best_student = best_student_mae()
    targets = [
        "### Targets",
        "",
        "| target | result | verdict |",
        "|---|---|---|",
        f"| agecourse pipeline peak RSS ≤ 1.5 GB | {fmt(gb(pipe.get('rss_value')), 2, ' GB')} "
        f"| {verdict(pipe['rss'])} |",
        f"| agecourse pipeline ≥ 2× naive images/s | {fmt(pipe.get('x'), 2, '×')} | {verdict(pipe['speedup'])} |",
        f"| every ci lesson ≤ {CI_NOTEBOOK_TARGET_S} s (budget set for an idle machine) | {ci_check['text']} "
        f"| {verdict(ci_check['ok'])} |",
        f"| every cpu lesson ≤ {CPU_NOTEBOOK_TARGET_S / 60:.0f} min and ≤ {CPU_NOTEBOOK_MEMORY_BYTES / 1e9:.0f} GB "
        f"peak memory on 2 cores | {cpu_check['text']} | {verdict(cpu_check['ok'])} |",
    ]
    for r in rows:
        summary = r.get("summary")
        if not summary:
            targets.append(f"| Model {r['model']} quality targets | {r['note']} | {NOT_RUN} |")
            continue
        goals, met = summary["targets"], summary["targets_met"]
        longest = max(summary["train_wall_s"]["values"]) / 60
        targets += [
            f"| Model {r['model']}: age MAE ≤ {goals['age_mae_max']} (mean of {summary['train_wall_s']['n']} seeds) "
            f"| {r['age_mae_text']} | {verdict(met['age_mae'])} |",
            f"| Model {r['model']}: gender accuracy ≥ {100 * goals['gender_accuracy_min']:.0f} % (mean of seeds) "
            f"| {r['gender_text']} | {verdict(met['gender_accuracy'])} |",
            f"| Model {r['model']}: ≤ {goals['training_minutes_max']} min of training per seed on this machine "
            f"| longest {longest:.1f} min | {verdict(met['training_minutes'])} |",
        ]
    against = against_model_a(results["model_b"]) or {}
    if against.get("paired"):
        targets.append(
            "| Model B better than Model A (paired over seeds: every seed and the 95 % interval agree) "
            f"| MAE {'yes' if against['b_better_age_mae'] else 'no'}, gender accuracy "
            f"{'yes' if against['b_better_gender_accuracy'] else 'no'} "
            f"| {verdict(against['b_better_age_mae'] and against['b_better_gender_accuracy'])} |"
        )
    for r in rows:
        mae = r["age_mae"]
        targets.append(
            f"| Model {r['model']} MAE below the best student project ({best_student}; indicative, different data) "
            f"| {fmt(mae, 2)} | {verdict(None if mae is None else mae < best_student)} |"
        )
    photo = (results["photo"] or {}).get("arms", {}).get("mtcnn_aligned")
    if photo:
        met = photo_targets(photo)
        targets += [
            "| photo path finds ≥ 97 % of the faces with ≤ 2 % false boxes "
            f"| {100 * photo['found_share']:.1f} % found, {100 * photo['false_share']:.1f} % false "
            f"| {verdict(met['found'] and met['false'])} |",
            f"| photo path loses ≤ 0.3 years of age MAE and ≤ 1 point of gender accuracy against chips "
            f"| {photo['age_mae_loss']['mean']:+.2f} years, {100 * photo['gender_accuracy_loss']['mean']:+.1f} points "
            f"| {verdict(met['age'] and met['gender'])} |",
        ]
    parts = [
        *targets,
        "",
        *section_quality(results["model_a"], results["model_b"], raw),
        *section_ensemble(results["ensemble"]),
        *section_tuning(results["tuning"]),
        *pipe_lines,
        *section_speed(results["speed"]),
        *section_bias(results["bias"]),
        *section_photo(results["photo"], load("photo_val")),
        *nb_lines,
        *section_machine(results),
    ]
    return "\n".join(parts).rstrip() + "\n"


def summary_paragraph() -> str:
    """The results paragraph of the top-level README (between its own markers)."""
    a, b = load("model_a"), load("model_b")
    rows = {"A": model_row("A", a), "B": model_row("B", b)}
    if any("summary" not in r for r in rows.values()):
        return "Model results: not run yet (`bash bench/run_all.sh`).\n"
    first = a["per_seed"][0]["scores"]
    b_values = b["values"]
    students = [r for r in anchors() if "student project" in r["model"] and not r.get("approx")]
    mae_range = f"{min(r['age_mae'] for r in students):.1f}–{max(r['age_mae'] for r in students):.1f}"
    accuracies = [100 * r["gender_accuracy"] for r in students]
    acc_range = f"{min(accuracies):.0f}–{max(accuracies):.0f}"
    kind = {True: "flip-averaged predictions", False: "plain predictions"}
    against = against_model_a(b) or {}
    verdict_text = ""
    if against.get("paired"):
        diff = against["difference_b_minus_a"]["age_mae"]
        verdict_text = (
            f" Model B minus Model A, paired seed by seed: {diff['mean']:+.2f} years of MAE "
            f"(95 % interval {diff['ci95'][0]:+.2f} to {diff['ci95'][1]:+.2f})."
        )
    return (
        f"Latest results on the {sum(a['data']['split'].values()):,}-face UTKFace part-1 sample, "
        f"{a['machine']['cores']} CPU cores, {first['test']['count']:,} held-out test faces, mean ± sd over "
        f"{len(a['seeds'])} training seeds (seeds {', '.join(str(s) for s in a['seeds'])}; same split): "
        f"**Model A** (lesson 06, the `cpu` profile, {kind[flip_tta_of(a)]}) {rows['A']['age_mae_text']} years MAE / "
        f"{rows['A']['gender_text']} gender accuracy; **Model B** (MobileNetV2 α {b_values['transfer_alpha']} at "
        f"{b_values['transfer_image_size']} px, ImageNet weights, two-phase training on cached features: "
        f"`transfer_training.train_two_phase_cached`, shown in lesson 10; {kind[flip_tta_of(b)]}) "
        f"{rows['B']['age_mae_text']} / {rows['B']['gender_text']}.{verdict_text} The student projects this course "
        f"grew from published {mae_range} / {acc_range} % on other splits of the full dataset. Details, targets, "
        f"the tuning log and every setting: [`bench/README.md`](bench/README.md).\n"
    )


def write_readme(markdown: str) -> Path:
    """Replace the text between the markers of bench/README.md (append the block if absent)."""
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    block = f"{BEGIN}\n{markdown}{END}"
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n## Latest numbers\n\n" + block + "\n"
    README.write_text(text)
    return README


PHOTO_ARMS = {
    "haar": "Haar cascade (before; OpenCV 4, 25 % border, box crop)",
    "mtcnn_box_crop": "MTCNN, square crop around the box (no alignment)",
    "mtcnn_aligned": "**MTCNN + alignment (today's `predict_faces`)**",
}


def photo_targets(arm: dict) -> dict[str, bool]:
    """The photo path's four targets for one arm (``bench_photo.py``'s thresholds)."""
    from bench_photo import FALSE_TARGET, FOUND_TARGET, LOSS_TARGET

    return {
        "found": arm["found_share"] >= FOUND_TARGET,
        "false": arm["false_share"] <= FALSE_TARGET,
        "age": arm["age_mae_loss"]["mean"] <= LOSS_TARGET["age_mae"],
        "gender": arm["gender_accuracy_loss"]["mean"] <= LOSS_TARGET["gender"],
    }


def section_photo(result: dict | None, chosen: dict | None) -> list[str]:
    """The photo path (``bench_photo.py``): faces found, false boxes, and the quality lost against chips."""
    lines = ["### Faces in photos: Haar against MTCNN + alignment (test split)", ""]
    if result is None:
        return [*lines, NOT_RUN, ""]
    s = result["settings"]
    lines += [
        f"{s['scenes']} photo-like scenes made from {result['faces']} test-split chips (`bench/bench_photo.py`, "
        f"seed {s['seed']}): chips {s['chip_sides'][0]}-{s['chip_sides'][1]} px, "
        f"turned up to ±{s['max_rotation']:.0f}°, "
        f"framed by {100 * s['context']:.0f} % of their own mirrored edge, on gradient / noise / block / stripe "
        f"backdrops, 1-3 faces per scene, JPEG quality {s['jpeg_quality'][0]}-{s['jpeg_quality'][1]}; "
        f"{s['model']}; detector settings {s['face_thresholds']}, faces from {s['face_min_side']} px. "
        f"Chips scored directly: age MAE {result['chips']['age_mae']:.2f}, gender accuracy "
        f"{100 * result['chips']['gender_accuracy']:.1f} %. Losses are photo path minus chips on the faces the "
        f"path found (95 % bootstrap interval). Measured {load_note(result)}, {result['wall_s'] / 60:.1f} min.",
        "",
        "| path | faces found | false boxes | age MAE: photo / chips (loss) | gender accuracy: photo / chips (loss) |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label in PHOTO_ARMS.items():
        arm = result["arms"].get(key)
        if arm is None:
            lines.append(f"| {label} | {NOT_RUN} | | | |")
            continue
        age, gender = arm["age_mae_loss"], arm["gender_accuracy_loss"]
        lines.append(
            f"| {label} | {arm['found']}/{arm['faces']} ({100 * arm['found_share']:.1f} %) "
            f"| {arm['false_boxes']}/{arm['boxes']} ({100 * arm['false_share']:.1f} %) "
            f"| {arm['age_mae_photo']:.2f} / {arm['age_mae_chips_same_faces']:.2f} "
            f"({age['mean']:+.2f}, {age['low']:+.2f} to {age['high']:+.2f}) "
            f"| {100 * arm['gender_accuracy_photo']:.1f} / {100 * arm['gender_accuracy_chips_same_faces']:.1f} % "
            f"({100 * gender['mean']:+.1f}, {100 * gender['low']:+.1f} to {100 * gender['high']:+.1f} points) |"
        )
    lines.append("")
    if s.get("haar") is None:
        lines += ["The Haar row was not measured (no OpenCV 4 at hand: `--haar-lib`).", ""]
    if chosen:
        lines += [
            f"The detector's defaults were chosen on {chosen['settings']['scenes']} validation-split scenes "
            f"(`results/photo_val.json`): faces from {chosen['chosen']['face_min_side']} px, O-Net threshold "
            f"{chosen['chosen']['onet_threshold']}; loss of the aligned path per face size there: "
            + "; ".join(
                f"{row['box_side']} px: {row['age_mae_loss']:+.2f} years, {100 * row['gender_accuracy_loss']:+.1f} "
                f"points (n={row['faces']})"
                for row in chosen["by_size"]
            )
            + ".",
            "",
        ]
    return lines


def photo_sentence() -> str | None:
    """Lesson 13's photo-path numbers, from ``results/photo.json`` (``bench_photo.py``)."""
    result = load("photo")
    if result is None:
        return None
    new, old = result["arms"]["mtcnn_aligned"], result["arms"].get("haar")
    text = (
        f"on {result['faces']} test faces placed into {result['settings']['scenes']} photo-like scenes, MTCNN + "
        f"alignment found {new['found']} with {new['false_boxes']} false boxes; against the same faces scored as "
        f"chips, age MAE changed by {new['age_mae_loss']['mean']:+.2f} years and gender accuracy by "
        f"{-100 * new['gender_accuracy_loss']['mean']:+.1f} points"
    )
    if old is not None:
        text += (
            f"; the Haar cascade it replaces found {old['found']} with {old['false_boxes']} false boxes, "
            f"{old['age_mae_loss']['mean']:+.2f} years and {-100 * old['gender_accuracy_loss']['mean']:+.1f} points"
        )
    return text


# lesson notebook -> {block name: function giving its text from a results file}. A lesson's markdown
# holds each block between <!-- bench:NAME --> and <!-- /bench:NAME --> (HTML comments: invisible
# when the notebook is rendered); tests/test_bench_results.py checks that the text is up to date.
LESSON_NUMBERS = {"13_deploy.ipynb": {"photo": photo_sentence}}
LESSONS = ROOT / "notebooks"


def lesson_blocks() -> dict[str, dict[str, str]]:
    """``{notebook: {block: text}}`` for every block whose results file exists."""
    out: dict[str, dict[str, str]] = {}
    for notebook, blocks in LESSON_NUMBERS.items():
        for name, make in blocks.items():
            text = make()
            if text is not None:
                out.setdefault(notebook, {})[name] = text
    return out


def block_pattern(name: str) -> re.Pattern:
    """The marker pair of one generated block in a lesson's markdown."""
    return re.compile(re.escape(f"<!-- bench:{name} -->") + r"(.*?)" + re.escape(f"<!-- /bench:{name} -->"), re.S)


def write_lesson_numbers(folder: Path = LESSONS) -> list[Path]:
    """Rewrite the generated blocks in the lessons' markdown; returns the notebooks changed."""
    import nbformat

    changed = []
    for notebook, blocks in lesson_blocks().items():
        path = folder / notebook
        nb = nbformat.read(path, as_version=4)
        before = [cell.source for cell in nb.cells]
        for cell in nb.cells:
            if cell.cell_type != "markdown":
                continue
            for name, text in blocks.items():
                cell.source = block_pattern(name).sub(
                    lambda _, n=name, t=text: f"<!-- bench:{n} -->{t}<!-- /bench:{n} -->", cell.source
                )
        if [cell.source for cell in nb.cells] != before:
            nbformat.write(nb, path)
            changed.append(path)
    return changed


def write_top_readme(paragraph: str, path: Path = TOP_README) -> Path:
    """Replace the results paragraph between the markers of the top-level README."""
    text = path.read_text()
    if TOP_BEGIN not in text or TOP_END not in text:
        raise ValueError(f"{path} has no {TOP_BEGIN} ... {TOP_END} block for the results paragraph")
    block = f"{TOP_BEGIN}\n{paragraph}{TOP_END}"
    path.write_text(re.sub(re.escape(TOP_BEGIN) + r".*?" + re.escape(TOP_END), lambda _: block, text, flags=re.S))
    return path


def recipe_predictions() -> dict[str, pd.DataFrame]:
    """The profile seed's test predictions of each model, the recipe's kind (plain or flip-averaged)."""
    tables = {
        label: predictions(name, flip_average=flip_tta_of(load(name)))
        for label, name in (("Model A", "model_a"), ("Model B", "model_b"))
    }
    return {label: table for label, table in tables.items() if table is not None}


def main() -> None:
    # The plot's legend carries that run's overall test MAE.
    band_plot({f"{label} (MAE {t['age_error'].abs().mean():.2f})": t for label, t in recipe_predictions().items()})
    path = write_readme(build_results_markdown())
    top = write_top_readme(summary_paragraph())
    lessons = write_lesson_numbers()
    print(f"wrote {path}, {top}" + (f", {PLOT}" if PLOT.exists() else "") + "".join(f", {p}" for p in lessons))


if __name__ == "__main__":
    main()
