"""ImageNet backbones (lesson 10): the registry, the preprocessing layer, weight lookup, the size table."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from agecourse import backbones as bb
from agecourse import transfer as tr


@pytest.fixture
def no_local_weights(tmp_path, monkeypatch) -> Path:
    """An empty Keras home and no AGECOURSE_WEIGHTS, so no weight file can be found."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.delenv("AGECOURSE_WEIGHTS", raising=False)
    return tmp_path / "keras-home" / "models"


def images(n: int = 3, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def test_each_backbone_preprocesses_like_its_official_function():
    """The registry's ``mode`` for every backbone gives what that backbone's own ``preprocess_input``
    gives, so a flat Model B sees the inputs its ImageNet weights were trained on."""
    x = images(2, 8)
    for spec in bb.BACKBONES.values():
        ours = keras.ops.convert_to_numpy(bb.BackbonePreprocess(spec.mode)(x))
        np.testing.assert_allclose(ours, spec.preprocess_input(x.copy()), rtol=1e-5, atol=1e-4, err_msg=spec.name)
    assert bb.get_backbone("mobilenetv2") is bb.BACKBONES["MobileNetV2"]
    with pytest.raises(ValueError, match="unknown backbone 'AlexNet'; choose from MobileNetV2"):
        bb.get_backbone("AlexNet")


def test_mobilenet_weight_file_names_prefer_the_image_size_then_224():
    names = bb.get_backbone("MobileNetV2").weight_file_names(alpha=0.35, image_size=96)
    assert names[0] == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"
    assert names[1] == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
    assert len(names) == len(set(names)) == 5
    assert bb.get_backbone("MobileNetV2").weight_file_names(1, 64)[0].endswith("_1.0_224_no_top.h5")
    assert bb.get_backbone("ResNet50").weight_file_names() == ["resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"]


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
    ours = keras.ops.convert_to_numpy(bb.BackbonePreprocess(mode)(x))
    np.testing.assert_allclose(ours, official(x.copy()), rtol=1e-5, atol=1e-4)


def test_preprocess_layer_keeps_its_registered_name_so_saved_models_load():
    """Saved Model B files name the layer ``agecourse>BackbonePreprocess``: the name must not follow the module."""
    assert keras.saving.get_registered_name(bb.BackbonePreprocess) == "agecourse>BackbonePreprocess"
    layer = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(bb.BackbonePreprocess("caffe")))
    assert isinstance(layer, bb.BackbonePreprocess) and layer.mode == "caffe"


def test_preprocess_layer_rejects_unknown_mode():
    with pytest.raises(ValueError, match="unknown preprocessing mode 'bgr'"):
        bb.BackbonePreprocess("bgr")


def test_resolve_weights_finds_a_file_in_the_keras_cache(no_local_weights):
    no_local_weights.mkdir(parents=True)
    fake = no_local_weights / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
    fake.write_bytes(b"not loaded by this test")
    assert bb.resolve_weights("MobileNetV2", 0.35, 96, profile="cpu", verbose=False) == str(fake)
    exact = no_local_weights / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"
    exact.write_bytes(b"fake")
    assert bb.resolve_weights("MobileNetV2", 0.35, 96, profile="cpu", verbose=False) == str(exact)
    assert bb.find_weights("MobileNetV2", 0.5, 96) is None


def test_agecourse_weights_folder_comes_before_the_keras_cache(no_local_weights, tmp_path, monkeypatch):
    name = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    no_local_weights.mkdir(parents=True)
    (no_local_weights / name).write_bytes(b"fake")
    configured = tmp_path / "configured"
    configured.mkdir()
    (configured / name).write_bytes(b"fake")
    monkeypatch.setenv("AGECOURSE_WEIGHTS", str(configured))
    assert bb.find_weights("ResNet50") == configured / name


def test_resolve_weights_without_a_file_warns_in_ci_and_downloads_elsewhere(no_local_weights, capsys):
    with pytest.warns(UserWarning, match="RANDOM weights"):
        assert bb.resolve_weights("MobileNetV2", 0.35, 96, profile="ci") is None
    assert bb.resolve_weights("MobileNetV2", 0.35, 96, profile="cpu") == "imagenet"
    assert "Keras will download" in capsys.readouterr().out


def test_backbone_table_counts_without_weights():
    table = bb.backbone_table(32, 0.35, names=["mobilenetv2"])
    row = table.iloc[0]
    assert row["backbone"] == "MobileNetV2 (alpha 0.35)" and row["last conv layer"] == "out_relu"
    reference = keras.applications.MobileNetV2(input_shape=(32, 32, 3), include_top=False, alpha=0.35, weights=None)
    assert row["parameters (M)"] == round(reference.count_params() / 1e6, 2)
    assert row["feature map"] == (1, 1, 1280) and row["preprocessing"] == "tf"
    with pytest.raises(ValueError, match="unknown backbone"):
        bb.backbone_table(32, names=["LeNet"])


def test_failed_download_says_where_to_put_the_file(no_local_weights, monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(RuntimeError, match="0.35_96_no_top.h5 into .*keras-home/models"):
        tr.build_model_b(image_size=96, alpha=0.35, weights="imagenet", profile="cpu", verbose=False)
