"""Collect every result in ``bench/results/`` into the table of ``bench/README.md`` and draw the
MAE-per-age-band plot.

Reads whatever exists (``pipeline``, ``speed``, ``notebooks_ci``, ``notebooks_cpu``, ``model_a``,
``model_b``, ``bias`` JSON, and the models' ``*_predictions.csv``); anything missing is shown as "not run".
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
from common import RESULTS, ROOT  # noqa: E402

README = ROOT / "bench" / "README.md"
BEGIN, END = "<!-- BEGIN RESULTS (bench_report.py) -->", "<!-- END RESULTS -->"
PLOT = RESULTS / "mae_per_band.png"
NOT_RUN = "not run"
RSS_TARGET_BYTES = 1.5e9
SPEEDUP_TARGET = 2.0
CI_NOTEBOOK_TARGET_S = 40  # per lesson, on an idle 2-core machine (the project's test budget)

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


def find_metrics(result: dict) -> dict | None:
    """``{"age_mae", "gender_accuracy", "count"}`` of a model result's test split.

    Accepts the flat form the model benchmarks write (``test: {age_mae, gender_accuracy}``) and the
    nested form of :func:`agecourse.evaluate.evaluate_table` (``age.mae``, ``gender.accuracy``),
    preferring one under a key named ``test``.
    """
    candidates: list[tuple[int, dict]] = []

    def walk(node, depth: int, under_test: bool) -> None:
        if not isinstance(node, dict):
            return
        rank = 0 if under_test else 1 + depth
        age, gender = node.get("age"), node.get("gender")
        if isinstance(age, dict) and "mae" in age and isinstance(gender, dict) and "accuracy" in gender:
            candidates.append((rank, {"age_mae": age["mae"], "gender_accuracy": gender["accuracy"], **node}))
        elif "age_mae" in node and "gender_accuracy" in node:
            candidates.append((rank, node))
        for key, child in node.items():
            if "flip" not in str(key):  # the flip-averaged variant is reported as a note
                walk(child, depth + 1, under_test or str(key).lower() == "test")

    walk(result, 0, False)
    return min(candidates, key=lambda c: c[0])[1] if candidates else None


def model_row(name: str, result: dict | None) -> dict:
    """One row of the quality table for Model A or B."""
    if result is None:
        return {"model": name, "age_mae": None, "gender_accuracy": None, "note": NOT_RUN}
    metrics = find_metrics(result)
    if metrics is None:
        return {"model": name, "age_mae": None, "gender_accuracy": None, "note": "result has no test metrics"}
    settings, training = result.get("settings", {}), result.get("training", {})
    bits = [f"{metrics.get('count', '?')} test images of the UTKFace part-1 sample"]
    if "backbone" in settings:
        bits.append(f"{settings['backbone']}" + (f" alpha {settings['alpha']}" if "alpha" in settings else ""))
    if "image_size" in settings:
        bits.append(f"{settings['image_size']} px")
    if "epochs_run" in training:
        bits.append(f"{training['epochs_run']} epochs")
    if "epochs_frozen" in training:
        bits.append(f"{training['epochs_frozen']} + {training.get('epochs_finetune', 0)} epochs (frozen + fine-tune)")
    if "minutes_budget" in settings:
        bits.append(f"budget {settings['minutes_budget']:g} min")
    if "train_wall_s" in training:
        bits.append(f"{training['train_wall_s'] / 60:.0f} min training")
    if "wall_s" in result:
        bits.append(f"{result['wall_s'] / 60:.0f} min in all")
    flip = result.get("test_flip_average", {})
    if "age_mae" in flip:
        bits.append(f"flip-averaged {flip['age_mae']:.2f} / {100 * flip['gender_accuracy']:.1f} %")
    return {
        "model": name,
        "age_mae": metrics["age_mae"],
        "gender_accuracy": metrics["gender_accuracy"],
        "note": "; ".join(bits),
        "own_targets": {k: (result.get("targets", {}), v) for k, v in result.get("targets_met", {}).items()},
    }


def predictions(name: str) -> pd.DataFrame | None:
    """A model's predictions CSV with the columns :mod:`agecourse.evaluate` needs, or ``None``."""
    from agecourse.data import age_band

    path = RESULTS / f"{name}_predictions.csv"
    if not path.exists():
        return None
    table = pd.read_csv(path)
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
    if "carried_over" in result:
        for part, info in result["carried_over"].items():
            lines += [f"The {part} numbers were carried over from the run of {info.get('when')}.", ""]
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
        f"How precise these are: 95 % bootstrap intervals over the {len(next(iter(tables.values()))):,} test faces "
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


def section_quality(a: dict | None, b: dict | None, tables: dict[str, pd.DataFrame] | None = None) -> list[str]:
    lines = ["### Model quality", ""]
    rows = [model_row("Model A (this course)", a), model_row("Model B (this course)", b)]
    lines += [
        "| model | age MAE (years) | gender accuracy | source / conditions |",
        "|---|---:|---:|---|",
    ]
    for r in rows:
        acc = None if r["gender_accuracy"] is None else 100 * r["gender_accuracy"]
        lines.append(f"| **{r['model']}** | {fmt(r['age_mae'], 2)} | {fmt(acc, 1, ' %')} | {r['note']} |")
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
        *uncertainty_lines(tables or {}),
    ]
    if PLOT.exists():
        lines += [f"![MAE per age band]({PLOT.relative_to(README.parent).as_posix()})", ""]
    else:
        lines += ["MAE per age band plot: not run (no predictions CSV yet).", ""]
    return lines


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


