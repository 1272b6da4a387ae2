"""Training Model B in two phases (lesson 10): on images, and on cached features of the frozen bottom.

Tiny models (32 px, alpha 0.35, random weights) on a tiny split of random JPEGs keep these fast.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from agecourse import training
from agecourse import transfer as tr
from agecourse import transfer_training as tt


@pytest.fixture(scope="module")
def model_b() -> keras.Model:
    return tr.build_model_b("MobileNetV2", image_size=32, alpha=0.35, weights=None, verbose=False)


def images(n: int = 3, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def test_train_two_phase_returns_both_histories():
    import tensorflow as tf

    model = tr.build_model_b(image_size=32, alpha=0.35, weights=None, verbose=False)
    labels = {"age": np.linspace(1, 80, 8, dtype="float32"), "gender": np.tile([0.0, 1.0], 4).astype("float32")}
    ds = tf.data.Dataset.from_tensor_slices((images(8), labels)).batch(4)
    frozen, finetune, info = tt.train_two_phase(model, ds, ds, tt.PhasePlan(1, 2), finetune_layers=5, verbose=0)
    assert len(frozen["loss"]) == 1 and len(finetune["loss"]) == 2
    assert info == {"finetuned_backbone_layers": 5, "stopped_by_budget": ""}
    assert sum(layer.trainable for layer in tr.backbone_layers(model)) == sum(
        not isinstance(layer, keras.layers.BatchNormalization) for layer in tr.backbone_layers(model)[-5:]
    )
    joined = tt.join_histories(frozen, finetune)
    assert joined["val_age_mae"] == frozen["val_age_mae"] + finetune["val_age_mae"]
    assert len(tt.plot_two_phase(frozen, finetune).axes) == 3


def test_cached_features_and_feature_dataset(model_b, tmp_path, split_maker):
    split = split_maker(tmp_path, (6, 3, 3))
    bottom, _ = tr.split_model(model_b, "block_12_add")
    plain = tt.cached_features(bottom, split.train, 32, batch_size=4)
    flipped = tt.cached_features(bottom, split.train, 32, batch_size=4, flip=True)
    assert plain.shape == (6, *bottom.output.shape[1:]) and plain.dtype == np.float32
    assert not np.allclose(plain, flipped)
    # The batch size changes memory, not the features (CACHE_BATCH_SIZE); dtype sets the storage.
    other_batches = tt.cached_features(bottom, split.train, 32, batch_size=tt.CACHE_BATCH_SIZE, dtype="float16")
    assert other_batches.dtype == np.float16
    np.testing.assert_allclose(other_batches, plain, rtol=2e-3, atol=2e-3)
    ds = tt.feature_dataset(np.concatenate([plain, flipped]), split.train, batch_size=5)
    ages = np.concatenate([labels["age"].numpy() for _, labels in ds])
    np.testing.assert_array_equal(ages, np.tile(split.train["age"].to_numpy("float32"), 2))
    with pytest.raises(ValueError, match="do not match 6 images"):
        tt.feature_dataset(plain[:4], split.train)
    # Half-precision storage (what train_two_phase_cached keeps) comes out as float32 batches.
    half = tt.feature_dataset(plain.astype(np.float16), split.train, batch_size=6)
    (features, _), *_ = list(half)
    assert features.dtype == tf.float32
    np.testing.assert_allclose(features.numpy(), plain, rtol=2e-3, atol=1e-3)


def test_train_two_phase_cached_trains_only_above_the_cut(tmp_path, split_maker):
    split = split_maker(tmp_path, (12, 6, 6))
    model = tr.build_model_b(image_size=32, alpha=0.35, weights=None, verbose=False)
    before = {name: model.get_layer(name).get_weights() for name in ("block_12_project", "block_15_project", "age")}
    frozen, finetune, info = tt.train_two_phase_cached(
        model, split, 32, "block_12_add", tt.PhasePlan(1, 2), batch_size=8, verbose=0
    )
    assert len(frozen["loss"]) == 1 and len(finetune["loss"]) == 2 and "val_age_mae" in finetune
    assert info["train_views"] == 2 and info["finetuned_backbone_layers"] == tr.top_backbone_layers(
        model, "block_12_add"
    )
    assert info["stopped_by_budget"] == ""
    np.testing.assert_array_equal(before["block_12_project"][0], model.get_layer("block_12_project").get_weights()[0])
    assert not np.array_equal(before["block_15_project"][0], model.get_layer("block_15_project").get_weights()[0])
    assert not np.array_equal(before["age"][0], model.get_layer("age").get_weights()[0])


def test_cached_augmented_views_differ_and_repeat_with_the_seed(model_b, tmp_path, split_maker):
    split = split_maker(tmp_path, (6, 3, 3))
    bottom, _ = tr.split_model(model_b, "block_12_add")
    plain = tt.cached_features(bottom, split.train, 32, batch_size=4)
    first = tt.cached_features(bottom, split.train, 32, batch_size=4, augment=tt.view_augmentation(7))
    again = tt.cached_features(bottom, split.train, 32, batch_size=4, augment=tt.view_augmentation(7))
    assert first.shape == plain.shape and not np.allclose(first, plain)
    np.testing.assert_allclose(first, again, rtol=1e-5, atol=1e-5)  # seeded: a rerun caches the same views


def test_train_two_phase_cached_with_four_views_and_a_cosine_schedule(tmp_path, split_maker):
    split = split_maker(tmp_path, (12, 6, 6))
    model = tr.build_model_b(image_size=32, alpha=0.35, weights=None, verbose=False)
    frozen, finetune, info = tt.train_two_phase_cached(
        model, split, 32, "block_12_add", tt.PhasePlan(1, 3, lr_schedule="cosine"), batch_size=8, views=4, verbose=0
    )
    assert info["train_views"] == 4 and len(finetune["loss"]) == 3
    per_view = int(np.prod(model.get_layer("block_12_add").output.shape[1:]))
    assert info["train_feature_bytes"] == 4 * len(split.train) * per_view * 2  # float16: 2 bytes a value
    planned = [training.cosine_schedule(tt.FINETUNE_LEARNING_RATE, 3)(epoch) for epoch in range(3)]
    assert finetune["learning_rate"] == pytest.approx(planned, rel=1e-5)
    with pytest.raises(ValueError, match="views must be at least 1"):
        tt.train_two_phase_cached(model, split, 32, "block_12_add", tt.PhasePlan(1, 1), views=0, verbose=0)


def test_train_two_phase_cached_skips_fine_tuning_when_the_budget_is_spent(tmp_path, split_maker):
    split = split_maker(tmp_path, (12, 6, 6))
    model = tr.build_model_b(image_size=32, alpha=0.35, weights=None, verbose=False)
    frozen, finetune, info = tt.train_two_phase_cached(
        model, split, 32, "block_12_add", tt.PhasePlan(3, 3), batch_size=8, views=1, time_budget_s=1e-3, verbose=0
    )
    assert len(frozen["loss"]) == 1 and finetune == {}
    assert info["stopped_by_budget"].startswith("phase 1: time budget")
    assert info["train_views"] == 1 and info["finetuned_backbone_layers"] == 0


def test_train_two_phase_cached_can_end_each_phase_on_its_last_epoch(tmp_path, split_maker):
    """``restore_best_weights=False`` (the cpu profile's Model B) keeps each phase's last weights."""
    split = split_maker(tmp_path, (12, 6, 6))
    ends = {}
    for restore in (True, False):
        keras.utils.set_random_seed(3)
        model = tr.build_model_b(image_size=32, alpha=0.35, weights=None, verbose=False)
        frozen, finetune, _ = tt.train_two_phase_cached(
            model,
            split,
            32,
            "block_12_add",
            tt.PhasePlan(1, 3, restore_best_weights=restore),
            batch_size=8,
            verbose=0,
            seed=3,
        )
        ends[restore] = (finetune, model.get_layer("age").get_weights()[0].copy())
    (restored_history, restored), (last_history, last) = ends[True], ends[False]
    # Same seed, same trajectory: the histories agree epoch by epoch...
    assert restored_history["val_loss"] == pytest.approx(last_history["val_loss"], rel=1e-4)
    # ...this seed's lowest validation loss comes before the last epoch, so the kept weights must differ.
    assert int(np.argmin(last_history["val_loss"])) < len(last_history["val_loss"]) - 1
    assert not np.allclose(restored, last, atol=1e-6)


def test_both_phases_train_with_the_given_objective(tmp_path, split_maker):
    split = split_maker(tmp_path, (12, 6, 6))
    model = tr.build_model_b(image_size=32, alpha=0.35, weights=None, verbose=False)
    frozen, finetune, _ = tt.train_two_phase_cached(
        model,
        split,
        32,
        "block_12_add",
        tt.PhasePlan(1, 1, loss_weights={"age": 1.0, "gender": 40.0}),
        batch_size=8,
        verbose=0,
    )
    for history in (frozen, finetune):  # the reported validation loss is the weighted sum of the two
        expected = history["val_age_loss"][0] + 40.0 * history["val_gender_loss"][0]
        assert history["val_loss"][0] == pytest.approx(expected, rel=1e-3)
    assert tt.compile_options() == {}
    assert tt.compile_options({"age": 1, "gender": 5}, 0.05) == {
        "loss_weights": {"age": 1, "gender": 5},
        "weight_decay": 0.05,
    }


def test_two_phase_on_images_compiles_with_the_given_weight_decay(tmp_path, split_maker):
    from agecourse.data import make_dataset

    split = split_maker(tmp_path, (8, 4, 4))
    model = tr.build_model_b(image_size=32, alpha=0.35, weights=None, verbose=False)
    train, val = make_dataset(split.train, 32, 8), make_dataset(split.val, 32, 8)
    tt.train_two_phase(model, train, val, tt.PhasePlan(1, 1, weight_decay=0.05), finetune_layers=5, verbose=0)
    assert float(model.optimizer.weight_decay) == pytest.approx(0.05)


def test_both_trainers_give_the_same_result_when_the_cache_is_exact(tmp_path, split_maker):
    """One view and no augmentation: the cached features are the bottom's output for the same images,
    so the cached trainer runs the same phases on the same batches as the trainer on images (one batch
    per epoch, so shuffling cannot reorder them); only the float16 storage of the training features
    differs, which keeps about three significant digits."""
    from agecourse.data import make_dataset

    split = split_maker(tmp_path, (8, 4, 4))
    plan = tt.PhasePlan(2, 2, lr_schedule="cosine")
    runs = {}
    for kind in ("images", "cached"):
        keras.utils.set_random_seed(5)
        model = tr.build_model_b(image_size=32, alpha=0.35, weights=None, verbose=False)
        n_top = tr.top_backbone_layers(model, "block_12_add")
        if kind == "images":
            train, val = make_dataset(split.train, 32, 8), make_dataset(split.val, 32, 8)
            frozen, finetune, info = tt.train_two_phase(model, train, val, plan, finetune_layers=n_top, verbose=0)
        else:
            frozen, finetune, info = tt.train_two_phase_cached(
                model, split, 32, "block_12_add", plan, views=1, batch_size=8, verbose=0
            )
        runs[kind] = (frozen, finetune, info["finetuned_backbone_layers"], model.get_layer("age").get_weights()[0])
    (f1, t1, n1, w1), (f2, t2, n2, w2) = runs["images"], runs["cached"]
    assert n1 == n2 > 0 and len(f1["loss"]) == len(f2["loss"]) == 2 and len(t1["loss"]) == len(t2["loss"]) == 2
    for key in ("loss", "val_loss", "val_age_mae", "learning_rate"):
        assert f1[key] + t1[key] == pytest.approx(f2[key] + t2[key], rel=1e-2), key
    np.testing.assert_allclose(w1, w2, rtol=1e-2, atol=1e-3)


def test_cache_views_stops_adding_views_when_time_runs_out(model_b, tmp_path, split_maker):
    import time

    split = split_maker(tmp_path, (6, 3, 3))
    bottom, _ = tr.split_model(model_b, "block_12_add")
    all_views = tt.cache_views(bottom, split.train, 32, views=3, batch_size=4)
    assert all_views.shape[0] == 18 and all_views.dtype == np.float16
    hurried = tt.cache_views(bottom, split.train, 32, views=3, batch_size=4, until=time.monotonic())
    assert hurried.shape[0] == 6, "at least one view, and no more once the time is up"
    np.testing.assert_array_equal(hurried, all_views[:6])
