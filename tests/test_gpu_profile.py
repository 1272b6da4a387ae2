"""The ``gpu`` profile's code path, run on a CPU: no GPU is ever available in CI, but the profile's
recipes and its mixed-precision policy can be. Model A and Model B are built from the ``gpu``
settings (their architecture: filters, backbone, alpha, dropout), shrunk only in input size and data,
trained for a step with ``mixed_float16`` forced on, and saved and reloaded."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from agecourse import artifacts, recipes
from agecourse.config import get_settings
from agecourse.training import enable_mixed_precision


@pytest.fixture
def mixed_precision():
    """``mixed_float16`` for the test, float32 again afterwards (the policy is global)."""
    assert enable_mixed_precision(True) == "mixed_float16"
    yield
    enable_mixed_precision(False)


@pytest.fixture
def gpu_settings(tmp_path, monkeypatch):
    """The gpu profile's settings with small inputs, one epoch per phase and the tiny split's batch."""
    monkeypatch.setenv("AGECOURSE_ARTIFACTS", str(tmp_path / "artifacts"))
    settings = get_settings("gpu", data_dir=tmp_path)
    assert settings.mixed_precision, "the gpu profile trains in mixed precision"
    return settings.replace(
        image_size=32,
        transfer_image_size=32,
        epochs=1,
        transfer_epochs_frozen=1,
        transfer_epochs_finetune=1,
        batch_size=8,
    )


def assert_float32_and_finite(model, size: int) -> dict:
    faces = np.random.default_rng(0).uniform(0, 255, (3, size, size, 3)).astype("float32")
    out = model.predict(faces, verbose=0)
    out = out if isinstance(out, dict) else dict(zip(model.output_names, out))
    for name in ("age", "gender"):
        assert out[name].dtype == np.float32, f"{name} head is {out[name].dtype}: mixed precision leaked out"
        assert np.isfinite(out[name]).all()
    return out


@pytest.mark.parametrize("which", ["model-a", "model-b"])
def test_gpu_recipe_trains_in_mixed_precision_and_round_trips(which, gpu_settings, tiny_split, mixed_precision):
    if which == "model-a":
        model, history = recipes.train_model_a(gpu_settings, tiny_split, verbose=0)
        size = gpu_settings.image_size
        assert [layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][:1] == [
            gpu_settings.model_filters[0]
        ]
    else:
        model, history = recipes.train_model_b(gpu_settings, tiny_split, verbose=0, weights=None)
        size = gpu_settings.transfer_image_size
        assert model.name == f"model_b_{gpu_settings.transfer_backbone.lower()}"
    conv = next(layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Conv2D))
    assert conv.compute_dtype == "float16" and conv.variable_dtype == "float32"
    assert all(np.isfinite(history["loss"])), history["loss"]
    before = assert_float32_and_finite(model, size)
    path = artifacts.save_model(gpu_settings, which, model, history)
    reloaded, reloaded_history = artifacts.load_model(gpu_settings, which)
    after = assert_float32_and_finite(reloaded, size)
    for name in ("age", "gender"):
        np.testing.assert_allclose(after[name], before[name], rtol=1e-3, atol=1e-3)
    assert reloaded_history["loss"] == history["loss"] and path.is_file()
