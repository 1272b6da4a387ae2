"""Data layer: file-name parsing, scanning, image checks, splits and the tf.data pipeline."""

from __future__ import annotations

import pandas as pd
import pytest

from agecourse import data
from agecourse.data import FilenameError, parse_filename


@pytest.mark.parametrize(
    "name, expected",
    [
        ("25_1_3_20170119171136578.jpg.chip.jpg", (25, 1, 3)),
        ("1_0_0_20161219140623097.jpg", (1, 0, 0)),
        ("116_1_4_20170110183726390.JPG", (116, 1, 4)),
        ("0_0_2_20170110183726390.png", (0, 0, 2)),
    ],
)
def test_parse_filename_accepts_valid_names(name, expected):
    labels = parse_filename(name)
    assert (labels.age, labels.gender, labels.race) == expected


@pytest.mark.parametrize(
    "name, reason",
    [
        ("61_3_20170109150557335.jpg.chip.jpg", "missing field"),
        ("25_1_20170119171136578.jpg", "missing field"),
        ("x_1_3_20170119171136578.jpg", "age is not a non-negative integer"),
        ("25_m_3_20170119171136578.jpg", "gender is not a non-negative integer"),
        ("25_2_3_20170119171136578.jpg", "gender not 0/1"),
        ("25_1_5_20170119171136578.jpg", "race not 0-4"),
        ("117_1_3_20170119171136578.jpg", "age outside 0-116"),
        ("-3_1_3_20170119171136578.jpg", "age is not a non-negative integer"),
        ("25_1_3_20170119171136578.txt", "not an image extension"),
        ("25_1_3_2017_01.jpg", "too many fields"),
        ("README", "not an image extension"),
    ],
)
def test_parse_filename_rejects_with_reason(name, reason):
    with pytest.raises(FilenameError, match=reason):
        parse_filename(name)


def _make_folder(root, image_writer):
    image_writer(root / "25_1_3_20170119171136578.jpg.chip.jpg")
    image_writer(root / "sub" / "40_0_0_20170119171136579.jpg.chip.jpg", seed=1)
    image_writer(root / "61_3_20170109150557335.jpg.chip.jpg", seed=2)
    (root / "notes.txt").write_text("not a face")
    (root / ".DS_Store").write_bytes(b"\0")
    return root


def test_scan_folder_counts_every_file(tmp_path, image_writer):
    folder = _make_folder(tmp_path, image_writer)
    result = data.scan_folder(folder)
    assert len(result.images) == 2
    assert len(result.rejects) == 3
    assert len(result.images) + len(result.rejects) == sum(1 for p in folder.rglob("*") if p.is_file())
    assert set(result.rejects["stage"]) == {"filename"}
    assert "2 images accepted, 3 rejected" in result.summary()
    assert list(result.images.columns) == ["path", "age", "gender", "race"]


def test_scan_missing_folder_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        data.scan_folder(tmp_path / "nowhere")


