"""Model B (lesson 10): flat backbone model, preprocessing layer, freezing, weights lookup.

Tiny models (32 px, alpha 0.35, random weights) keep these tests fast; only ``test_real_weights``
reads the shared ImageNet file, and it skips where that file is absent.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from agecourse import training
from agecourse import transfer as tr

SHARED_WEIGHTS = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "weights"
    / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
)


@pytest.fixture(scope="module")
def model_b() -> keras.Model:
    return tr.build_model_b("MobileNetV2", image_size=32, alpha=0.35, weights=None, verbose=False)


@pytest.fixture
def no_local_weights(tmp_path, monkeypatch) -> Path:
    """An empty Keras home and no AGECOURSE_WEIGHTS, so no weight file can be found."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.delenv("AGECOURSE_WEIGHTS", raising=False)
    return tmp_path / "keras-home" / "models"


def images(n: int = 3, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def test_registry_has_the_five_backbones():
    assert list(tr.BACKBONES) == ["MobileNetV2", "EfficientNetB0", "ResNet50", "VGG16", "Xception"]
    for spec in tr.BACKBONES.values():
        assert callable(spec.constructor) and callable(spec.preprocess_input)
        assert spec.mode in tr.BackbonePreprocess.MODES
        assert spec.min_size >= 32
    assert tr.get_backbone("mobilenetv2") is tr.BACKBONES["MobileNetV2"]
    with pytest.raises(ValueError, match="unknown backbone"):
        tr.get_backbone("AlexNet")


def test_mobilenet_weight_file_names_prefer_the_image_size_then_224():
    names = tr.get_backbone("MobileNetV2").weight_file_names(alpha=0.35, image_size=96)
    assert names[0] == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"
    assert names[1] == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
    assert len(names) == len(set(names)) == 5
    assert tr.get_backbone("MobileNetV2").weight_file_names(1, 64)[0].endswith("_1.0_224_no_top.h5")
    assert tr.get_backbone("ResNet50").weight_file_names() == ["resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"]


def test_model_is_flat_with_every_backbone_layer(model_b):
    assert not [layer.name for layer in model_b.layers if isinstance(layer, keras.Model)]
    reference = keras.applications.MobileNetV2(input_shape=(32, 32, 3), include_top=False, alpha=0.35, weights=None)
    backbone_names = {layer.name for layer in reference.layers[1:]}  # all but its Input
    assert backbone_names <= {layer.name for layer in model_b.layers}
    assert {layer.name for layer in tr.backbone_layers(model_b)} == backbone_names
    assert model_b.get_layer(tr.BACKBONES["MobileNetV2"].last_conv).output.shape[1:3] == (1, 1)


def test_outputs_are_named_age_and_gender(model_b):
    assert list(model_b.output_names) == ["age", "gender"]
    age, gender = model_b.predict(images(), verbose=0)
    assert age.shape == gender.shape == (3, 1)
    assert (age >= 0).all() and ((gender >= 0) & (gender <= 1)).all()


@pytest.mark.parametrize(
    "mode, official",
    [
        ("tf", keras.applications.mobilenet_v2.preprocess_input),
        ("caffe", keras.applications.resnet50.preprocess_input),
        ("torch", lambda x: keras.applications.imagenet_utils.preprocess_input(x, mode="torch")),
        ("none", keras.applications.efficientnet.preprocess_input),
    ],
)
def test_preprocess_layer_matches_official_function(mode, official):
    x = images(2, 8)
    ours = keras.ops.convert_to_numpy(tr.BackbonePreprocess(mode)(x))
    np.testing.assert_allclose(ours, official(x.copy()), rtol=1e-5, atol=1e-4)


def test_preprocess_layer_rejects_unknown_mode():
    with pytest.raises(ValueError, match="unknown preprocessing mode 'bgr'"):
        tr.BackbonePreprocess("bgr")


def test_keras_file_round_trip_gives_identical_predictions(tmp_path):
    from agecourse.augment import make_augmentation

    model = tr.build_model_b(image_size=32, alpha=0.35, weights=None, augment=make_augmentation(), verbose=False)
    path = tmp_path / "model_b.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = images()
    for before, after in zip(model.predict(x, verbose=0), loaded.predict(x, verbose=0)):
        np.testing.assert_array_equal(before, after)
    assert loaded.get_layer("preprocess").mode == "tf"
    assert len(tr.backbone_layers(loaded)) == len(tr.backbone_layers(model))


def test_set_trainable_top_freezes_all_but_top_n_and_keeps_batch_norm_frozen(model_b):
    backbone = tr.backbone_layers(model_b)
    count = tr.set_trainable_top(model_b, 12)
    top, rest = backbone[-12:], backbone[:-12]
    assert not any(layer.trainable for layer in rest)
    assert all(layer.trainable != isinstance(layer, keras.layers.BatchNormalization) for layer in top)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in top)
    assert count == sum(not isinstance(layer, keras.layers.BatchNormalization) for layer in top)
    assert model_b.get_layer("age").trainable and model_b.get_layer("gender_dense").trainable
    assert tr.set_trainable_top(model_b, 0) == 0
    assert not any(layer.trainable for layer in backbone)
    with pytest.raises(ValueError):
        tr.set_trainable_top(model_b, -1)


