"""Grad-CAM heat maps: which parts of a face pushed a prediction, with tf-keras-vis.

Introduced in lesson 11 (Grad-CAM), for Model A (lesson 06) and Model B (lesson 10).

Grad-CAM takes the last convolutional feature map of a model, weights each of its channels by the
average gradient of a *score* with respect to that channel, sums the channels and keeps the positive
part. The result, resized to the image, shows where the feature map held evidence that *raised the
score*. What the score is decides what the map means:

* gender (a sigmoid probability of "female"): the score is the probability of the class the model
  chose, ``p`` for "female" and ``1 - p`` for "male", so the map explains the model's own decision;
* age (a regression in years): the score is the predicted age itself, so the map shows regions whose
  features pushed the predicted age *up*; ``direction="lower"`` shows those that pushed it down.

Before explaining, the output activations are replaced by linear ones (tf-keras-vis'
``ReplaceToLinear``, on a copy of the model). For gender that turns ``p`` into its logit: the
gradient keeps its direction (the Grad-CAM map is the same after normalisation) but no longer
vanishes when the sigmoid saturates at ``p`` close to 0 or 1.

Lesson 11 writes Grad-CAM itself with ``tf.GradientTape`` (:func:`make_gradcam_heatmaps` and the
two small functions it calls, in the style of the Keras Grad-CAM example) and compares it with
tf-keras-vis' ``Gradcam`` (:func:`gradcam_heatmaps`) on the same faces.

Score-CAM (tf-keras-vis ``Scorecam``) is not offered: it applies a softmax to each output, which for
our one-unit outputs is always 1, so every channel would get the same weight.
"""

from __future__ import annotations

import keras
import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import tensorflow as tf
from tf_keras_vis.gradcam import Gradcam
from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
from tf_keras_vis.saliency import Saliency
from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
from tf_keras_vis.utils.scores import BinaryScore, InactiveScore

from agecourse.data import GENDERS, make_dataset

METHODS = ("gradcam", "gradcam++")
OUTPUTS = ("age", "gender")
# Layers that come after the last convolutional feature map without being part of it.
_SKIP_KINDS = ("Pooling", "Dropout", "Flatten")


def last_conv_layer_name(model) -> str:
    """Name of the last layer of ``model`` that outputs a spatial feature map (rank 4), skipping
    pooling and dropout layers: ``block4_act2`` in Model A, ``out_relu`` in a MobileNetV2 Model B.

    This is the layer Grad-CAM reads: the deepest one that still knows *where* things are.
    """
    for layer in reversed(model.layers):
        if any(kind in type(layer).__name__ for kind in _SKIP_KINDS) or type(layer).__name__ == "InputLayer":
            continue
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):  # a layer used more than once has no single output
            continue
        if len(shape) == 4:
            return layer.name
    raise ValueError(f"{model.name} has no convolutional feature map to explain")


def make_gradcam_model(model, layer_name: str, output: str):
    """A model from the image to two tensors: the feature map of ``layer_name`` and what enters the
    ``output`` layer (the last dense layer of the age or the gender head)."""
    head = model.get_layer(output)
    return keras.Model(model.inputs, [model.get_layer(layer_name).output, head.input])


def head_logits(model, output: str, head_input):
    """The ``output`` layer without its activation (softplus for age, sigmoid for gender), one value
    per image: what tf-keras-vis' ``ReplaceToLinear`` explains. For gender it is the logit of p(female)."""
    head = model.get_layer(output)
    x = tf.cast(head_input, head.kernel.dtype)
    return (x @ head.kernel + head.bias)[:, 0]


def gradcam_score(logits, output: str, direction: str = "raise"):
    """The score Grad-CAM explains, per image. Gender: the logit of the class the model chose
    (``logit`` where it said female, ``-logit`` where it said male). Age: the age before softplus,
    or its negative for ``direction="lower"``."""
    if output == "gender":
        return tf.where(logits >= 0, 1.0, -1.0) * logits
    if direction not in ("raise", "lower"):
        raise ValueError(f"direction must be 'raise' or 'lower', got {direction!r}")
    return logits if direction == "raise" else -logits


