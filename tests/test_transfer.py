"""Model B (lesson 10): the flat backbone model, saving and loading it, freezing, cutting it in two.

Tiny models (32 px, alpha 0.35, random weights) keep these tests fast; only ``test_real_weights``
reads the shared ImageNet file, and it skips where that file is absent.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from agecourse import backbones as bb
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


def images(n: int = 3, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def test_model_is_flat_with_every_backbone_layer(model_b):
    assert not [layer.name for layer in model_b.layers if isinstance(layer, keras.Model)]
    reference = keras.applications.MobileNetV2(input_shape=(32, 32, 3), include_top=False, alpha=0.35, weights=None)
    backbone_names = {layer.name for layer in reference.layers[1:]}  # all but its Input
    assert backbone_names <= {layer.name for layer in model_b.layers}
    assert {layer.name for layer in tr.backbone_layers(model_b)} == backbone_names
    assert model_b.get_layer(bb.BACKBONES["MobileNetV2"].last_conv).output.shape[1:3] == (1, 1)


def test_outputs_are_named_age_and_gender(model_b):
    assert list(model_b.output_names) == ["age", "gender"]
    age, gender = model_b.predict(images(), verbose=0)
    assert age.shape == gender.shape == (3, 1)
    assert (age >= 0).all() and ((gender >= 0) & (gender <= 1)).all()


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


def test_backbone_layers_rejects_a_model_without_a_backbone():
    from agecourse.models import build_model_a

    with pytest.raises(ValueError, match="not a Model B"):
        tr.backbone_layers(build_model_a(32, filters=(8,)))


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
