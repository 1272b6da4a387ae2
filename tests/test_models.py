"""Model A, compiling, training helpers and augmentation."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from agecourse import augment, models, training
from agecourse.loss_demos import plot_age_losses


def test_model_a_shapes_and_heads():
    model = models.build_model_a(48, filters=(8, 16), dense_units=16)
    assert [o.name.split("/")[0] for o in model.outputs] == ["age", "gender"] or set(model.output_names) == {
        "age",
        "gender",
    }
    x = np.random.default_rng(0).uniform(0, 255, (4, 48, 48, 3)).astype("float32")
    age, gender = model.predict(x, verbose=0)
    assert age.shape == (4, 1) and gender.shape == (4, 1)
    assert (age >= 0).all(), "the age head must not go negative"
    assert ((gender > 0) & (gender < 1)).all()


def test_depth_and_feature_maps_follow_filters():
    model = models.build_model_a(64, filters=(8, 16, 32))
    pools = [shape for name, shape in models.feature_map_sizes(model) if name.endswith("_pool")]
    assert [s[1] for s in pools] == [32, 16, 8]
    assert [s[-1] for s in pools] == [8, 16, 32]


def test_options_change_the_graph():
    plain = models.build_model_a(32, filters=(8,), batch_norm=False, dropout=0.0, l2=0.0)
    rich = models.build_model_a(32, filters=(8,), batch_norm=True, l2=1e-3)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in plain.layers)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in rich.layers)
    assert rich.losses, "L2 adds regularisation losses"


def test_loss_choices():
    assert models.make_age_loss("mae") == "mean_absolute_error"
    assert isinstance(models.make_age_loss("huber"), keras.losses.Huber)
    with pytest.raises(ValueError, match="unknown age loss"):
        models.make_age_loss("l3")
    assert models.default_loss_weights("mse")["gender"] > models.default_loss_weights("mae")["gender"]


def test_compile_and_fit_reduces_loss_on_a_tiny_batch():
    training.set_seed(0)
    model = models.compile_model(models.build_model_a(24, filters=(8, 16), dense_units=16), learning_rate=1e-2)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (32, 24, 24, 3)).astype("float32")
    y = {"age": rng.uniform(1, 80, (32, 1)).astype("float32"), "gender": rng.integers(0, 2, (32, 1)).astype("float32")}
    history = model.fit(x, y, epochs=8, batch_size=32, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    assert {"age_mae", "gender_accuracy"} <= set(history)


def test_callbacks_and_history_plot(tmp_path):
    callbacks = training.make_callbacks(checkpoint=tmp_path / "m.keras", log_csv=tmp_path / "log.csv")
    kinds = {type(c).__name__ for c in callbacks}
    assert {"EarlyStopping", "ReduceLROnPlateau", "ModelCheckpoint", "CSVLogger"} <= kinds
    history = {
        "loss": [3.0, 2.0],
        "val_loss": [3.5, 2.5],
        "age_mae": [9, 8],
        "val_age_mae": [10, 9],
        "gender_accuracy": [0.5, 0.6],
        "val_gender_accuracy": [0.5, 0.55],
    }
    fig = training.plot_history(history)
    assert len(fig.axes) == 3
    assert training.save_history(history, tmp_path / "h.json").exists()


def test_mixed_precision_policy_switch():
    try:
        assert training.enable_mixed_precision(True) == "mixed_float16"
        model = models.build_model_a(16, filters=(4,), dense_units=4)
        assert model.get_layer("age").dtype_policy.compute_dtype == "float32"
    finally:
        assert training.enable_mixed_precision(False) == "float32"


def test_augmentation_only_in_training():
    layer = augment.make_augmentation(seed=1)
    x = np.full((2, 32, 32, 3), 128.0, dtype="float32")
    x[:, :, :16] = 10.0
    assert np.allclose(layer(x, training=False), x)
    assert not np.allclose(layer(x, training=True), x)


@pytest.mark.parametrize("size", [48, 64, 96, 128])
def test_alexnet_like_stays_near_half_a_million_parameters(size):
    model = models.build_alexnet_like(size)
    assert 350_000 < model.count_params() < 750_000
    x = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype("float32")
    age, gender = model.predict(x, verbose=0)
    assert age.shape == gender.shape == (2, 1)
    assert (age >= 0).all() and ((gender > 0) & (gender < 1)).all()


def test_alexnet_like_needs_five_filters_and_flatten_grows_with_the_map():
    with pytest.raises(ValueError, match="5 filter counts"):
        models.build_alexnet_like(64, filters=(8, 16))
    small = models.build_alexnet_like(64, first_stride=2)
    large = models.build_alexnet_like(128, first_stride=2)  # same stride, 4x the final map area
    assert large.count_params() > small.count_params()
    assert any(
        isinstance(layer, keras.layers.BatchNormalization)
        for layer in models.build_alexnet_like(64, batch_norm=True).layers
    )


def test_describe_and_compare_configurations():
    row = models.describe_model(models.build_model_a(32, filters=(8, 16)))
    assert row["conv layers"] == 4 and row["last feature map"] == "8x8x16"
    assert row["trainable"] < row["parameters"], "batch norm keeps moving statistics as non-trainable weights"
    table = models.compare_configurations(
        {"narrow": {"filters": (8, 16)}, "wide": {"filters": (16, 32)}, "alex": models.build_alexnet_like}, 32
    )
    assert list(table.index) == ["narrow", "wide", "alex"]
    assert table.loc["wide", "parameters"] > table.loc["narrow", "parameters"]
    assert table.loc["alex", "conv layers"] == 5


def test_activation_and_loss_plots_draw(tmp_path):
    for fig in (models.plot_output_activations(), plot_age_losses()):
        assert len(fig.axes) == 2 and all(ax.lines for ax in fig.axes)
        fig.savefig(tmp_path / "plot.png")
        assert (tmp_path / "plot.png").stat().st_size > 1000


def test_batch_norm_momentum_is_configurable():
    def momenta(model):
        return {layer.momentum for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)}

    assert momenta(models.build_model_a(16, filters=(4, 8))) == {models.BN_MOMENTUM}
    assert momenta(models.build_model_a(16, filters=(4,), bn_momentum=0.99)) == {0.99}
