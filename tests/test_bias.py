"""Lesson 12 helpers: per-group metrics, error rates with female as the positive class, gaps."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agecourse import bias, bias_results

# A hand-made predictions table whose per-group numbers are worked out in the comments.
#   row gender race   age pred  gender_pred  error  note
#   0   male   White  20  25    0            +5
#   1   male   White  30  26    1            -4     false positive (a man called female)
#   2   male   Black  40  40    0             0
#   3   male   Black  50  44    0            -6
#   4   female White  20  22    1            +2
#   5   female White  60  50    0           -10     false negative (a woman called male)
#   6   female Black  10  13    1            +3
#   7   female Black  30  31    0            +1     false negative
ROWS = [
    (0, 0, 20, 25, 0),
    (0, 0, 30, 26, 1),
    (0, 1, 40, 40, 0),
    (0, 1, 50, 44, 0),
    (1, 0, 20, 22, 1),
    (1, 0, 60, 50, 0),
    (1, 1, 10, 13, 1),
    (1, 1, 30, 31, 0),
]


@pytest.fixture
def table() -> pd.DataFrame:
    frame = pd.DataFrame(ROWS, columns=["gender", "race", "age", "age_pred", "gender_pred"])
    frame["path"] = [f"/faces/{i}.jpg" for i in range(len(frame))]
    frame["gender_prob"] = frame["gender_pred"] * 0.8 + 0.1
    frame["age_pred"] = frame["age_pred"].astype(float)
    frame["age_error"] = frame["age_pred"] - frame["age"]
    return frame


def row(metrics: pd.DataFrame, group: str) -> pd.Series:
    return metrics.set_index("group").loc[group]


def test_metrics_by_gender_with_female_as_positive(table):
    metrics = bias.group_metrics(table, "gender", min_count=3)
    assert list(metrics["group"]) == ["male", "female"]
    male, female = row(metrics, "male"), row(metrics, "female")
    assert male["count"] == 4 and male["men"] == 4 and male["women"] == 0
    assert male["age_mae"] == pytest.approx(15 / 4)
    assert male["mean_signed_error"] == pytest.approx(-5 / 4)
    assert male["gender_accuracy"] == pytest.approx(3 / 4)
    assert male["false_positive_rate"] == pytest.approx(1 / 4)
    assert math.isnan(male["false_negative_rate"])  # no women: undefined, not zero
    assert female["age_mae"] == pytest.approx(16 / 4)
    assert female["mean_signed_error"] == pytest.approx(-4 / 4)
    assert female["gender_accuracy"] == pytest.approx(2 / 4)
    assert female["false_negative_rate"] == pytest.approx(2 / 4)
    assert math.isnan(female["false_positive_rate"])
    assert metrics["reliable"].all()


def test_metrics_by_race_use_names(table):
    metrics = bias.group_metrics(table, "race")
    assert list(metrics["group"]) == ["White", "Black"]
    white, black = row(metrics, "White"), row(metrics, "Black")
    assert white["age_mae"] == pytest.approx(21 / 4) and white["mean_signed_error"] == pytest.approx(-7 / 4)
    assert white["gender_accuracy"] == pytest.approx(0.5)
    assert white["false_positive_rate"] == pytest.approx(0.5) and white["false_negative_rate"] == pytest.approx(0.5)
    assert black["age_mae"] == pytest.approx(10 / 4) and black["mean_signed_error"] == pytest.approx(-2 / 4)
    assert black["gender_accuracy"] == pytest.approx(0.75)
    assert black["false_positive_rate"] == 0.0 and black["false_negative_rate"] == pytest.approx(0.5)


def test_every_race_code_has_its_utkface_name(table):
    frame = pd.concat([table] * 2, ignore_index=True)
    frame["race"] = [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0]
    names = bias.group_metrics(frame, "race")["group"].tolist()
    assert names == ["White", "Black", "Asian", "Indian", "Others"]
    with pytest.raises(ValueError, match="race codes \\[7\\]"):
        bias.group_metrics(table.assign(race=7), "race")


def test_intersections_and_small_group_flag(table):
    metrics = bias.group_metrics(table, ("gender", "race"), min_count=3)
    assert metrics["attribute"].unique().tolist() == ["gender x race"]
    assert metrics["group"].tolist() == ["male / White", "male / Black", "female / White", "female / Black"]
    assert (metrics["count"] == 2).all()
    assert not metrics["reliable"].any()  # kept and marked, not dropped
    male_white, female_black = row(metrics, "male / White"), row(metrics, "female / Black")
    assert male_white["age_mae"] == pytest.approx(4.5) and male_white["false_positive_rate"] == pytest.approx(0.5)
    assert female_black["age_mae"] == pytest.approx(2.0) and female_black["false_negative_rate"] == pytest.approx(0.5)


def test_age_band_groups(table):
    metrics = bias.group_metrics(table.drop(columns="age_error"), "age_band")
    assert metrics["group"].tolist() == ["10-19", "20-29", "30-39", "40-49", "50-59", "60-69"]
    assert row(metrics, "20-29")["count"] == 2 and row(metrics, "20-29")["age_mae"] == pytest.approx(3.5)
    assert row(metrics, "60-69")["mean_signed_error"] == pytest.approx(-10)


def test_bias_report_stacks_groupings_with_overall_first(table):
    report = bias.bias_report(table, groupings=["gender", ("gender", "race")], min_count=3)
    assert report.iloc[0][["attribute", "group", "count"]].tolist() == ["overall", "all", 8]
    assert report.iloc[0]["age_mae"] == pytest.approx(31 / 8)
    assert report.iloc[0]["false_positive_rate"] == pytest.approx(1 / 4)
    assert report["attribute"].value_counts().to_dict() == {"overall": 1, "gender": 2, "gender x race": 4}


def test_fairness_gaps_name_the_extreme_groups(table):
    gaps = bias.fairness_gaps(bias.group_metrics(table, "race", min_count=3)).set_index("metric")
    assert gaps.loc["age_mae", "gap"] == pytest.approx(5.25 - 2.5)
    assert gaps.loc["age_mae", ["largest_group", "smallest_group"]].tolist() == ["White", "Black"]
    assert gaps.loc["gender_accuracy", "largest_group"] == "Black"
    assert gaps.loc["gender_accuracy", "gap"] == pytest.approx(0.25)
    assert gaps.loc["false_positive_rate", "gap"] == pytest.approx(0.5)
    assert gaps.loc["false_negative_rate", "gap"] == pytest.approx(0.0)
    assert not gaps["small_group"].any()


def test_fairness_gaps_skip_undefined_rates_and_flag_small_groups(table):
    gaps = bias.fairness_gaps(bias.bias_report(table, ["gender", ("gender", "race")], min_count=3))
    by_gender = gaps[gaps["attribute"] == "gender"].set_index("metric")
    # FPR exists only for the male group: nothing to compare, so no gap (not a fake 0).
    assert by_gender.loc["false_positive_rate", "groups"] == 1
    assert math.isnan(by_gender.loc["false_positive_rate", "gap"])
    assert by_gender.loc["age_mae", "gap"] == pytest.approx(0.25)
    assert "overall" not in set(gaps["attribute"])
    intersection = gaps[gaps["attribute"] == "gender x race"].set_index("metric")
    assert intersection.loc["age_mae", "gap"] == pytest.approx(6.0 - 2.0)  # female / White vs female / Black
    assert intersection.loc["age_mae", ["largest_group", "smallest_group"]].tolist() == [
        "female / White",
        "female / Black",
    ]
    assert intersection["small_group"].all()
    strict = bias.fairness_gaps(bias.bias_report(table, [("gender", "race")], min_count=3), reliable_only=True)
    assert (strict["groups"] == 0).all() and strict["gap"].isna().all()


def test_compare_before_after(table):
    perfect = table.assign(age_pred=table["age"].astype(float), gender_pred=table["gender"])
    perfect["age_error"] = 0.0
    compared = bias.compare_before_after(table, perfect, by="race", min_count=3)
    assert compared["group"].tolist() == ["all", "White", "Black"]
    white = compared.set_index("group").loc["White"]
    assert white["age_mae_before"] == pytest.approx(5.25) and white["age_mae_after"] == 0
    assert white["age_mae_change"] == pytest.approx(-5.25)
    assert white["gender_accuracy_change"] == pytest.approx(0.5)
    assert compared.set_index("group").loc["all", "false_negative_rate_change"] == pytest.approx(-0.5)
    with pytest.raises(ValueError, match="differ in size"):
        bias.compare_before_after(table, perfect.iloc[:4], by="race")


def test_compare_gaps(table):
    perfect = table.assign(age_pred=table["age"].astype(float), gender_pred=table["gender"], age_error=0.0)
    before = bias.fairness_gaps(bias.group_metrics(table, "race"))
    after = bias.fairness_gaps(bias.group_metrics(perfect, "race"))
    compared = bias.compare_gaps(before, after).set_index("metric")
    assert compared.loc["age_mae", "gap_before"] == pytest.approx(2.75)
    assert compared.loc["age_mae", "gap_after"] == 0 and compared.loc["age_mae", "change"] == pytest.approx(-2.75)


def test_bad_input_is_explained(table):
    with pytest.raises(ValueError, match="missing column"):
        bias.group_metrics(table.drop(columns="age_pred"), "gender")
    with pytest.raises(ValueError, match="group by one or more"):
        bias.group_metrics(table, "hair")


def test_plots(table):
    import matplotlib.pyplot as plt

    metrics = bias.group_metrics(table, ("gender", "race"), min_count=3)
    fig = bias.plot_group_metric(metrics, "age_mae")
    bars = fig.axes[0].patches
    assert len(bars) == 4 and all(bar.get_hatch() == "//" for bar in bars)  # all four groups are small
    scatter = bias.plot_predicted_vs_actual_by_gender(table)
    assert [ax.get_title() for ax in scatter.axes] == ["male", "female"]
    boxes = bias.plot_signed_errors(table, by="race")
    assert [t.get_text() for t in boxes.axes[0].get_xticklabels()] == ["White", "Black"]
    density = bias.plot_error_distributions(pd.concat([table] * 3, ignore_index=True), by="gender")
    assert len(density.axes[0].lines) >= 3  # two curves and the zero line
    plt.close("all")


def test_compare_models_side_by_side(table):
    perfect = table.assign(age_pred=table["age"].astype(float), gender_pred=table["gender"], age_error=0.0)
    compared = bias.compare_models({"A": table, "perfect": perfect}, by="race", metric="age_mae", min_count=3)
    assert compared.index.tolist() == ["all", "White", "Black", "gap (largest - smallest)"]
    assert compared.loc["White", "A"] == pytest.approx(5.25) and compared.loc["White", "perfect"] == 0
    assert compared.loc["gap (largest - smallest)", "A"] == pytest.approx(5.25 - 2.5)
    assert compared.loc["gap (largest - smallest)", "perfect"] == 0
    assert compared.loc["all", "count"] == 8
    with pytest.raises(ValueError, match="differ in size"):
        bias.compare_models({"A": table, "B": table.iloc[:3]})
    with pytest.raises(ValueError, match="metric must be one of"):
        bias.compare_models({"A": table}, metric="speed")


# --- intervals and paired before/after changes -------------------------------------------------


def test_group_labels_follow_the_grouping(table):
    assert bias.group_labels(table, "race").tolist()[:3] == ["White", "White", "Black"]
    assert bias.group_labels(table, ("gender", "race")).iloc[6] == "female / Black"
    assert bias.group_labels(table, ("race", "gender")).iloc[6] == "Black / female"


def test_group_intervals_bracket_each_group_value(table):
    intervals = bias.group_intervals(table, "race", n_resamples=500, min_count=3).set_index("group")
    assert intervals.index.tolist() == ["all", "White", "Black"]
    white = intervals.loc["White"]
    assert white["count"] == 4 and white["age_mae"] == pytest.approx(5.25)
    assert white["age_mae_low"] <= 5.25 <= white["age_mae_high"] and white["age_mae_high"] > white["age_mae_low"]
    assert white["gender_accuracy"] == pytest.approx(0.5)
    assert 0 <= white["gender_accuracy_low"] < 0.5 < white["gender_accuracy_high"] <= 1
    assert intervals.loc["all", "count"] == 8 and bool(intervals.loc["all", "reliable"])
    # A group whose every face has the same error has a zero-width interval.
    constant = table.assign(age_pred=table["age"] + 3.0)
    fixed = bias.group_intervals(constant, "gender", n_resamples=200).set_index("group")
    assert fixed.loc["male", "age_mae_low"] == fixed.loc["male", "age_mae_high"] == pytest.approx(3.0)


def test_paired_group_changes(table):
    perfect = table.assign(age_pred=table["age"].astype(float), gender_pred=table["gender"])
    changes = bias.paired_group_changes(table, perfect.iloc[::-1], "race", n_resamples=500, min_count=3)
    white = changes.set_index("group").loc["White"]
    assert white["age_mae_before"] == pytest.approx(5.25) and white["age_mae_after"] == 0
    assert white["age_mae_change"] == pytest.approx(-5.25)
    assert white["age_mae_change_low"] <= -5.25 <= white["age_mae_change_high"] < 0
    assert white["gender_accuracy_change"] == pytest.approx(0.5)
    same = bias.paired_group_changes(table, table, "gender", n_resamples=100)
    assert (same["age_mae_change"] == 0).all() and (same["age_mae_change_low"] == 0).all()
    with pytest.raises(ValueError, match="same test faces"):
        bias.paired_group_changes(table, perfect.iloc[:5], "race")


def test_gap_change_between_two_named_groups(table):
    perfect = table.assign(age_pred=table["age"].astype(float), gender_pred=table["gender"])
    gap = bias.gap_change(table, perfect, "race", "gender_accuracy", ("White", "Black"), n_resamples=500)
    # White: 2 of 4 right (0.5); Black: 3 of 4 right (0.75); a perfect model closes the gap.
    assert gap["gap_before"] == pytest.approx(-0.25) and gap["gap_after"] == 0
    assert gap["change"] == pytest.approx(0.25) and gap["count_first"] == gap["count_second"] == 4
    assert gap["gap_before_low"] <= -0.25 <= gap["gap_before_high"]
    assert gap["gap_after_low"] == gap["gap_after_high"] == 0
    with pytest.raises(ValueError, match="no test faces in group 'Asian'"):
        bias.gap_change(table, perfect, "race", "gender_accuracy", ("White", "Asian"))
    with pytest.raises(ValueError, match="metric must be one of"):
        bias.gap_change(table, perfect, "race", "false_positive_rate", ("White", "Black"))


# --- lesson 12's groupby on the page and the package copy ---------------------------------------

LESSON_12 = Path(__file__).resolve().parents[1] / "notebooks" / "12_bias.ipynb"


def _function_node(source: str, name: str) -> ast.FunctionDef:
    found = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef) and n.name == name]
    assert len(found) == 1, f"expected one definition of {name}, found {len(found)}"
    return found[0]


def test_lesson_12_defines_the_same_per_group_as_the_package():
    """Lesson 12 shows per_group on the page; bias.per_group must be the very same code."""
    import inspect

    import nbformat

    cells = [c.source for c in nbformat.read(LESSON_12, as_version=4).cells if c.cell_type == "code"]
    (cell,) = [c for c in cells if "def per_group(" in c]
    lesson = _function_node("\n".join(line for line in cell.splitlines() if not line.startswith("%")), "per_group")
    package = _function_node(inspect.getsource(bias), "per_group")
    assert ast.dump(lesson) == ast.dump(package), "lesson 12's per_group and bias.per_group differ"


def test_per_group_agrees_with_group_metrics(table):
    named = bias.with_group_names(table)
    simple = bias.per_group(named, ["gender_name", "race_name"])
    full = bias.group_metrics(table, ("gender", "race"), min_count=1).set_index("group")
    assert simple["count"].tolist() == [2, 2, 2, 2]
    for (gender, race), row in simple.iterrows():
        other = full.loc[f"{gender} / {race}"]
        assert row["count"] == other["count"]
        assert row["age_mae"] == pytest.approx(other["age_mae"])
        assert row["gender_accuracy"] == pytest.approx(other["gender_accuracy"])


# --- the real-faces benchmark file that lesson 12 reads -----------------------------------------


def _fake_results(table) -> dict:
    perfect = table.assign(age_pred=table["age"].astype(float), gender_pred=table["gender"])
    groups = {"race": bias.group_intervals(table, "race", n_resamples=50, min_count=3).to_dict("records")}
    return {
        "data": {"split": {"train": 1, "val": 1, "test": 8}, "seed": 42},
        "profile": "cpu",
        "arms": {"a": {"groups": groups}, "b": {"groups": groups}},
        "comparison": {
            "paired_changes": {
                "race": bias.paired_group_changes(table, perfect, "race", n_resamples=50).to_dict("records")
            }
        },
    }


def test_load_benchmark_reads_and_checks_a_results_file(tmp_path, table):
    import json

    good = tmp_path / "bias.json"
    good.write_text(json.dumps(_fake_results(table)))
    results = bias_results.load(good)
    assert bias_results.groups(results, "race", "a")["group"].tolist() == ["all", "White", "Black"]
    changes = bias_results.changes(results, "race").set_index("group")
    assert changes.loc["White", "age_mae_change"] == pytest.approx(-5.25)
    with pytest.raises(KeyError, match="no 'age_band' groups for arm 'a'"):
        bias_results.groups(results, "age_band", "a")
    with pytest.raises(KeyError, match="no paired changes for 'gender'"):
        bias_results.changes(results, "gender")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        bias_results.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not a JSON file"):
        bias_results.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"benchmark": "speed"}')
    with pytest.raises(ValueError, match="not a bias benchmark result"):
        bias_results.load(tmp_path / "other.json")


def test_shipped_benchmark_results_are_complete():
    """The file lesson 12 reads (the package's copy): both arms, every grouping, intervals, and the
    targeted gaps."""
    results = bias_results.load()
    for arm in ("a", "b"):
        for grouping in ("gender", "race", "age_band", "race_x_gender"):
            groups = bias_results.groups(results, grouping, arm)
            assert (groups["age_mae_low"] <= groups["age_mae"]).all() and (
                groups["age_mae"] <= groups["age_mae_high"]
            ).all()
            assert groups["count"].iloc[0] == results["data"]["split"]["test"]
    assert results["profile"] == "cpu" and results["values"]["epochs"] == results["overrides"]["epochs"]
    assert results["comparison"]["targeted_gaps"] and "machine" in results and "load_average" in results


def test_plot_group_intervals(table):
    import matplotlib.pyplot as plt

    intervals = bias.group_intervals(table, "race", n_resamples=50, min_count=3)
    fig = bias.plot_group_intervals({"before": intervals, "after": intervals}, "age_mae")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["all\n(n=8)", "White\n(n=4)", "Black\n(n=4)"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["before", "after"]
    plt.close("all")


def test_the_interval_helpers_lessons_show_on_the_page(table):
    abs_error, hits = bias.abs_errors_and_hits(table)
    assert abs_error == pytest.approx((table["age_pred"] - table["age"]).abs().to_numpy())
    assert set(np.unique(hits)) <= {0.0, 1.0} and hits.mean() == pytest.approx(
        (table["gender_pred"] == table["gender"]).mean()
    )
    assert bias.percentile_interval(np.arange(101.0), 0.9) == pytest.approx((5.0, 95.0))
    assert bias.as_attributes("race") == ("race",) and bias.as_attributes(["gender", "race"]) == ("gender", "race")
    with pytest.raises(ValueError, match="group by one or more of"):
        bias.as_attributes("eye_colour")