def make_gradcam_heatmaps(model, images, output: str = "gender", layer_name: str | None = None, direction="raise"):
    """Grad-CAM with ``tf.GradientTape``: one heat map per image, at the resolution of the feature
    map (:func:`overlay` stretches it over the image), scaled to 0-1.

    Each channel of the feature map is weighted by the average gradient of the score over the map;
    the weighted channels are summed and the negative part is dropped. The same computation as
    tf-keras-vis' ``Gradcam`` with ``ReplaceToLinear`` (:func:`gradcam_heatmaps`) before resizing.
    """
    images = tf.convert_to_tensor(as_batch(images))
    grad_model = make_gradcam_model(model, layer_name or last_conv_layer_name(model), output)
    with tf.GradientTape() as tape:
        feature_map, head_input = grad_model(images, training=False)
        score = gradcam_score(head_logits(model, output, head_input), output, direction)
    grads = tf.cast(tape.gradient(score, feature_map), tf.float32)
    channel_weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    heatmaps = tf.nn.relu(tf.reduce_sum(channel_weights * tf.cast(feature_map, tf.float32), axis=-1))
    return normalize_maps(heatmaps.numpy())


def gender_score(predicted_female):
    """The gender score for a batch: ``p(female)`` where the model predicted female, ``1 - p``
    (equivalently ``-p`` for gradients) where it predicted male.

    This is tf-keras-vis' ``BinaryScore``: ``(2 * target - 1) * output``, one target per image.
    """
    return BinaryScore([bool(v) for v in np.atleast_1d(predicted_female)])


def age_score(direction: str = "raise"):
    """The age score: the predicted age (``direction="raise"``) or its negative (``"lower"``)."""
    if direction not in ("raise", "lower"):
        raise ValueError(f"direction must be 'raise' or 'lower', got {direction!r}")
    sign = 1.0 if direction == "raise" else -1.0

    def score(output):
        return sign * output[:, 0]

    return score


def make_scores(model, output: str, images: np.ndarray, direction: str = "raise") -> list:
    """One score function per model output, in the model's output order, as tf-keras-vis expects
    for a multi-output model: the explained output gets its score, the other an ``InactiveScore``
    (zero, so it adds nothing to the gradients)."""
    names = list(model.output_names)
    if output not in names:
        raise ValueError(f"output must be one of {names}, got {output!r}")
    if output == "gender":
        predictions = model.predict(images, verbose=0)
        probability = np.asarray(predictions[names.index("gender")]).reshape(-1)
        score = gender_score(probability >= 0.5)
    else:
        score = age_score(direction)
    return [score if name == output else InactiveScore() for name in names]


def as_batch(images) -> np.ndarray:
    """Images as a float32 ``(n, h, w, 3)`` array (a single ``(h, w, 3)`` image becomes ``n=1``)."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected images of shape (n, h, w, 3) or (h, w, 3), got {images.shape}")
    return images


def gradcam_heatmaps(
    model, images, output: str = "gender", method: str = "gradcam", layer: str | None = None, direction: str = "raise"
) -> np.ndarray:
    """Grad-CAM (or Grad-CAM++) heat maps of one output of ``model`` for a batch of images.

    Args:
        model: a Keras model with outputs ``age`` and ``gender`` (Model A or a flat Model B).
        images: float32 images in 0-255, shape ``(n, h, w, 3)``, at the model's input size.
        output: ``"gender"`` (explain the predicted class) or ``"age"`` (explain the predicted age).
        method: ``"gradcam"`` or ``"gradcam++"``.
        layer: the feature-map layer; default :func:`last_conv_layer_name`.
        direction: for age, ``"raise"`` (regions that push the age up) or ``"lower"``.

    Returns:
        ``(n, h, w)`` float32 maps, each scaled to 0-1 (all zeros where nothing raised the score).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    images = as_batch(images)
    scores = make_scores(model, output, images, direction)
    kind = Gradcam if method == "gradcam" else GradcamPlusPlus
    visualizer = kind(model, model_modifier=ReplaceToLinear(), clone=True)
    maps = visualizer(
        scores,
        images,
        penultimate_layer=layer or last_conv_layer_name(model),
        seek_penultimate_conv_layer=False,
        normalize_cam=False,
    )
    return normalize_maps(np.asarray(maps).reshape(images.shape[:3]))


def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """Scale each map to 0-1 by its own minimum and maximum; a flat map becomes all zeros.

    tf-keras-vis' own normalisation adds a fixed epsilon of 1e-7 to the range, which leaves maps
    with tiny gradients (an untrained backbone) far below 1; this one does not.
    """
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float64))
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    scaled = np.divide(maps - low, span, out=np.zeros_like(maps), where=span > 0)
    return scaled.astype(np.float32)


