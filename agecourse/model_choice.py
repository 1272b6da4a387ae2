"""Which model a caller uses: the one home of that decision for lessons 09-13, the CLI and the demo.

A model comes from one of three places, named the same way everywhere (``model-a``, ``model-b``, or
a path):

* **this runtime** -- the Model A or B that lesson 08 or 10 trained and saved
  (:mod:`agecourse.artifacts`), when it fits the current settings;
* **shipped** -- the model the package ships, trained on real UTKFace faces
  (:mod:`agecourse.course_models`);
* **a file** -- a ``.keras`` file of your own.

Every function returns a :class:`ChosenModel`: the model, the settings that fit it (a shipped
Model A takes 64 px images whatever the profile's size) and one line saying where it came from.
Each file is loaded once. This is the only module that imports both :mod:`agecourse.artifacts` and
:mod:`agecourse.course_models`.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from html import escape
from pathlib import Path

from agecourse import artifacts, course_models
from agecourse.config import Settings, get_settings

NAMES = ("model-a", "model-b")
TITLES = {"model-a": "Model A", "model-b": "Model B"}


@dataclass(frozen=True)
class ChosenModel:
    """A model, the settings that fit it, and where it came from (one line, for printing); unpacks
    as ``model, settings, source``. ``age_interval`` is a shipped model's calibration of its age
    intervals (:func:`agecourse.course_models.age_interval`) and ``gender_temperature`` that of its
    gender probability (:func:`agecourse.course_models.gender_temperature`); ``None`` for any other
    model."""

    model: object
    settings: Settings
    source: str
    age_interval: dict | None = None
    gender_temperature: float | None = None

    def __iter__(self):
        return iter((self.model, self.settings, self.source))

    def _replace(self, **changes) -> ChosenModel:
        """A copy with some fields changed (as a named tuple's ``_replace``)."""
        return dataclasses.replace(self, **changes)


def _fit_settings(settings: Settings, name: str, model) -> Settings:
    """``settings`` with the input size of ``model`` (``image_size`` for Model A,
    ``transfer_image_size`` for Model B), so pipelines built from them fit the model."""
    size = int(model.input_shape[1])
    return settings.replace(image_size=size) if name == "model-a" else settings.replace(transfer_image_size=size)


def _check_name(name: str) -> None:
    if name not in NAMES:
        raise course_models.CourseModelError(f"no course model called {name!r} (use {' or '.join(NAMES)})")


def shipped(name: str, settings: Settings | None = None) -> ChosenModel:
    """The shipped model ``name`` (SHA-256 checked), with ``settings`` (default: its recipe's
    profile) fitted to its input size."""
    _check_name(name)
    model = course_models.load(name)
    base = settings if settings is not None else course_models.architecture_settings(name)
    source = f"the shipped {TITLES[name]} ({name}): {course_models.summary(name)}"
    return ChosenModel(
        model,
        _fit_settings(base, name, model),
        source,
        course_models.age_interval(name),
        course_models.gender_temperature(name),
    )


def for_lesson(
    settings: Settings, name: str = "model-a", split=None, retrain: bool | None = None, verbose: bool = True
) -> ChosenModel:
    """The model a lesson uses (lessons 09-13), and where it came from.

    * ``ci`` profile: the model this runtime trains (seconds, on synthetic faces) or saved, unless
      ``settings.use_shipped`` (``AGECOURSE_USE_SHIPPED=1``) asks for what a fresh Colab runtime gets;
    * otherwise the model this runtime saved (lesson 08 / 10) when it fits ``settings``;
    * else, when retraining is asked for (``retrain=True``, default ``settings.retrain``), one trained
      now with the profile's recipe;
    * else the **shipped** model. When ``split`` is given and some of its test faces were among the
      shipped model's training or validation faces (a cached full UTKFace contains them), the count
      is printed: scores on those faces are optimistic. On synthetic faces it says that a real-face
      model's scores there say little.
    """
    _check_name(name)
    retrain = settings.retrain if retrain is None else retrain
    is_shipped = False
    if (settings.profile == "ci" and not settings.use_shipped) or retrain:
        why = "the 'ci' profile trains its own small model" if settings.profile == "ci" else "retraining was asked for"
        model = artifacts.get_model(settings, name, split=split, retrain=retrain, verbose=verbose)
        chosen = ChosenModel(
            model, settings, f"{TITLES[name]} trained in this runtime ({why}) on {settings.data_label}"
        )
    else:
        model, reason = artifacts.load_saved(settings, name)
        if model is not None:
            chosen = ChosenModel(model, settings, f"the {TITLES[name]} this runtime trained and saved ({reason})")
        else:
            chosen, is_shipped = shipped(name, settings), True
            chosen = chosen._replace(source=f"{reason}, so {chosen.source}")
    if verbose:
        print(f"Model: {chosen.source}")
        if is_shipped:
            _warn_about_shipped(settings, split)
    return chosen


def _warn_about_shipped(settings: Settings, split) -> None:
    """What a shipped (real-face) model's scores on this runtime's data mean."""
    if settings.uses_synthetic:
        print("  It was trained on real faces: on synthetic faces its scores say little (`agecourse data fetch`).")
    elif split is not None:
        seen = course_models.overlap(split.test)
        if seen:
            print(
                f"  {seen} of the {len(split.test)} test faces here were among its training or validation "
                "faces: its scores on this split are optimistic (the model card's are on held-out faces)."
            )


def names_a_model(text: str | os.PathLike) -> bool:
    """True when ``text`` looks like a course model's name (``model-a``, ``model-b``, or an unknown
    ``model-x``, which :func:`for_cli` then refuses naming the known ones) rather than a path."""
    return re.fullmatch(r"model-[a-z]", str(text)) is not None


def for_cli(spec: str | os.PathLike | None = None, settings: Settings | None = None) -> ChosenModel:
    """The model a command uses: a course model's name (the shipped one; default ``model-b``) or a
    ``.keras`` file (with ``settings``, default the current profile's, fitted to its input size)."""
    spec = "model-b" if spec is None else spec
    if names_a_model(spec) and not Path(spec).exists():
        return shipped(str(spec))
    from agecourse.deploy import load_model  # lazy: TensorFlow (seconds) only when a command runs

    model = load_model(spec)
    base = settings or get_settings()
    return ChosenModel(model, base.replace(image_size=int(model.input_shape[1])), f"the model in {spec}")


def for_demo(name: str = "model-b", settings: Settings | None = None) -> tuple[ChosenModel, str]:
    """The demo page's model and the HTML shown beside the upload: ``(chosen, about_html)``.

    ``settings.demo_model`` (``AGECOURSE_DEMO_MODEL``) chooses a ``.keras`` file of your own (a missing
    one is an error). Otherwise the shipped model ``name`` with its test MAE and short model card.
    Only when the shipped file is missing or fails its checks does the page fall back to a model this
    runtime saved, or else a small Model A trained now on synthetic faces, and it says why.
    """
    settings = settings or get_settings()
    if settings.demo_model:
        chosen = for_cli(settings.demo_model, settings)
        return chosen, f"<p><b>Model:</b> {escape(Path(settings.demo_model).name)} (from {escape(chosen.source)})</p>"
    try:
        return shipped(name), course_models.about_html(name)
    except course_models.CourseModelError as err:
        chosen = _demo_fallback(settings)
        return chosen, (
            f"<p style='color:#b00020'><b>The shipped model could not be used:</b> {escape(str(err))}</p>"
            f"<p><b>Model:</b> {escape(chosen.source)}</p>"
        )


def _demo_fallback(settings: Settings) -> ChosenModel:
    """A model this runtime saved (Model B first), else a small Model A trained now in the ``ci``
    profile on synthetic faces, whose predictions mean nothing (and the source says so)."""
    for name in ("model-b", "model-a"):
        model, reason = artifacts.load_saved(settings, name)
        if model is not None:
            return ChosenModel(
                model, settings, f"{TITLES[name]} trained in the '{settings.profile}' profile ({reason})"
            )
    small = get_settings("ci")
    model = artifacts.get_model(small, "model-a", verbose=False)
    return ChosenModel(
        model,
        small,
        f"a small Model A trained for {small.epochs} epochs on synthetic faces in the 'ci' profile, because no "
        "trained model was found: it shows how the app works, its ages and genders mean nothing",
    )
