"""Lesson 01-03 and 05 helpers: name tables, demo rejects, plots, split shares, memory arithmetic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agecourse import explore
from agecourse.config import get_settings
from agecourse.data import load_utkface, split_dataset


@pytest.fixture
def faces(tmp_path, image_writer) -> pd.DataFrame:
    """40 small random 'faces' with UTKFace names spread over ages 1-90."""
    rows = []
    for i in range(40):
        age, gender, race = 1 + (i * 89) // 39, i % 2, i % 5
        path = image_writer(
            tmp_path / "faces" / f"{age}_{gender}_{race}_201701190000{i:05d}.jpg.chip.jpg", size=(48, 48), seed=i
        )
        rows.append({"path": str(path), "age": age, "gender": gender, "race": race})
    return pd.DataFrame(rows)


def test_data_name_says_synthetic():
    assert "synthetic" in explore.data_name(get_settings("ci"))
    assert explore.data_name(get_settings("cpu", data_dir="/somewhere")) == "UTKFace"


def test_parse_table_good_and_bad_names():
    table = explore.parse_table(
        ["25_1_3_20170119171136578.jpg.chip.jpg", "61_3_20170109150557335.jpg.chip.jpg", "/x/notes.txt"]
    )
    assert list(table.columns) == ["name", "age", "gender", "race", "reason"]
    assert table.loc[0, "age"] == 25 and table.loc[0, "gender"] == "female" and table.loc[0, "race"] == "Indian"
    assert table.loc[0, "reason"] == ""
    assert table.loc[1, "reason"].startswith("missing field") and pd.isna(table.loc[1, "age"])
    assert table.loc[2, "name"] == "notes.txt" and "extension" in table.loc[2, "reason"]


def test_demo_folder_produces_every_kind_of_reject(tmp_path, faces):
    written = explore.make_demo_folder(tmp_path / "demo", faces, n_good=5)
    assert len(written) == 5 + len(explore.DEMO_BAD_FILES)
    result = load_utkface(tmp_path / "demo")
    # 5 good images plus the PNG-behind-.jpg file, which is converted and kept
    assert len(result.images) == 6 and result.converted == 1
    rejects = result.rejects.assign(name=result.rejects["file"].map(lambda f: f.rsplit("/", 1)[-1]))
    reasons = dict(zip(rejects["name"], rejects["reason"]))
    assert len(rejects) == len(explore.DEMO_BAD_FILES) - 1
    assert reasons["61_3_20170109150557335.jpg.chip.jpg"].startswith("missing field")
    assert "age outside" in reasons["130_0_0_20170117000000001.jpg.chip.jpg"]
    assert "gender not 0/1" in reasons["35_2_1_20170117000000002.jpg.chip.jpg"]
    assert "hidden" in reasons[".DS_Store"]
    assert "0 bytes" in reasons["30_0_1_20170117000000003.jpg.chip.jpg"]
    assert "not an image" in reasons["45_1_0_20170117000000004.jpg.chip.jpg"]
    assert "cannot decode" in reasons["52_0_3_20170117000000005.jpg.chip.jpg"]
    assert "too small" in reasons["8_1_2_20170117000000006.jpg.chip.jpg"]
    assert set(rejects["stage"]) == {"filename", "image"}
    shown = explore.rejects_table(result)
    assert list(shown.columns) == ["file", "stage", "reason"] and "/" not in "".join(shown["file"])
    assert list(shown["stage"]) == sorted(shown["stage"], key=["filename", "image"].index)
    assert all((tmp_path / "faces" / p.rsplit("/", 1)[-1]).exists() for p in faces["path"])  # copied, not moved


def test_demo_folder_needs_a_good_image(tmp_path):
    with pytest.raises(ValueError, match="at least one good image"):
        explore.make_demo_folder(tmp_path, pd.DataFrame(columns=["path", "age", "gender", "race"]))


def test_band_table_counts_and_weight_shares(faces):
    table = explore.band_table(faces)
    assert table["count"].sum() == 40 and table["share"].sum() == pytest.approx(1.0)
    weighted = faces.assign(w=np.where(faces["age"] >= 70, 3.0, 1.0))
    shares = explore.band_table(weighted, weight="w")["share"]
    assert shares["70+"] > table.loc["70+", "share"]
    assert shares.sum() == pytest.approx(1.0)


def test_mean_predictor_underestimates_old_and_overestimates_young(faces):
    table = explore.mean_predictor_errors(faces)
    assert table.loc["70+", "signed_error"] < 0 < table.loc["0-2", "signed_error"]
    assert (table["prediction"] == round(faces["age"].mean(), 1)).all()
    assert table["count"].sum() == 40


def test_memory_arithmetic():
    assert explore.numpy_memory_bytes(23_708, 200) == 23_708 * 200 * 200 * 3 * 4
    assert explore.numpy_memory_bytes(10, 64, dtype="uint8") == 10 * 64 * 64 * 3
    assert explore.streaming_memory_bytes(64, 128, batches_in_flight=3) == 3 * 64 * 128 * 128 * 3 * 4
    assert explore.format_bytes(explore.numpy_memory_bytes(23_708, 200)) == "11.4 GB"
    assert explore.format_bytes(512) == "512 B"
    with pytest.raises(ValueError):
        explore.numpy_memory_bytes(10, 0)
    table = explore.memory_table(23_708, sizes=(200, 64), batch_size=64)
    assert len(table) == 4 and table.iloc[0]["all_images"] == "11.4 GB"
    assert len(explore.memory_table(100, sizes=(128, 200, 128))) == 4  # a repeated size is listed once


def test_split_table_shows_stratified_parts(faces):
    split = split_dataset(
        pd.concat([faces] * 3, ignore_index=True).assign(path=lambda t: t["path"] + t.index.astype(str)), seed=0
    )
    bands = explore.split_table(split)
    assert list(bands.columns) == ["train", "val", "test"]
    assert np.allclose(bands.sum(), 1.0)
    genders = explore.split_table(split, "gender")
    assert list(genders.index) == ["male", "female"]
    assert (genders.max(axis=1) - genders.min(axis=1)).max() < 0.15
    with pytest.raises(ValueError, match="band"):
        explore.split_table(split, "race")


def test_time_pass_counts_images(faces):
    from agecourse.data import make_dataset

    ds = make_dataset(faces, 32, batch_size=16)
    stats = explore.time_pass(ds)
    assert stats["images"] == 40 and stats["batches"] == 3 and stats["images_per_second"] > 0
    assert explore.time_pass(ds, max_batches=1)["images"] == 16


def test_plots_have_titles_and_panels(faces):
    import matplotlib.pyplot as plt

    from agecourse.augment import make_augmentation

    fig = explore.plot_sample_grid(faces, n=10, cols=5, title="Sample (synthetic faces)")
    assert fig._suptitle.get_text() == "Sample (synthetic faces)"
    labelled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(labelled) == 10 and all(("male" in t or "female" in t) for t in labelled)
    fig = explore.plot_distributions(faces, title="d")
    assert [ax.get_title() for ax in fig.axes] == ["age (stacked by gender)", "gender", "race"]
    fig = explore.plot_band_shares({"a": faces, "b": faces.iloc[:20]}, title="s")
    assert fig.axes[0].get_title() == "s"
    fig = explore.plot_resize(faces["path"][0], 24)
    assert "24x24" in fig.axes[1].get_title() and "48x48" in fig.axes[0].get_title()
    fig = explore.plot_augmentations(faces["path"][:2], make_augmentation(seed=1), 32, n=3)
    assert len(fig.axes) == 2 * 4
    plt.close("all")