def saliency_maps(
    model, images, output: str = "gender", smooth_samples: int = 20, smooth_noise: float = 0.2, direction: str = "raise"
) -> np.ndarray:
    """SmoothGrad saliency (tf-keras-vis ``Saliency``): how much each *pixel* changes the score,
    averaged over noisy copies of the image. Sharper than Grad-CAM, and noisier. Returns ``(n, h, w)``
    maps scaled to 0-1."""
    images = as_batch(images)
    scores = make_scores(model, output, images, direction)
    # Saliency feeds a list of inputs; a model declared with a list input takes it without a warning.
    model = keras.Model(model.inputs, model.outputs, name=model.name)
    maps = Saliency(model, model_modifier=ReplaceToLinear(), clone=True)(
        scores, images, smooth_samples=smooth_samples, smooth_noise=smooth_noise, normalize_map=False
    )
    return normalize_maps(np.asarray(maps).reshape(images.shape[:3]))


def heatmap_correlation(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Pearson correlation of two sets of heat maps, one value per image (NaN for a flat map).

    Used for a sanity check: maps of a trained model that correlate highly with those of an
    *untrained* copy say more about the architecture than about what the model learned.
    """
    a = np.asarray(first, dtype=np.float64).reshape(len(first), -1)
    b = np.asarray(second, dtype=np.float64).reshape(len(second), -1)
    if a.shape != b.shape:
        raise ValueError(f"heat maps differ in shape: {np.shape(first)} vs {np.shape(second)}")
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norm = np.sqrt((a**2).sum(axis=1) * (b**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, (a * b).sum(axis=1) / norm, np.nan)


def overlay(image, heatmap, alpha: float = 0.45, cmap: str = "jet") -> np.ndarray:
    """Blend a 0-1 heat map (any size; resized to the image) over an image in 0-255: RGB uint8."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected one (h, w, 3) image, got {image.shape}")
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.shape != image.shape[:2]:
        heatmap = tf.image.resize(heatmap[..., None], image.shape[:2]).numpy()[..., 0]
    colours = mpl.colormaps[cmap](np.clip(heatmap, 0.0, 1.0))[..., :3] * 255.0
    blended = (1.0 - alpha) * image + alpha * colours
    return np.clip(blended, 0, 255).round().astype(np.uint8)


def plot_gradcam_grid(
    images,
    heatmaps_by_method: dict[str, np.ndarray],
    titles: list[str] | None = None,
    alpha: float = 0.45,
    size: float = 2.2,
):
    """A grid: one row per image, the image first, then its overlay for each method.

    Args:
        images: ``(n, h, w, 3)`` images in 0-255.
        heatmaps_by_method: column title -> ``(n, h, w)`` maps, e.g. ``{"Grad-CAM": ..., "Grad-CAM++": ...}``.
        titles: one caption per image (true and predicted labels, for instance).
    """
    images = as_batch(images)
    n, columns = len(images), 1 + len(heatmaps_by_method)
    fig, axes = plt.subplots(n, columns, figsize=(size * columns, size * n + 0.4), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(images[i].astype(np.uint8))
        axes[i, 0].set_title(titles[i] if titles else "image", fontsize=8)
        for j, (method, maps) in enumerate(heatmaps_by_method.items(), start=1):
            axes[i, j].imshow(overlay(images[i], maps[i], alpha))
            axes[i, j].set_title(method, fontsize=8)
        for ax in axes[i]:
            ax.axis("off")
    fig.tight_layout()
    return fig


def plot_right_wrong(
    images, heatmaps_by_method: dict[str, np.ndarray], table: pd.DataFrame, alpha: float = 0.45, size: float = 2.0
):
    """Right and wrong predictions side by side: right ones in the left half of the figure, wrong
    ones in the right half, each face followed by its overlay for every method.

    Args:
        images: ``(n, h, w, 3)`` images in 0-255, in the order of ``table``'s rows.
        heatmaps_by_method: column title -> ``(n, h, w)`` maps.
        table: ``n`` rows from :func:`pick_right_and_wrong` (with its ``verdict`` column), for the
            captions and the grouping.
    """
    images = as_batch(images)
    if "verdict" not in table or len(table) != len(images):
        raise ValueError(f"need one row with a 'verdict' per image: {len(table)} rows for {len(images)} images")
    verdicts = table["verdict"].to_numpy()
    groups = {verdict: np.flatnonzero(verdicts == verdict) for verdict in ("right", "wrong")}
    rows = max(1, *(len(index) for index in groups.values()))
    per_face = 1 + len(heatmaps_by_method)
    fig, axes = plt.subplots(rows, 2 * per_face, figsize=(size * 2 * per_face, size * rows + 0.7), squeeze=False)
    for g, (verdict, index) in enumerate(groups.items()):
        for r in range(rows):
            cells = axes[r, g * per_face : (g + 1) * per_face]
            for ax in cells:
                ax.axis("off")
            if r >= len(index):
                continue
            i = index[r]
            cells[0].imshow(images[i].astype(np.uint8))
            cells[0].set_title(caption(table.iloc[i]), fontsize=7)
            for ax, (method, maps) in zip(cells[1:], heatmaps_by_method.items()):
                ax.imshow(overlay(images[i], maps[i], alpha))
                ax.set_title(method, fontsize=8)
        label = f"{verdict} predictions ({len(index)})" if len(index) else f"no {verdict} predictions"
        fig.text((2 * g + 1) / 4, 0.995, label, ha="center", va="top", fontsize=10, fontweight="bold")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / (size * rows + 0.7)))
    return fig