def test_check_images_rejects_bad_and_converts_odd_formats(tmp_path, image_writer):
    good = image_writer(tmp_path / "20_0_0_20170101000000001.jpg")
    (tmp_path / "21_0_0_20170101000000002.jpg").write_bytes(b"")
    (tmp_path / "22_0_0_20170101000000003.jpg").write_text("this is text, not a JPEG")
    truncated = image_writer(tmp_path / "tmp.jpg", size=(120, 120), seed=3).read_bytes()
    (tmp_path / "tmp.jpg").unlink()
    (tmp_path / "23_0_0_20170101000000004.jpg").write_bytes(truncated[: len(truncated) // 2])
    image_writer(tmp_path / "24_0_0_20170101000000005.jpg", size=(1, 1))
    image_writer(tmp_path / "30_1_1_20170101000000006.jpg", mode="L")
    image_writer(tmp_path / "31_1_1_20170101000000007.jpg", mode="CMYK")
    image_writer(tmp_path / "32_1_1_20170101000000008.jpg", mode="RGBA", fmt="PNG")  # PNG behind .jpg
    image_writer(tmp_path / "33_1_1_20170101000000009.png", mode="RGBA", fmt="PNG")

    result = data.load_utkface(tmp_path)
    reasons = dict(zip(result.rejects["file"].map(lambda f: f.split("/")[-1][:2]), result.rejects["reason"]))
    assert set(reasons) == {"21", "22", "23", "24"}
    assert "0 bytes" in reasons["21"]
    assert "not an image" in reasons["22"]
    assert "decode" in reasons["23"]
    assert "too small" in reasons["24"]
    assert len(result.images) == 5
    assert result.converted == 3  # CMYK, PNG-in-.jpg, RGBA PNG; grayscale JPEG is read directly
    assert str(good) in set(result.images["path"])

    # Every accepted image, converted or not, streams through tf.data as RGB.
    ds = data.make_dataset(result.images, image_size=32, batch_size=8)
    images, labels = next(iter(ds))
    assert images.shape == (5, 32, 32, 3)
    assert float(images.numpy().min()) >= 0 and float(images.numpy().max()) <= 255
    assert sorted(labels["age"].numpy().tolist()) == [20, 30, 31, 32, 33]


def test_bad_file_does_not_kill_an_epoch(tmp_path, image_writer):
    paths = [str(image_writer(tmp_path / f"{20 + i}_0_0_2017010100000000{i}.jpg", seed=i)) for i in range(4)]
    broken = tmp_path / "50_1_0_20170101000000009.jpg"
    broken.write_text("broken after the check")
    table = pd.DataFrame({"path": paths + [str(broken)], "age": [20, 21, 22, 23, 50], "gender": [0] * 4 + [1]})
    batches = list(data.make_dataset(table, image_size=16, batch_size=2))
    assert sum(int(b[0].shape[0]) for b in batches) == 4


def test_split_is_deterministic_stratified_and_disjoint(synthetic_dir):
    images = data.scan_folder(synthetic_dir).images
    first = data.split_dataset(images, seed=7)
    again = data.split_dataset(images.sample(frac=1, random_state=1), seed=7)  # order must not matter
    other = data.split_dataset(images, seed=8)
    for a, b in zip((first.train, first.val, first.test), (again.train, again.val, again.test)):
        pd.testing.assert_frame_equal(a, b)
    assert set(first.test["path"]) != set(other.test["path"])
    parts = [set(p["path"]) for p in (first.train, first.val, first.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sum(first.sizes().values()) == len(images)
    # Stratified: gender share in test within 5 points of the whole set.
    assert abs(first.test["gender"].mean() - images["gender"].mean()) < 0.05


@pytest.mark.parametrize("n", [10, 25, 40, 80])
def test_small_sets_split_with_coarser_strata(synthetic_dir, n):
    """Too few images for every age band x gender stratum on each side: gender only, or nothing."""
    images = data.scan_folder(synthetic_dir).images.head(n)
    split = data.split_dataset(images, seed=1)
    assert sum(split.sizes().values()) == n and min(split.sizes().values()) >= 1
    again = data.split_dataset(images, seed=1)
    pd.testing.assert_frame_equal(split.test, again.test)


@pytest.mark.parametrize("n", [1, 5, 12, 40])
def test_small_stratified_samples(synthetic_dir, n):
    images = data.scan_folder(synthetic_dir).images
    sample = data.stratified_sample(images, n, seed=2)
    assert len(sample) == n and set(sample["path"]) <= set(images["path"])
    pd.testing.assert_frame_equal(sample, data.stratified_sample(images, n, seed=2))


def test_split_round_trips_through_csv(tmp_path, synthetic_dir):
    split = data.split_dataset(data.scan_folder(synthetic_dir).images, seed=3)
    loaded = data.Split.load(split.save(tmp_path / "split.csv"))
    pd.testing.assert_frame_equal(loaded.test, split.test)


def test_split_rejects_bad_fractions(synthetic_dir):
    images = data.scan_folder(synthetic_dir).images
    with pytest.raises(ValueError, match="sum to less than 1"):
        data.split_dataset(images, val_fraction=0.5, test_fraction=0.5)


def test_stratified_sample_keeps_mix(synthetic_dir):
    images = data.scan_folder(synthetic_dir).images
    subset = data.stratified_sample(images, 200, seed=1)
    assert len(subset) == 200
    assert subset.equals(data.stratified_sample(images, 200, seed=1))
    assert abs(subset["age"].mean() - images["age"].mean()) < 4


def test_pipeline_streams_with_labels_and_weights(synthetic_dir):
    images = data.scan_folder(synthetic_dir).images.head(50).assign(weight=2.0)
    ds = data.make_dataset(images, image_size=24, batch_size=16, shuffle=True, seed=1, sample_weight="weight")
    x, y, w = next(iter(ds))
    assert x.shape == (16, 24, 24, 3) and set(y) == {"age", "gender"} and float(w[0]) == 2.0
    first = [float(v) for v in next(iter(data.make_dataset(images, 24, 16, shuffle=True, seed=1)))[1]["age"]]
    again = [float(v) for v in next(iter(data.make_dataset(images, 24, 16, shuffle=True, seed=1)))[1]["age"]]
    assert first == again  # same seed, same order
    assert first != [float(a) for a in images["age"].head(16)]  # and it is shuffled


def test_pipeline_memory_cache(synthetic_dir):
    images = data.scan_folder(synthetic_dir).images.head(20)
    ds = data.make_dataset(images, image_size=16, batch_size=10, cache="memory")
    assert [b[0].shape[0] for b in ds] == [10, 10]
    assert [b[0].shape[0] for b in ds] == [10, 10]  # second pass reads the cache


def test_cached_shuffled_pipeline_reshuffles_every_epoch(synthetic_dir):
    images = data.scan_folder(synthetic_dir).images.head(40)
    ds = data.make_dataset(images, image_size=16, batch_size=40, shuffle=True, seed=3, cache="memory")
    first_x, first_y = next(iter(ds))
    second_x, second_y = next(iter(ds))  # second epoch: read back from the cache
    first, second = first_y["age"].numpy().tolist(), second_y["age"].numpy().tolist()
    assert first != second  # a new order each epoch, although the images come from the cache
    assert sorted(first) == sorted(second) == sorted(images["age"].astype(float).tolist())
    # each image travels with its own label whatever the order
    label_of = {first_x[i].numpy().tobytes(): first[i] for i in range(40)}
    assert len(label_of) == 40 and all(label_of[second_x[i].numpy().tobytes()] == second[i] for i in range(40))


def test_make_dataset_refuses_empty():
    with pytest.raises(ValueError, match="empty"):
        data.make_dataset(pd.DataFrame(columns=["path", "age", "gender"]), 16)


def test_describe_counts(synthetic_dir):
    images = data.scan_folder(synthetic_dir).images
    summary = data.describe(images)
    assert summary["count"] == len(images)
    assert sum(summary["gender"].values()) == len(images)
    assert sum(summary["age"]["bands"].values()) == len(images)


@pytest.mark.real_data
def test_real_sample_scan(real_data_dir):
    result = data.scan_folder(real_data_dir)
    assert len(result.images) == 7850
    assert len(result.rejects) == 1
    assert "missing field" in result.rejects["reason"].iloc[0]
