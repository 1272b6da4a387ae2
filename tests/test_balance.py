"""Lesson 04 helpers: capping, down- and up-sampling, sample weights; inputs are never modified."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agecourse import balance
from agecourse.data import AGE_BANDS


@pytest.fixture
def table() -> pd.DataFrame:
    """An imbalanced table: many twenty-somethings, few old people, one 95-year-old."""
    ages = [25] * 60 + [22] * 20 + [5] * 30 + [45] * 10 + [72] * 4 + [95]
    n = len(ages)
    return pd.DataFrame(
        {
            "path": [f"/data/{i:03d}.jpg" for i in range(n)],
            "age": ages,
            "gender": [i % 2 for i in range(n)],
            "race": [i % 5 for i in range(n)],
        }
    )


def test_bands_of_matches_course_bands(table):
    bands = balance.bands_of(table)
    assert bands.loc[0] == "20-29" and bands.iloc[-1] == "70+"
    assert bands.value_counts()["20-29"] == 80
    assert list(bands.cat.categories)[0] == "0-2" and len(bands.cat.categories) == len(AGE_BANDS) - 1


def test_bands_of_custom_edges_and_errors(table):
    bands = balance.bands_of(table, edges=range(0, 121, 20))
    assert set(bands) == {"0-19", "20-39", "40-59", "60-79", "80-99"}
    with pytest.raises(ValueError, match="increasing"):
        balance.bands_of(table, edges=[10, 0, 50])
    with pytest.raises(ValueError, match="outside the band edges"):
        balance.bands_of(table, edges=[0, 50])


def test_cap_ages_clips_or_drops_without_touching_input(table):
    before = table.copy()
    capped = balance.cap_ages(table, 80)
    assert capped["age"].max() == 80 and len(capped) == len(table)
    assert capped["age"].dtype == table["age"].dtype
    dropped = balance.cap_ages(table, 80, drop=True)
    assert len(dropped) == len(table) - 1 and dropped["age"].max() == 72
    pd.testing.assert_frame_equal(table, before)


def test_downsample_limits_each_band_and_is_seeded(table):
    before = table.copy()
    down = balance.downsample(table, max_per_band=25, seed=1)
    counts = balance.bands_of(down).value_counts()
    assert counts.max() == 25 and counts["20-29"] == 25 and counts["3-9"] == 25
    assert counts["40-49"] == 10 and counts["70+"] == 5  # small bands untouched
    assert down["path"].is_unique and set(down["path"]) <= set(table["path"])
    pd.testing.assert_frame_equal(down, balance.downsample(table, max_per_band=25, seed=1))
    assert not down.equals(balance.downsample(table, max_per_band=25, seed=2))
    pd.testing.assert_frame_equal(table, before)


def test_downsample_default_is_median_band_count(table):
    counts = balance.bands_of(table).value_counts()
    median = int(np.median(counts[counts > 0]))
    assert balance.bands_of(balance.downsample(table)).value_counts().max() == median


def test_upsample_fills_rare_bands_and_keeps_every_original(table):
    before = table.copy()
    up = balance.upsample(table, seed=3)
    counts = balance.bands_of(up).value_counts()
    non_empty = counts[counts > 0]
    assert (non_empty == 80).all()  # every band as large as the biggest
    assert set(table["path"]) <= set(up["path"])
    original = balance.bands_of(table).value_counts()
    assert len(up) == len(table) + int((80 - original[original > 0]).sum())
    pd.testing.assert_frame_equal(up, balance.upsample(table, seed=3))
    pd.testing.assert_frame_equal(table, before)
    partial = balance.upsample(table, min_per_band=20, seed=3)
    assert balance.bands_of(partial).value_counts()["40-49"] == 20
    assert balance.bands_of(partial).value_counts()["20-29"] == 80  # never shrinks a band


def test_band_weights_balance_total_weight_per_band(table):
    weighted = balance.add_sample_weights(table)
    assert "weight" not in table.columns
    assert weighted["weight"].mean() == pytest.approx(1.0)
    mass = weighted.groupby(balance.bands_of(weighted), observed=True)["weight"].sum()
    assert np.allclose(mass, mass.iloc[0])  # power 1: every band carries the same weight
    bands = balance.bands_of(weighted)
    assert weighted.loc[bands == "70+", "weight"].iloc[0] > weighted.loc[bands == "20-29", "weight"].iloc[0]


def test_band_weights_power_smooths_and_zero_is_uniform(table):
    full = balance.band_weights(table, power=1.0)
    soft = balance.band_weights(table, power=0.5)
    assert soft.max() / soft.min() == pytest.approx(np.sqrt(full.max() / full.min()))
    assert np.allclose(balance.band_weights(table, power=0.0), 1.0)
    with pytest.raises(ValueError, match="power"):
        balance.band_weights(table, power=-1)


def test_band_weights_clipping_keeps_mean_one(table):
    weighted = balance.add_sample_weights(table, max_weight=3.0)
    assert weighted["weight"].max() == pytest.approx(3.0)
    assert weighted["weight"].mean() == pytest.approx(1.0)
    assert (weighted["weight"] > 0).all()
    unclipped = balance.add_sample_weights(table)
    # bands below the clip keep their relative order and ratios
    small = unclipped["weight"] < 1
    ratio = weighted.loc[small, "weight"] / unclipped.loc[small, "weight"]
    assert np.allclose(ratio, ratio.iloc[0]) and ratio.iloc[0] > 1
    assert np.allclose(balance.add_sample_weights(table, max_weight=1.0)["weight"], 1.0)
    with pytest.raises(ValueError, match="max_weight"):
        balance.add_sample_weights(table, max_weight=0.5)


def test_compare_counts_and_weight_shares(table):
    weighted = balance.add_sample_weights(table)
    result = balance.compare({"before": table, "weighted": weighted}, weight="weight")
    assert result.loc["total", "before"] == len(table)
    assert result.loc["20-29", "before"] == 80
    shares = result["weighted (weight share)"].drop("total")
    assert shares[shares > 0].round(2).nunique() == 1
    assert result.loc["total", "weighted (weight share)"] == pytest.approx(1.0)


def test_sample_weights_flow_through_make_dataset(tmp_path, image_writer):
    from agecourse.data import make_dataset

    rows = [
        {
            "path": str(image_writer(tmp_path / f"{age}_0_0_2017011900000000{i}.jpg", seed=i)),
            "age": age,
            "gender": 0,
            "race": 0,
        }
        for i, age in enumerate([20, 21, 22, 75])
    ]
    weighted = balance.add_sample_weights(pd.DataFrame(rows))
    batch = next(iter(make_dataset(weighted, 32, batch_size=4, sample_weight="weight")))
    assert len(batch) == 3
    assert np.allclose(batch[2].numpy(), weighted["weight"].to_numpy())
    assert batch[2].numpy()[-1] == pytest.approx(3 * batch[2].numpy()[0])


def test_plot_balance_has_both_tables(table):
    import matplotlib.pyplot as plt

    fig = balance.plot_balance(table, balance.downsample(table, 25), title="t", labels=("a", "b"))
    ax = fig.axes[0]
    assert ax.get_title() == "t"
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"a", "b"}
    heights = [p.get_height() for p in ax.patches if p.get_height() > 0]
    assert max(heights) == 80
    fig2 = balance.plot_balance(table, balance.add_sample_weights(table), weight="weight")
    assert any("sum of weights" in t.get_text() for t in fig2.axes[0].get_legend().get_texts())
    plt.close("all")


# --- group weights (lesson 12's mitigation) -------------------------------------------------


def test_add_group_weights_balances_race_x_gender(table):
    before = table.copy()
    weighted = balance.add_group_weights(table, by=("race", "gender"))
    pd.testing.assert_frame_equal(table, before)
    assert weighted["weight"].mean() == pytest.approx(1.0)
    totals = weighted.groupby(["race", "gender"])["weight"].sum()
    assert totals.max() == pytest.approx(totals.min())  # every cell carries the same total weight
    shares = balance.weight_shares(weighted, ("race", "gender"))
    assert shares["weight_share"].to_numpy() == pytest.approx(np.full(len(shares), 1 / len(shares)))
    assert shares["images"].sum() == len(table) and shares["image_share"].sum() == pytest.approx(1.0)


def test_add_group_weights_combines_with_age_weights_and_clips(table):
    skewed = table.assign(race=[0] * (len(table) - 5) + [1] * 5)
    aged = balance.add_sample_weights(skewed, power=0.5)
    combined = balance.add_group_weights(aged, by="race", combine=True)
    raw = aged["weight"] / skewed.groupby("race")["race"].transform("size")
    np.testing.assert_allclose(combined["weight"], raw / raw.mean())
    clipped = balance.add_group_weights(aged, by="race", combine=True, max_weight=3.0)
    assert clipped["weight"].max() == pytest.approx(3.0) and clipped["weight"].mean() == pytest.approx(1.0)
    soft = balance.add_group_weights(skewed, by="race", power=0.0)
    assert (soft["weight"] == 1.0).all()


def test_group_weights_explain_bad_input(table):
    with pytest.raises(ValueError, match="group by one or more"):
        balance.group_weights(table, by="hair")
    with pytest.raises(ValueError, match="no gender column"):
        balance.group_weights(table.drop(columns="gender"), by="gender")
    with pytest.raises(ValueError, match="power must be"):
        balance.group_weights(table, power=-1)
    with pytest.raises(ValueError, match="needs an existing 'weight' column"):
        balance.add_group_weights(table, combine=True)
    with pytest.raises(ValueError, match="positive finite"):
        balance.add_group_weights(table.assign(weight=0.0), combine=True)


def test_quick_recipe_caps_epochs_and_time_and_trains_both_arms_the_same_way(tmp_path, image_writer):
    from agecourse import recipes
    from agecourse.config import get_settings
    from agecourse.data import Split

    quick, budget_s = balance.quick_recipe(get_settings("cpu"))
    assert quick.epochs == min(get_settings("cpu").epochs, balance.QUICK_EPOCHS) and budget_s == balance.QUICK_BUDGET_S
    assert quick.image_size == get_settings("cpu").image_size  # only ci shrinks the network
    small, _ = balance.quick_recipe(get_settings("ci"))
    assert small.image_size == 32 and small.model_filters == (8, 16, 32)
    line = balance.describe_quick(small, budget_s)
    assert "32 px" in line and "8-16-32" in line and f"{budget_s:.0f} s" in line and "'ci'" in line

    rows = [
        {
            "path": str(image_writer(tmp_path / f"{i}.jpg", (40, 40), seed=i)),
            "age": int(a),
            "gender": i % 2,
            "race": i % 5,
        }
        for i, a in enumerate(np.linspace(1, 80, 24).astype(int))
    ]
    images = pd.DataFrame(rows)
    split = Split(images.iloc[:16], images.iloc[16:20], images.iloc[20:])
    quick = small.replace(epochs=1, batch_size=8)
    weighted = balance.add_sample_weights(split.train, power=1.0)
    model, history = recipes.train_model_a(quick, split, train_images=weighted, sample_weight="weight", verbose=0)
    assert len(history["loss"]) == 1 and model.output_names == ["age", "gender"]
    with pytest.raises(ValueError, match="no 'w' column"):
        recipes.train_model_a(quick, split, train_images=split.train, sample_weight="w", verbose=0)
