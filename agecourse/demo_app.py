"""The demo app of lesson 13 and of the Voila page (``demo/app.ipynb``): an ipywidgets app that boxes
every face of an uploaded photo with its predicted age and gender and shows Grad-CAM heat maps. Which
model it runs is :func:`agecourse.model_choice.for_demo`'s choice.
"""

from __future__ import annotations

import io

import ipywidgets as widgets
import keras
import numpy as np
from PIL import Image

from agecourse.deploy import (
    DeployError,
    FacePrediction,
    draw_faces,
    face_overlays,
    predict_faces,
    read_image,
)


def make_app(
    model: keras.Model,
    gradcam: bool = True,
    detect: bool = True,
    about: str = "",
    example=None,
    age_interval: dict | None = None,
    gender_temperature: float | None = None,
):
    """A small ipywidgets app: upload a photo, see every face boxed with its predicted age and
    gender, and (optionally) each face's Grad-CAM heat map. Errors (no face, not an image, too
    small) are shown in the app instead of a traceback.

    Args:
        model: the model to use.
        gradcam, detect: initial state of the two check boxes.
        about: HTML shown above the controls, e.g. which model this is.
        example: an image (array, path or bytes) behind a "Try the example" button, for visitors
            without a photo at hand.
        age_interval: the model's age-interval calibration (a shipped model's
            ``ChosenModel.age_interval``): each age is then shown with its interval.
        gender_temperature: the model's gender temperature (``ChosenModel.gender_temperature``):
            the percentage shown is then the temperature-scaled probability.

    Returns an ``ipywidgets.VBox``; display it as the last line of a cell. Its ``analyse(content,
    name)`` method runs the same steps on raw file bytes (what an upload delivers), for scripts and
    tests. Parts carry CSS classes (``agecourse-status``, ``agecourse-boxed``,
    ``agecourse-heatmap``) so that a browser test can find them.
    """
    upload = widgets.FileUpload(accept="image/*", multiple=False, description="Photo")
    detect_box = widgets.Checkbox(value=detect, description="detect faces (untick for a cropped face)", indent=False)
    gradcam_box = widgets.Checkbox(value=gradcam, description="Grad-CAM heat maps (gender)", indent=False)
    results = widgets.VBox()
    results.add_class("agecourse-results")
    status = widgets.HTML("Upload a photo with one or more faces (JPEG or PNG).")
    status.add_class("agecourse-status")

    def analyse(content, name: str = "upload") -> list[FacePrediction]:
        status.value = f"Analysing {name} ..."
        try:
            rgb = read_image(content if isinstance(content, np.ndarray) else bytes(content), name=name)
            faces = predict_faces(
                model,
                rgb,
                detect=detect_box.value,
                gradcam=gradcam_box.value,
                name=name,
                age_interval=age_interval,
                gender_temperature=gender_temperature,
            )
        except DeployError as err:
            status.value = f"<span style='color:#b00020'><b>Cannot use this photo:</b> {err}</span>"
            results.children = ()
            return []
        boxed = widgets.Image(
            value=_png_bytes(draw_faces(rgb, faces)), format="png", layout=widgets.Layout(max_width="520px")
        )
        boxed.add_class("agecourse-boxed")
        children = [boxed]
        overlays = face_overlays(faces)
        if overlays:
            tiles = []
            for i, (face, picture) in enumerate(zip([f for f in faces if f.heatmap is not None], overlays), 1):
                heat = widgets.Image(
                    value=_png_bytes(np.kron(picture, np.ones((3, 3, 1), np.uint8))),
                    format="png",
                    width=144,
                    height=144,
                )
                heat.add_class("agecourse-heatmap")
                caption = widgets.HTML(f"face {i}: {face.label()}", layout=widgets.Layout(width="150px"))
                tiles.append(widgets.VBox([heat, caption], layout=widgets.Layout(margin="0 16px 0 0")))
            children.append(widgets.HBox(tiles))
        results.children = tuple(children)
        found = "face" if len(faces) == 1 else "faces"
        status.value = f"{name}: {len(faces)} {found}. " + "; ".join(
            f"face {i}: {f.label()}" for i, f in enumerate(faces, 1)
        )
        return faces

    def on_upload(change) -> None:
        files = uploaded_files(change["new"])
        if files:  # one file at a time (multiple=False); the last one is the newest
            name, content = files[-1]
            analyse(content, name)

    upload.observe(on_upload, names="value")
    controls = [upload, detect_box, gradcam_box]
    if example is not None:
        picture = read_image(example, name="example")
        button = widgets.Button(description="Try the example", tooltip="synthetic faces, not real people")
        button.on_click(lambda _: analyse(picture, "example photo (synthetic faces)"))
        controls.insert(1, button)
    parts = [widgets.HBox(controls), status, results]
    if about:
        parts.insert(0, widgets.HTML(about))
    app = widgets.VBox(parts)
    app.analyse = analyse
    return app


def uploaded_files(value) -> list[tuple[str, bytes]]:
    """``(name, content)`` of each file in a ``FileUpload`` value, in either ipywidgets' shape:

    * ipywidgets 8: a tuple of dicts with ``name``, ``type``, ``size``, ``content`` (a memoryview)
      and ``last_modified``;
    * ipywidgets 7 (Colab's): a dict ``{name: {"metadata": {"name", "type", "size", ...},
      "content": bytes}}``.
    """
    if isinstance(value, dict):  # ipywidgets 7
        return [
            (str(entry.get("metadata", {}).get("name", name)), bytes(entry["content"])) for name, entry in value.items()
        ]
    return [(str(entry["name"]), bytes(entry["content"])) for entry in value or ()]


def _png_bytes(image) -> bytes:
    picture = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