def load_images(table: pd.DataFrame, image_size: int) -> np.ndarray:
    """Decode the images of a table (``path`` column) into one float32 ``(n, size, size, 3)`` array,
    exactly as :func:`agecourse.data.make_dataset` feeds the models."""
    batches = [x.numpy() for x, _ in make_dataset(table, image_size, batch_size=64)]
    images = np.concatenate(batches) if batches else np.zeros((0, image_size, image_size, 3), np.float32)
    if len(images) != len(table):
        raise ValueError(f"decoded {len(images)} of {len(table)} images (some files could not be read)")
    return images


def pick_right_and_wrong(table: pd.DataFrame, task: str = "gender", n: int = 3, seed: int = 42) -> pd.DataFrame:
    """Pick ``n`` right and ``n`` wrong predictions from an :func:`agecourse.evaluate.predict_table`.

    For ``gender``: a seeded sample of correct and of wrong predictions. For ``age``: the ``n``
    smallest and the ``n`` largest absolute errors. Adds a ``verdict`` column (``right``/``wrong``);
    there may be fewer than ``n`` of a kind when the model makes few mistakes.
    """
    if task == "gender":
        correct = table["gender"] == table["gender_pred"]
        right = table[correct].sample(min(n, int(correct.sum())), random_state=seed)
        wrong = table[~correct].sample(min(n, int((~correct).sum())), random_state=seed)
    elif task == "age":
        ordered = table.assign(abs_error=table["age_error"].abs()).sort_values("abs_error")
        right, wrong = ordered.head(n).drop(columns="abs_error"), ordered.tail(n).drop(columns="abs_error")
    else:
        raise ValueError(f"task must be 'gender' or 'age', got {task!r}")
    return pd.concat([right.assign(verdict="right"), wrong.assign(verdict="wrong")])


def caption(row) -> str:
    """A short caption for one row of a predictions table: true and predicted age and gender."""
    verdict = f"{row['verdict']}: " if "verdict" in row else ""
    return (
        f"{verdict}true {GENDERS[int(row['gender'])]} {int(row['age'])}\n"
        f"pred {GENDERS[int(row['gender_pred'])]} (p_f={row['gender_prob']:.2f}) {row['age_pred']:.0f}"
    )


# --- lesson 09: the worst predictions -------------------------------------------------------------


def top_losses(table: pd.DataFrame, task: str = "age", n: int = 8) -> pd.DataFrame:
    """The ``n`` faces of a predictions table with the largest loss for ``task``, worst first, with
    a ``loss`` column: the absolute age error in years, or the gender cross-entropy of the true class
    (large when the model was confidently wrong)."""
    if task == "age":
        loss = table["age_error"].abs()
    elif task == "gender":
        p_female = table["gender_prob"].clip(1e-7, 1 - 1e-7)
        loss = -np.log(np.where(table["gender"] == 1, p_female, 1 - p_female))
    else:
        raise ValueError(f"task must be 'age' or 'gender', got {task!r}")
    return table.assign(loss=loss).nlargest(n, "loss")


def plot_top_losses(images, worst: pd.DataFrame, title: str = "", columns: int = 4, size: float = 2.2):
    """A gallery of the faces :func:`top_losses` picked, each captioned with true and predicted
    labels and its loss (like fastai's ``plot_top_losses``)."""
    import matplotlib.pyplot as plt  # as lesson 09 shows it (one source: tests/test_one_source.py)

    rows = max(1, -(-len(worst) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(size * columns, (size + 0.5) * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, (_, row) in zip(axes.flat, as_batch(images), worst.iterrows()):
        ax.imshow(image.astype(np.uint8))
        ax.set_title(f"{caption(row)}\nloss {row['loss']:.2f}", fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