def section_notebooks(ci: dict | None, cpu: dict | None) -> tuple[list[str], dict]:
    lines = ["### Notebook run time per lesson", ""]
    if ci is None and cpu is None:
        return [*lines, NOT_RUN, ""], {"ok": None, "text": NOT_RUN}
    names = sorted({*(ci or {}).get("lessons", {}), *(cpu or {}).get("lessons", {})})

    def cell(result: dict | None, name: str) -> str:
        if result is None:
            return NOT_RUN
        r = result["lessons"].get(name)
        if r is None:
            return NOT_RUN
        return f"{r['seconds']:.0f} s" + ("" if r["status"] == "ok" else f" **{r['status']}**")

    lines += ["| lesson | ci profile | cpu profile |", "|---|---:|---:|"]
    lines += [f"| {name} | {cell(ci, name)} | {cell(cpu, name)} |" for name in names]
    lines.append("")
    for label, result in (("ci", ci), ("cpu", cpu)):
        if result:
            s = result["settings"]
            lines.append(
                f"- {label}: {s['data']}; {s['runner']}; artifacts {s['artifacts']}; "
                + "".join(f"{k}={v}; " for k, v in s.get("environment", {}).items())
                + f"measured {load_note(result)}; "
                f"{result['summary']['ok']}/{result['summary']['notebooks']} ok, "
                f"total {result['summary']['total_seconds']:.0f} s."
            )
            merged = result.get("merged_from")
            if merged:
                lines.append(f"  - kept from the earlier run of {merged['when']}: {', '.join(merged['lessons_kept'])}")
            for name, r in result["lessons"].items():
                if r["status"] != "ok":
                    lines.append(f"  - {name}: {r['status']}: {r.get('error', '')}")
    lines.append("")
    ci_check = {"ok": None, "text": NOT_RUN}
    if ci:
        over = {k: r for k, r in ci["lessons"].items() if r["status"] != "ok" or r["seconds"] > CI_NOTEBOOK_TARGET_S}
        ci_check["ok"] = not over
        slowest = max(ci["lessons"].items(), key=lambda kv: kv[1]["seconds"])
        ci_check["text"] = (
            "over: " + ", ".join(f"{k} {r['seconds']:.0f} s ({r['status']})" for k, r in over.items())
            if over
            else f"all {len(ci['lessons'])} ok, slowest {slowest[0]} {slowest[1]['seconds']:.0f} s"
        )
    return lines, ci_check


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


def build_results_markdown() -> str:
    """The generated part of bench/README.md."""
    names = ("pipeline", "speed", "notebooks_ci", "notebooks_cpu", "model_a", "model_b", "bias")
    results = {name: load(name) for name in names}
    raw = {label: predictions(name) for label, name in (("Model A", "model_a"), ("Model B", "model_b"))}
    raw = {label: table for label, table in raw.items() if table is not None}
    # The plot's legend carries the overall test MAE.
    band_plot({f"{label} (MAE {table['age_error'].abs().mean():.2f})": table for label, table in raw.items()})
    pipe_lines, pipe = section_pipeline(results["pipeline"])
    nb_lines, ci_check = section_notebooks(results["notebooks_ci"], results["notebooks_cpu"])
    rows = [model_row("A", results["model_a"]), model_row("B", results["model_b"])]
    best_student = 6.84  # best published student-project MAE in the anchors (custom CNN, 90.2 %)
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
    ]
    for r in rows:
        for key, (goals, met) in r.get("own_targets", {}).items():
            goal = ", ".join(target_text(k, v) for k, v in goals.items() if k.startswith(key))
            value = fmt({"age": r["age_mae"], "gender": r["gender_accuracy"]}.get(key.split("_")[0]), 3)
            if key == "better_than_model_a":  # lower MAE and higher accuracy than Model A's own benchmark
                a = rows[0]
                goal = "lower MAE and higher gender accuracy than Model A"
                value = (
                    f"MAE {fmt(r['age_mae'], 2)} vs {fmt(a['age_mae'], 2)}, "
                    f"{fmt(100 * r['gender_accuracy'], 1, ' %')} vs {fmt(100 * a['gender_accuracy'], 1, ' %')}"
                    if a["age_mae"] is not None and r["age_mae"] is not None
                    else "–"
                )
            goal = goal or key.replace("_", " ")
            targets.append(f"| Model {r['model']}: {goal} (its benchmark's target) | {value} | {verdict(met)} |")
    for r in rows:
        mae = r["age_mae"]
        targets.append(
            f"| Model {r['model']} MAE below the best student project ({best_student}; indicative, different data) "
            f"| {fmt(mae, 2)} | {verdict(None if mae is None else mae < best_student)} |"
        )
    parts = [
        *targets,
        "",
        *pipe_lines,
        *section_speed(results["speed"]),
        *section_quality(results["model_a"], results["model_b"], raw),
        *section_bias(results["bias"]),
        *nb_lines,
        *section_machine(results),
    ]
    return "\n".join(parts).rstrip() + "\n"


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


def main() -> None:
    path = write_readme(build_results_markdown())
    print(f"wrote {path}" + (f" and {PLOT}" if PLOT.exists() else ""))


if __name__ == "__main__":
    main()
