"""Lesson 07's demonstrations (agecourse.loss_demos): loss curves, outliers, loss and gradient scales."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from agecourse import loss_demos, models


def _tiny_split(tmp_path, image_writer, n=30):
    import pandas as pd

    from agecourse.data import Split

    rows = []
    for i in range(n):
        age, gender = 5 + 3 * i, i % 2
        path = image_writer(tmp_path / f"{age}_{gender}_0_2017010100000{i:04d}.jpg", size=(32, 32), seed=i)
        rows.append({"path": str(path), "age": age, "gender": gender, "race": 0})
    images = pd.DataFrame(rows)
    return Split(
        images.iloc[:20].reset_index(drop=True),
        images.iloc[20:25].reset_index(drop=True),
        images.iloc[25:].reset_index(drop=True),
    )


def test_age_loss_curves_match_known_values():
    curves = loss_demos.age_loss_curves([-10.0, 0.0, 2.0], delta=5.0)
    assert curves["MSE"].tolist() == pytest.approx([100.0, 0.0, 4.0])
    assert curves["MAE"].tolist() == pytest.approx([10.0, 0.0, 2.0])
    # Huber: 0.5 e^2 inside delta, delta (|e| - delta / 2) outside.
    assert curves["Huber (delta=5)"].tolist() == pytest.approx([37.5, 0.0, 2.0])


def test_outlier_pulls_hardest_on_mse():
    table = loss_demos.outlier_influence([1.0, -2.0, 1.0, -1.0, 60.0], delta=5.0)
    share = table["share of gradient from the outlier"]
    assert share["MSE"] > share["Huber (delta=5)"] > share["MAE"]
    assert share["MAE"] == pytest.approx(1 / 5)  # every MAE gradient has size 1/n
    assert table.loc["MSE", "batch loss"] == pytest.approx((1 + 4 + 1 + 1 + 3600) / 5)


def test_initial_loss_magnitudes_show_the_scale_gap():
    model = models.build_model_a(24, filters=(4,), dense_units=4, age_init=30.0)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (16, 24, 24, 3)).astype("float32")
    labels = {"age": rng.uniform(1, 90, 16).astype("float32"), "gender": (np.arange(16) % 2).astype("float32")}
    table = loss_demos.initial_loss_magnitudes(model, x, labels)
    bce = table.loc[("gender", "binary cross-entropy"), "value"]
    assert 0.3 < bce < 1.5, "an untrained sigmoid head starts near ln 2"
    assert table.loc[("age", "MSE"), "times the gender loss"] > 25
    assert table.loc[("age", "MSE"), "value"] > table.loc[("age", "MAE"), "value"]


def test_head_gradient_scales_measure_each_heads_pull_on_the_trunk():
    import tensorflow as tf

    keras.utils.set_random_seed(0)  # a fixed initialisation: the test compares float32 gradients
    model = models.build_model_a(24, filters=(4,), dense_units=4, age_init=30.0)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (16, 24, 24, 3)).astype("float32")
    labels = {"age": rng.uniform(1, 90, 16).astype("float32"), "gender": (np.arange(16) % 2).astype("float32")}
    table = loss_demos.head_gradient_scales(model, x, labels, "mae")
    assert list(table.index) == ["age", "gender"]
    # Independent check of the age row: the gradient of the batch-mean MAE, per image, by hand.
    split = tf.keras.Model(model.inputs, [model.get_layer("gap").output, model.outputs[0]])
    with tf.GradientTape() as tape:
        features, age = split(x, training=False)
        loss = tf.reduce_mean(tf.abs(age[:, 0] - labels["age"]))
    grad = tape.gradient(loss, features).numpy() * len(x)
    assert table.loc["age", "loss"] == pytest.approx(float(loss), rel=1e-5)
    assert table.loc["age", "gradient norm"] == pytest.approx(np.linalg.norm(grad, axis=1).mean(), rel=1e-3)
    ratio = table.loc["age", "gradient norm"] / table.loc["gender", "gradient norm"]
    assert table.loc["gender", "balancing gender weight"] == pytest.approx(ratio)
    mse = loss_demos.head_gradient_scales(model, x, labels, "mse")
    assert mse.loc["gender", "balancing gender weight"] > table.loc["gender", "balancing gender weight"]


def test_compare_age_losses_trains_one_model_per_loss(tmp_path, image_writer):
    from agecourse.config import get_settings

    settings = get_settings("ci", image_size=16, batch_size=8, model_filters=(4,))
    split = _tiny_split(tmp_path, image_writer)
    table = loss_demos.compare_age_losses(settings, split, losses=("mse", "huber"), epochs=1, max_train=12)
    assert list(table.index) == ["mse", "huber"]
    assert table["train images"].tolist() == [12, 12]
    assert table.loc["mse", "loss weights (age:gender)"] == "1:100"
    assert (table["val age MAE"] > 0).all() and table["val gender accuracy"].between(0, 1).all()
