"""Grad-CAM helpers (lesson 11) on tiny Model A and flat Model B built here, without real weights."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from agecourse import explain as ex


@pytest.fixture(scope="module")
def model_a() -> keras.Model:
    from agecourse.augment import make_augmentation
    from agecourse.models import build_model_a

    keras.utils.set_random_seed(1)
    return build_model_a(48, filters=(8, 16), augment=make_augmentation())


@pytest.fixture(scope="module")
def model_b() -> keras.Model:
    from agecourse.transfer import build_model_b

    keras.utils.set_random_seed(1)
    return build_model_b("MobileNetV2", image_size=64, alpha=0.35, weights=None, verbose=False)


def two_faces(size: int) -> np.ndarray:
    """Two different face-like images: a bright oval on a dark background, left vs right of centre."""
    yy, xx = np.mgrid[:size, :size] / size
    faces = []
    for cx in (0.35, 0.65):
        oval = ((xx - cx) / 0.22) ** 2 + ((yy - 0.5) / 0.32) ** 2 < 1
        eyes = np.zeros_like(oval)
        for dx in (-0.08, 0.08):
            eyes |= (xx - cx - dx) ** 2 + (yy - 0.42) ** 2 < 0.002
        image = np.full((size, size, 3), 30.0)
        image[oval] = (220, 180, 150)
        image[eyes] = (20, 20, 20)
        faces.append(image)
    return np.stack(faces).astype("float32")


def test_last_conv_layer_name(model_a, model_b):
    assert ex.last_conv_layer_name(model_a) == "block2_act2"
    assert ex.last_conv_layer_name(model_b) == "out_relu"
    dense_only = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="no convolutional feature map"):
        ex.last_conv_layer_name(dense_only)


@pytest.mark.parametrize("method", ex.METHODS)
@pytest.mark.parametrize("output", ex.OUTPUTS)
@pytest.mark.parametrize("which", ["model_a", "model_b"])
def test_heatmaps_shape_range_and_per_face(which, output, method, request):
    model = request.getfixturevalue(which)
    size = model.input_shape[1]
    faces = two_faces(size)
    maps = ex.gradcam_heatmaps(model, faces, output=output, method=method)
    assert maps.shape == (2, size, size) and maps.dtype == np.float32
    assert np.isfinite(maps).all()
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    for heat in maps:  # each map is scaled to 0-1 on its own, or is all zeros when nothing raised the score
        assert heat.max() == pytest.approx(1.0) or not heat.any()
    assert maps.any(), "at least one face has a non-empty map"
    assert not np.allclose(maps[0], maps[1]), "two different faces give different maps"


def test_single_image_and_lower_direction(model_a):
    face = two_faces(48)[0]
    raise_map = ex.gradcam_heatmaps(model_a, face, output="age")
    lower_map = ex.gradcam_heatmaps(model_a, face, output="age", direction="lower")
    assert raise_map.shape == lower_map.shape == (1, 48, 48)
    assert not np.allclose(raise_map, lower_map)


def test_bad_arguments_are_named(model_a):
    faces = two_faces(48)
    with pytest.raises(ValueError, match="method must be one of"):
        ex.gradcam_heatmaps(model_a, faces, method="scorecam")
    with pytest.raises(ValueError, match="output must be one of"):
        ex.gradcam_heatmaps(model_a, faces, output="race")
    with pytest.raises(ValueError, match=r"\(n, h, w, 3\)"):
        ex.gradcam_heatmaps(model_a, faces[..., 0])


def test_gender_score_explains_the_predicted_class():
    score = ex.gender_score([True, False])
    values = score(tf.constant([[0.8], [0.3]]))
    np.testing.assert_allclose(values.numpy(), [0.8, -0.3])  # -p has the gradient of 1 - p


def test_age_score_direction():
    output = tf.constant([[20.0], [50.0]])
    np.testing.assert_allclose(ex.age_score("raise")(output).numpy(), [20.0, 50.0])
    np.testing.assert_allclose(ex.age_score("lower")(output).numpy(), [-20.0, -50.0])
    with pytest.raises(ValueError, match="direction"):
        ex.age_score("older")


def test_make_scores_one_per_output_in_model_order(model_a):
    from tf_keras_vis.utils.scores import BinaryScore, InactiveScore

    age_first = ex.make_scores(model_a, "gender", two_faces(48))
    assert list(model_a.output_names) == ["age", "gender"]
    assert isinstance(age_first[0], InactiveScore) and isinstance(age_first[1], BinaryScore)
    assert not isinstance(ex.make_scores(model_a, "age", two_faces(48))[0], InactiveScore)


def test_normalize_maps_scales_tiny_maps_and_zeroes_flat_ones():
    maps = np.stack([np.linspace(0, 1e-9, 16).reshape(4, 4), np.full((4, 4), 3.0)])
    scaled = ex.normalize_maps(maps)
    assert scaled[0].max() == pytest.approx(1.0) and scaled[0].min() == 0.0
    assert not scaled[1].any()


def test_saliency_maps(model_a):
    maps = ex.saliency_maps(model_a, two_faces(48), output="gender", smooth_samples=2)
    assert maps.shape == (2, 48, 48) and np.isfinite(maps).all() and maps.max() == pytest.approx(1.0)


def test_heatmap_correlation():
    maps = np.random.default_rng(0).random((3, 8, 8))
    np.testing.assert_allclose(ex.heatmap_correlation(maps, maps), 1.0)
    np.testing.assert_allclose(ex.heatmap_correlation(maps, 1 - maps), -1.0)
    assert np.isnan(ex.heatmap_correlation(np.zeros((1, 8, 8)), maps[:1]))[0]
    with pytest.raises(ValueError, match="differ in shape"):
        ex.heatmap_correlation(maps, maps[:, :4])


def test_overlay_blends_and_resizes():
    image = np.full((32, 32, 3), 100.0, dtype="float32")
    heat = np.zeros((4, 4))
    heat[0, 0] = 1.0
    out = ex.overlay(image, heat, alpha=0.5)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(ex.overlay(image, heat, alpha=0.0), image.astype(np.uint8))
    assert not np.array_equal(out[0, 0], out[-1, -1])  # hot corner vs cold corner
    with pytest.raises(ValueError, match="one \\(h, w, 3\\) image"):
        ex.overlay(image[None], heat)


def test_plot_gradcam_grid():
    import matplotlib.pyplot as plt

    faces = two_faces(32)
    maps = np.random.default_rng(0).random((2, 32, 32))
    fig = ex.plot_gradcam_grid(faces, {"Grad-CAM": maps, "Grad-CAM++": maps}, titles=["a", "b"])
    assert len(fig.axes) == 6 and fig.axes[0].get_title() == "a" and fig.axes[1].get_title() == "Grad-CAM"
    plt.close(fig)


def fake_predictions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "path": [f"f{i}.jpg" for i in range(6)],
            "age": [10, 20, 30, 40, 50, 60],
            "gender": [0, 1, 0, 1, 0, 1],
            "gender_pred": [0, 1, 1, 1, 0, 0],
            "gender_prob": [0.1, 0.9, 0.7, 0.8, 0.2, 0.4],
            "age_pred": [11.0, 35.0, 30.5, 40.0, 20.0, 62.0],
        }
    ).assign(age_error=lambda t: t["age_pred"] - t["age"])


def test_pick_right_and_wrong():
    table = fake_predictions()
    gender = ex.pick_right_and_wrong(table, "gender", n=3)
    assert (gender["verdict"] == "right").sum() == 3 and (gender["verdict"] == "wrong").sum() == 2
    assert (
        gender.loc[gender["verdict"] == "wrong", "gender"] != gender.loc[gender["verdict"] == "wrong", "gender_pred"]
    ).all()
    age = ex.pick_right_and_wrong(table, "age", n=2)
    assert list(age["path"]) == ["f3.jpg", "f2.jpg", "f1.jpg", "f4.jpg"]
    assert "wrong: true female 20" in ex.caption(age.iloc[2])
    with pytest.raises(ValueError, match="task"):
        ex.pick_right_and_wrong(table, "race")


def test_load_images(tmp_path, image_writer):
    paths = [image_writer(tmp_path / f"{age}_0_0_2017.jpg", size=(50, 40), seed=age) for age in (5, 6, 7)]
    table = pd.DataFrame({"path": [str(p) for p in paths], "age": [5, 6, 7], "gender": [0, 0, 0]})
    loaded = ex.load_images(table, 24)
    assert loaded.shape == (3, 24, 24, 3) and loaded.dtype == np.float32 and loaded.max() <= 255


def test_plot_right_wrong_puts_wrong_predictions_on_the_right():
    import matplotlib.pyplot as plt

    picks = ex.pick_right_and_wrong(fake_predictions(), "gender", n=3)  # 3 right, 2 wrong
    faces = np.repeat(two_faces(32)[:1], len(picks), axis=0)
    maps = np.random.default_rng(0).random((len(picks), 8, 8))
    fig = ex.plot_right_wrong(faces, {"Grad-CAM": maps, "Grad-CAM++": maps}, picks)
    assert len(fig.axes) == 3 * 6  # 3 rows, (image + 2 methods) x 2 groups
    titled = [ax.get_title() for ax in fig.axes]
    assert titled[0].startswith("right:") and titled[3].startswith("wrong:")
    assert titled[2 * 6 + 3] == ""  # only two wrong predictions: the last row's right half is empty
    assert {t.get_text() for t in fig.texts} == {"right predictions (3)", "wrong predictions (2)"}
    plt.close(fig)
    with pytest.raises(ValueError, match="verdict"):
        ex.plot_right_wrong(faces, {"Grad-CAM": maps}, fake_predictions().head(len(picks)))


# --- lesson 11: Grad-CAM written with tf.GradientTape ------------------------------------------


@pytest.mark.parametrize("which", ["model_a", "model_b"])
@pytest.mark.parametrize(("output", "direction"), [("gender", "raise"), ("age", "raise"), ("age", "lower")])
def test_tape_gradcam_matches_tf_keras_vis(which, output, direction, request):
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear

    model = request.getfixturevalue(which)
    faces = two_faces(model.input_shape[1])
    ours = ex.make_gradcam_heatmaps(model, faces, output, direction=direction)
    layer = ex.last_conv_layer_name(model)
    assert ours.shape == (2, *model.get_layer(layer).output.shape[1:3]), "maps at the feature map's resolution"
    theirs = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)(
        ex.make_scores(model, output, faces, direction),
        faces,
        penultimate_layer=layer,
        seek_penultimate_conv_layer=False,
        expand_cam=False,
        normalize_cam=False,
    )
    np.testing.assert_allclose(ours, ex.normalize_maps(theirs), atol=1e-4)


def test_head_logits_are_the_output_before_its_activation(model_a):
    faces = two_faces(48)
    grad_model = ex.make_gradcam_model(model_a, ex.last_conv_layer_name(model_a), "gender")
    _, head_input = grad_model(faces, training=False)
    logits = ex.head_logits(model_a, "gender", head_input)
    _, p_female = model_a(faces, training=False)
    np.testing.assert_allclose(tf.sigmoid(logits).numpy(), p_female.numpy()[:, 0], atol=1e-6)


def test_gradcam_score_follows_the_predicted_class_and_direction():
    logits = tf.constant([2.0, -3.0, 0.0])
    np.testing.assert_allclose(ex.gradcam_score(logits, "gender").numpy(), [2.0, 3.0, 0.0])
    np.testing.assert_allclose(ex.gradcam_score(logits, "age", "lower").numpy(), [-2.0, 3.0, 0.0])
    with pytest.raises(ValueError, match="direction"):
        ex.gradcam_score(logits, "age", "sideways")


# --- lesson 09: the worst predictions -----------------------------------------------------------


def test_top_losses_rank_age_errors_and_confident_gender_mistakes():
    table = fake_predictions()
    age = ex.top_losses(table, "age", n=2)
    assert list(age["path"]) == ["f4.jpg", "f1.jpg"] and age["loss"].tolist() == [30.0, 15.0]
    gender = ex.top_losses(table, "gender", n=3)
    # f2 (male, p_female 0.7) and f5 (female, p_female 0.4) are wrong; f2 is the more confident mistake.
    assert list(gender["path"][:2]) == ["f2.jpg", "f5.jpg"]
    assert gender["loss"].iloc[0] == pytest.approx(-np.log(0.3))
    with pytest.raises(ValueError, match="task"):
        ex.top_losses(table, "race")


def test_plot_top_losses_captions_each_face():
    worst = ex.top_losses(fake_predictions(), "age", n=3)
    fig = ex.plot_top_losses(np.repeat(two_faces(32)[:1], 3, axis=0), worst, "worst", columns=2)
    assert len(fig.axes) == 4  # 2 x 2 grid, one left empty
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].endswith("loss 30.00") and titles[3] == ""