def test_frozen_backbone_keeps_weights_and_batch_norm_statistics():
    from agecourse.models import compile_model

    model = tr.build_model_b(image_size=32, alpha=0.35, weights=None, verbose=False)
    tr.set_trainable_top(model, 0)
    compile_model(model, learning_rate=1e-2)
    watched = {
        name: [w.copy() for w in model.get_layer(name).get_weights()]
        for name in ("Conv1", "bn_Conv1", "out_relu", "age")
    }
    labels = {"age": np.array([[5.0], [60.0], [30.0], [80.0]]), "gender": np.array([[0.0], [1.0], [1.0], [0.0]])}
    model.fit(images(4), labels, epochs=2, verbose=0)
    for name in ("Conv1", "bn_Conv1"):  # kernel, and batch-norm gamma/beta/moving mean/variance
        for before, after in zip(watched[name], model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(before, after)
    assert not np.array_equal(watched["age"][0], model.get_layer("age").get_weights()[0])


def test_train_two_phase_returns_both_histories():
    import tensorflow as tf

    model = tr.build_model_b(image_size=32, alpha=0.35, weights=None, verbose=False)
    labels = {"age": np.linspace(1, 80, 8, dtype="float32"), "gender": np.tile([0.0, 1.0], 4).astype("float32")}
    ds = tf.data.Dataset.from_tensor_slices((images(8), labels)).batch(4)
    frozen, finetune = tr.train_two_phase(
        model, ds, ds, epochs_frozen=1, epochs_finetune=2, finetune_layers=5, verbose=0
    )
    assert len(frozen["loss"]) == 1 and len(finetune["loss"]) == 2
    assert sum(layer.trainable for layer in tr.backbone_layers(model)) == sum(
        not isinstance(layer, keras.layers.BatchNormalization) for layer in tr.backbone_layers(model)[-5:]
    )
    joined = tr.join_histories(frozen, finetune)
    assert joined["val_age_mae"] == frozen["val_age_mae"] + finetune["val_age_mae"]
    assert len(tr.plot_two_phase(frozen, finetune).axes) == 3


def test_backbone_layers_rejects_a_model_without_a_backbone():
    from agecourse.models import build_model_a

    with pytest.raises(ValueError, match="not a Model B"):
        tr.backbone_layers(build_model_a(32, filters=(8,)))


def test_resolve_weights_finds_a_file_in_the_keras_cache(no_local_weights):
    no_local_weights.mkdir(parents=True)
    fake = no_local_weights / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
    fake.write_bytes(b"not loaded by this test")
    assert tr.resolve_weights("MobileNetV2", 0.35, 96, profile="cpu", verbose=False) == str(fake)
    exact = no_local_weights / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"
    exact.write_bytes(b"fake")
    assert tr.resolve_weights("MobileNetV2", 0.35, 96, profile="cpu", verbose=False) == str(exact)
    assert tr.find_weights("MobileNetV2", 0.5, 96) is None


def test_agecourse_weights_folder_comes_before_the_keras_cache(no_local_weights, tmp_path, monkeypatch):
    name = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    no_local_weights.mkdir(parents=True)
    (no_local_weights / name).write_bytes(b"fake")
    configured = tmp_path / "configured"
    configured.mkdir()
    (configured / name).write_bytes(b"fake")
    monkeypatch.setenv("AGECOURSE_WEIGHTS", str(configured))
    assert tr.find_weights("ResNet50") == configured / name


def test_resolve_weights_without_a_file_warns_in_ci_and_downloads_elsewhere(no_local_weights, capsys):
    with pytest.warns(UserWarning, match="RANDOM weights"):
        assert tr.resolve_weights("MobileNetV2", 0.35, 96, profile="ci") is None
    assert tr.resolve_weights("MobileNetV2", 0.35, 96, profile="cpu") == "imagenet"
    assert "Keras will download" in capsys.readouterr().out


def test_failed_download_says_where_to_put_the_file(no_local_weights, monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(RuntimeError, match="0.35_96_no_top.h5 into .*keras-home/models"):
        tr.build_model_b(image_size=96, alpha=0.35, weights="imagenet", profile="cpu", verbose=False)


def test_build_rejects_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        tr.build_model_b(weights=tmp_path / "missing.h5")
    with pytest.raises(ValueError, match="at least 71 px"):
        tr.build_model_b("Xception", image_size=64, weights=None)


def test_real_weights_load_at_96_px():
    if not SHARED_WEIGHTS.is_file():
        pytest.skip(f"shared ImageNet weights not available at {SHARED_WEIGHTS}")
    model = tr.build_model_b(image_size=96, alpha=0.35, weights=SHARED_WEIGHTS, verbose=False)
    reference = keras.applications.MobileNetV2(
        input_shape=(96, 96, 3), include_top=False, alpha=0.35, weights=str(SHARED_WEIGHTS)
    )
    random = keras.applications.MobileNetV2(input_shape=(96, 96, 3), include_top=False, alpha=0.35, weights=None)
    for name in ("Conv1", "block_8_depthwise", "Conv_1_bn"):
        for ours, theirs in zip(model.get_layer(name).get_weights(), reference.get_layer(name).get_weights()):
            np.testing.assert_array_equal(ours, theirs)
        assert not all(
            np.array_equal(a, b)
            for a, b in zip(model.get_layer(name).get_weights(), random.get_layer(name).get_weights())
        )
    # The flat model computes exactly what the stand-alone backbone computes on preprocessed input.
    x = images(2, 96)
    features = keras.Model(model.inputs, model.get_layer("out_relu").output).predict(x, verbose=0)
    expected = reference.predict(keras.applications.mobilenet_v2.preprocess_input(x.copy()), verbose=0)
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4)


# --- fast path: cut, cache, train the top ---------------------------------------------------------


def small_split(tmp_path, image_writer, n: int = 12):
    """A tiny train/val/test split of random JPEGs with UTKFace-style labels."""
    import pandas as pd

    from agecourse.data import Split

    def part(name: str, count: int) -> pd.DataFrame:
        rows = []
        for i in range(count):
            age, gender = 5 + 7 * i, i % 2
            path = image_writer(tmp_path / name / f"{age}_{gender}_0_2017{i:04d}.jpg", size=(40, 40), seed=i)
            rows.append({"path": str(path), "age": age, "gender": gender, "race": 0})
        return pd.DataFrame(rows)

    return Split(part("train", n), part("val", n // 2), part("test", n // 2))


def test_split_model_halves_compose_to_the_model_and_share_layers(model_b):
    bottom, top = tr.split_model(model_b, "block_12_add")
    x = images()
    for whole, halves in zip(model_b.predict(x, verbose=0), top.predict(bottom.predict(x, verbose=0), verbose=0)):
        np.testing.assert_allclose(whole, halves, rtol=1e-5, atol=1e-5)
    assert top.get_layer("age") is model_b.get_layer("age")
    assert top.get_layer("block_16_project") is model_b.get_layer("block_16_project")
    assert "block_16_project" not in {layer.name for layer in bottom.layers}
    above = {layer.name for layer in top.layers}
    assert tr.top_backbone_layers(model_b, "block_12_add") == sum(
        layer.name in above for layer in tr.backbone_layers(model_b)
    )


def test_split_model_rejects_a_cut_jumped_by_a_shortcut_and_unknown_layers(model_b):
    with pytest.raises(ValueError, match="shortcut"):
        tr.split_model(model_b, "block_12_project_BN")  # block_12_add also needs block_11_add
    with pytest.raises(ValueError, match="no layer 'nowhere'"):
        tr.split_model(model_b, "nowhere")
    with pytest.raises(ValueError, match="not a backbone layer"):
        tr.top_backbone_layers(model_b, "age")


def test_cached_features_and_feature_dataset(model_b, tmp_path, image_writer):
    split = small_split(tmp_path, image_writer, n=6)
    bottom, _ = tr.split_model(model_b, "block_12_add")
    plain = tr.cached_features(bottom, split.train, 32, batch_size=4)
    flipped = tr.cached_features(bottom, split.train, 32, batch_size=4, flip=True)
    assert plain.shape == (6, *bottom.output.shape[1:]) and plain.dtype == np.float32
    assert not np.allclose(plain, flipped)
    ds = tr.feature_dataset(np.concatenate([plain, flipped]), split.train, batch_size=5)
    ages = np.concatenate([labels["age"].numpy() for _, labels in ds])
    np.testing.assert_array_equal(ages, np.tile(split.train["age"].to_numpy("float32"), 2))
    with pytest.raises(ValueError, match="do not match 6 images"):
        tr.feature_dataset(plain[:4], split.train)


def test_train_two_phase_cached_trains_only_above_the_cut(tmp_path, image_writer):
    split = small_split(tmp_path, image_writer)
    model = tr.build_model_b(image_size=32, alpha=0.35, weights=None, verbose=False)
    before = {name: model.get_layer(name).get_weights() for name in ("block_12_project", "block_15_project", "age")}
    frozen, finetune, info = tr.train_two_phase_cached(
        model, split, 32, "block_12_add", epochs_frozen=1, epochs_finetune=2, batch_size=8, verbose=0
    )
    assert len(frozen["loss"]) == 1 and len(finetune["loss"]) == 2 and "val_age_mae" in finetune
    assert info["train_views"] == 2 and info["finetuned_backbone_layers"] == tr.top_backbone_layers(
        model, "block_12_add"
    )
    assert info["stopped_by_budget"] == ""
    np.testing.assert_array_equal(before["block_12_project"][0], model.get_layer("block_12_project").get_weights()[0])
    assert not np.array_equal(before["block_15_project"][0], model.get_layer("block_15_project").get_weights()[0])
    assert not np.array_equal(before["age"][0], model.get_layer("age").get_weights()[0])


def test_cached_augmented_views_differ_and_repeat_with_the_seed(model_b, tmp_path, image_writer):
    split = small_split(tmp_path, image_writer, n=6)
    bottom, _ = tr.split_model(model_b, "block_12_add")
    plain = tr.cached_features(bottom, split.train, 32, batch_size=4)
    first = tr.cached_features(bottom, split.train, 32, batch_size=4, augment=tr.view_augmentation(7))
    again = tr.cached_features(bottom, split.train, 32, batch_size=4, augment=tr.view_augmentation(7))
    assert first.shape == plain.shape and not np.allclose(first, plain)
    np.testing.assert_allclose(first, again, rtol=1e-5, atol=1e-5)  # seeded: a rerun caches the same views


def test_train_two_phase_cached_with_four_views_and_a_cosine_schedule(tmp_path, image_writer):
    split = small_split(tmp_path, image_writer)
    model = tr.build_model_b(image_size=32, alpha=0.35, weights=None, verbose=False)
    frozen, finetune, info = tr.train_two_phase_cached(
        model, split, 32, "block_12_add", 1, 3, batch_size=8, views=4, lr_schedule="cosine", verbose=0
    )
    assert info["train_views"] == 4 and len(finetune["loss"]) == 3
    planned = [training.cosine_schedule(tr.FINETUNE_LEARNING_RATE, 3)(epoch) for epoch in range(3)]
    assert finetune["learning_rate"] == pytest.approx(planned, rel=1e-5)
    with pytest.raises(ValueError, match="views must be at least 1"):
        tr.train_two_phase_cached(model, split, 32, "block_12_add", 1, 1, views=0, verbose=0)


def test_train_two_phase_cached_skips_fine_tuning_when_the_budget_is_spent(tmp_path, image_writer):
    split = small_split(tmp_path, image_writer)
    model = tr.build_model_b(image_size=32, alpha=0.35, weights=None, verbose=False)
    frozen, finetune, info = tr.train_two_phase_cached(
        model, split, 32, "block_12_add", 3, 3, batch_size=8, flip=False, time_budget_s=1e-3, verbose=0
    )
    assert len(frozen["loss"]) == 1 and finetune == {}
    assert info["stopped_by_budget"].startswith("phase 1: time budget")
    assert info["train_views"] == 1 and info["finetuned_backbone_layers"] == 0


def test_get_model_b_loads_a_saved_model_or_trains_and_saves(tmp_path, monkeypatch, capsys):
    from agecourse.config import get_settings

    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path / "art"))
    settings = get_settings("ci")
    trained = []

    def fake_train(settings_, split, verbose=0):
        trained.append(split)
        return tr.build_model_b(image_size=32, alpha=0.35, weights=None, verbose=False), {}, {}

    monkeypatch.setattr(tr, "train_model_b", fake_train)
    model = tr.get_model_b(settings, split="a split")
    assert trained == ["a split"] and (settings.artifacts_dir / "model_b.keras").is_file()
    assert "No saved Model B" in capsys.readouterr().out
    loaded = tr.get_model_b(settings, split="unused")
    assert len(trained) == 1 and "Loaded the saved Model B" in capsys.readouterr().out
    assert [w.shape for w in loaded.weights] == [w.shape for w in model.weights]


def test_backbone_table_counts_without_weights():
    table = tr.backbone_table(32, 0.35, names=["mobilenetv2"])
    row = table.iloc[0]
    assert row["backbone"] == "MobileNetV2 (alpha 0.35)" and row["last conv layer"] == "out_relu"
    reference = keras.applications.MobileNetV2(input_shape=(32, 32, 3), include_top=False, alpha=0.35, weights=None)
    assert row["parameters (M)"] == round(reference.count_params() / 1e6, 2)
    assert row["feature map"] == (1, 1, 1280) and row["preprocessing"] == "tf"
    with pytest.raises(ValueError, match="unknown backbone"):
        tr.backbone_table(32, names=["LeNet"])


def test_train_model_b_follows_the_profile_recipe_cached_or_not(tmp_path, image_writer, monkeypatch):
    """Which trainer runs, with which settings: the trainers themselves are tested above, so fakes
    record the calls here instead of training MobileNetV2 twice more."""
    from agecourse.config import get_settings

    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path / "art"))
    split = small_split(tmp_path, image_writer)
    calls = []
    monkeypatch.setattr(tr, "train_two_phase_cached", lambda *a, **k: calls.append(("cached", a, k)) or ({}, {}, {}))
    monkeypatch.setattr(tr, "train_two_phase", lambda *a, **k: calls.append(("images", a, k)) or ({}, {}))
    common = dict(transfer_image_size=32, transfer_epochs_frozen=1, transfer_epochs_finetune=2, batch_size=8)
    cached = get_settings(
        "ci", **common, transfer_cached_views=4, transfer_lr_schedule="cosine", transfer_finetune_learning_rate=5e-4
    )
    model, _, _ = tr.train_model_b(cached, split, verbose=0, weights=None)
    assert "augment" not in [layer.name for layer in model.layers], "random layers below the cut break the cache"
    kind, args, kwargs = calls[-1]
    assert kind == "cached" and args[2:] == (32, "block_12_add", 1, 2)
    assert kwargs["views"] == 4 and kwargs["lr_schedule"] == "cosine" and kwargs["finetune_learning_rate"] == 5e-4
    tr.train_model_b(cached, split, verbose=0, weights=None, finetune_learning_rate=1e-4)
    assert calls[-1][2]["finetune_learning_rate"] == 1e-4
    plain = get_settings("ci", **common)
    model, _, _ = tr.train_model_b(plain, split, verbose=0, weights=None)
    assert "augment" in [layer.name for layer in model.layers] and calls[-1][0] == "images"
    assert calls[-1][1][3:5] == (1, 2) and calls[-1][2]["learning_rate"] == plain.learning_rate
    with pytest.raises(ValueError, match="trains Model B on images"):
        tr.train_cached_for(plain, model, split)


def test_cpu_profile_trains_the_benchmarked_model_b():
    from agecourse.config import get_settings

    cpu = get_settings("cpu")
    assert (cpu.transfer_image_size, cpu.transfer_alpha, cpu.transfer_cached_views) == (160, 0.5, 4)
    assert tr.learning_rates_for(cpu) == (1e-3, 5e-4) and cpu.transfer_lr_schedule == "cosine"
    ci = get_settings("ci")
    assert ci.transfer_cached_views == 0 and tr.learning_rates_for(ci) == (ci.learning_rate, tr.FINETUNE_LEARNING_RATE)
