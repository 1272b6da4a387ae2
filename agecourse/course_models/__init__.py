"""The course's shipped models: Model A and Model B trained on real UTKFace faces.

Introduced in lesson 09 (a lesson that finds no model trained in this runtime loads the shipped
one); used by ``agecourse predict`` / ``evaluate`` (``model-a``, ``model-b``) and the demo page.

The models are package data, so ``pip install`` (from git, on Colab) brings them. They are made by
``bench/train_course_models.py`` (seeded; selected on the validation split only; test split
scored once), which also writes ``registry.json`` -- one entry per model with its file, SHA-256,
input size, training data, split seed, date, machine and test metrics with 95 % bootstrap
intervals -- and a model card per model (``model_a.md``, ``model_b.md``).

:func:`load` checks the file's SHA-256 against the registry before Keras reads it: a changed or
damaged file is refused with an error naming the file and both hashes.

Intended use: teaching. The models guess an apparent age and a binary gender label from a face
photo, with errors that differ between groups of people (see each card); never use them to make
decisions about people. UTKFace is licensed for non-commercial research only and its images belong
to their owners; models trained on it inherit that restriction.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from pathlib import Path

FOLDER = Path(__file__).resolve().parent
REGISTRY = FOLDER / "registry.json"
# Modules that register the custom Keras layers the shipped models use (Model B's
# ``agecourse>BackbonePreprocess``): whichever of them exists is imported before loading, so
# loading does not depend on which module defines the layer (the registered name is what the file stores).
_LAYER_MODULES = ("agecourse.backbones", "agecourse.transfer")
REGISTERED_LAYERS = ("agecourse>BackbonePreprocess",)


class CourseModelError(ValueError):
    """A shipped model that is unknown, missing or not the file the registry describes."""


def registry(path: str | os.PathLike | None = None) -> dict:
    """The registry (``registry.json``) as a dict: ``{"models": [entry, ...], ...}``.

    Raises :class:`CourseModelError` naming the file when it is missing or not valid JSON.
    """
    path = Path(path) if path is not None else REGISTRY
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise CourseModelError(f"{path}: no registry of shipped models (made by bench/train_course_models.py)") from err
    except ValueError as err:
        raise CourseModelError(f"{path}: not a valid registry ({err})") from err
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise CourseModelError(f"{path}: not a valid registry (no 'models' list)")
    return data


def names() -> list[str]:
    """Names of the shipped models, e.g. ``["model-a", "model-b"]`` (empty when none ship)."""
    try:
        return [entry["name"] for entry in registry()["models"]]
    except CourseModelError:
        return []


def is_name(text: str | os.PathLike) -> bool:
    """True when ``text`` names a shipped model (``model-a``, ``model-b``) rather than a file."""
    return isinstance(text, str) and text in names()


def entry(name: str) -> dict:
    """The registry entry of one shipped model; :class:`CourseModelError` lists the known names."""
    for item in registry()["models"]:
        if item["name"] == name:
            return item
    known = ", ".join(names()) or "none"
    raise CourseModelError(f"no shipped model called {name!r} (shipped: {known})")


def path(name: str) -> Path:
    """The ``.keras`` file of a shipped model (inside the installed package)."""
    return FOLDER / entry(name)["file"]


def sha256_of(file: str | os.PathLike) -> str:
    """SHA-256 of a file as lowercase hex."""
    digest = hashlib.sha256()
    with open(file, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify(name: str, file: str | os.PathLike | None = None) -> Path:
    """Check that ``file`` (default: the shipped file of ``name``) is the file the registry lists.

    Returns the path; raises :class:`CourseModelError` naming the file and both hashes when the
    contents differ (a changed, damaged or replaced file), or naming the file when it is missing.
    """
    item = entry(name)
    file = Path(file) if file is not None else FOLDER / item["file"]
    if not file.is_file():
        raise CourseModelError(f"{file}: the shipped model {name!r} is missing (reinstall agecourse)")
    actual = sha256_of(file)
    if actual != item["sha256"]:
        raise CourseModelError(
            f"{file}: not the shipped {name!r}: its SHA-256 is {actual}, the registry expects "
            f"{item['sha256']}; the file was changed or damaged (reinstall agecourse)"
        )
    return file


def register_layers() -> None:
    """Import the module(s) that register the course's custom Keras layers, wherever they live."""
    import keras

    for module in _LAYER_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:  # the module exists but something it imports is missing
                raise
    missing = [name for name in REGISTERED_LAYERS if keras.saving.get_registered_object(name) is None]
    if missing:
        raise CourseModelError(f"the custom Keras layers {missing} are not registered by {', '.join(_LAYER_MODULES)}")


def load(name: str, file: str | os.PathLike | None = None):
    """Load a shipped model by name (``"model-a"``, ``"model-b"``) after checking its SHA-256.

    ``file`` loads another copy of it instead, checked against the same registry entry. The model
    is returned uncompiled (prediction needs no optimizer); compile it to train further.
    """
    import keras

    checked = verify(name, file)
    register_layers()
    return keras.models.load_model(checked, compile=False)


def card(name: str) -> str:
    """The model card (markdown) of a shipped model."""
    file = FOLDER / entry(name)["card"]
    if not file.is_file():
        raise CourseModelError(f"{file}: the model card of {name!r} is missing")
    return file.read_text(encoding="utf-8")


def summary(name: str) -> str:
    """One line: the model, its input, its training data and its test scores with 95 % intervals."""
    item = entry(name)
    test = item["test"]
    low, high = test["age_mae_ci95"]
    acc_low, acc_high = test["gender_accuracy_ci95"]
    return (
        f"{item['title']}: {item['input_size']} px input, trained on {item['training_data']['description']}; "
        f"test age MAE {test['age_mae']:.2f} years (95 % CI {low:.2f}-{high:.2f}), gender accuracy "
        f"{test['gender_accuracy']:.1%} ({acc_low:.1%}-{acc_high:.1%}) on {test['count']:,} held-out faces"
    )


def short_card(name: str) -> str:
    """A few markdown lines for a page beside the model: data, test score, known gaps, intended use."""
    item = entry(name)
    test = item["test"]
    gaps = "; ".join(item.get("known_gaps", [])[:3]) or "see the model card"
    return "\n".join(
        [
            f"**{item['title']}** (`{item['name']}`)",
            f"- **Data:** {item['training_data']['description']}; test split of {test['count']:,} faces never "
            "used for training or model choice.",
            f"- **Test age MAE:** {test['age_mae']:.2f} years (95 % CI {test['age_mae_ci95'][0]:.2f}-"
            f"{test['age_mae_ci95'][1]:.2f}); **gender accuracy** {test['gender_accuracy']:.1%}.",
            f"- **Known gaps:** {gaps}.",
            f"- **Intended use:** {item['intended_use']}",
        ]
    )


def models_table() -> str:
    """A markdown table of the shipped models, generated from the registry (for the README)."""
    rows = [
        "| name | model | input | file size | test age MAE (95 % CI) | test gender accuracy (95 % CI) | test faces |",
        "|---|---|---|---|---|---|---|",
    ]
    for item in registry()["models"]:
        test = item["test"]
        rows.append(
            f"| `{item['name']}` | {item['title']} | {item['input_size']} px | {item['size_bytes'] / 1e6:.1f} MB | "
            f"{test['age_mae']:.2f} ({test['age_mae_ci95'][0]:.2f}-{test['age_mae_ci95'][1]:.2f}) | "
            f"{test['gender_accuracy']:.1%} ({test['gender_accuracy_ci95'][0]:.1%}-"
            f"{test['gender_accuracy_ci95'][1]:.1%}) | {test['count']:,} |"
        )
    return "\n".join(rows)


# --- lessons 09-13: a model for this runtime -------------------------------------------------------

SEEN_FILES = FOLDER / "training_files.txt.gz"
_KIND = {"model-a": "Model A", "model-b": "Model B"}


def seen_files() -> set[str]:
    """File names of the faces the shipped models were trained or selected on (their training and
    validation splits); the shipped models must not be scored on these."""
    import gzip

    if not SEEN_FILES.is_file():
        raise CourseModelError(f"{SEEN_FILES}: the list of the shipped models' training files is missing")
    with gzip.open(SEEN_FILES, "rt", encoding="utf-8") as fh:
        return {line.strip() for line in fh if line.strip()}


def overlap(images, names_seen: set[str] | None = None) -> int:
    """How many rows of ``images`` (a table with a ``path`` column) the shipped models were trained
    or selected on."""
    names_seen = seen_files() if names_seen is None else names_seen
    return int(sum(Path(p).name in names_seen for p in images["path"]))


def _which(name: str) -> str:
    return {"model-a": "a", "model-b": "b"}[name]


def _runtime_model(settings, name: str, split):
    """``(model or None, reason)``: a model of this kind that this runtime saved for ``settings``."""
    from agecourse import artifacts

    problem = artifacts.saved_model_problem(settings, _which(name))
    if problem:
        return None, problem
    return artifacts.get_model(settings, _which(name), split=split, verbose=False), ""


def for_lesson(settings, name: str = "model-a", split=None, retrain: bool | None = None, verbose: bool = True):
    """The model a lesson uses, and the settings that fit it: ``(model, settings)``.

    * ``ci`` profile: the model this runtime trains (seconds, on synthetic faces), as before;
    * otherwise the model this runtime saved (lesson 08 / 10), if any;
    * else, with ``AGECOURSE_RETRAIN=1`` (or ``retrain=True``), one trained now with the profile's recipe;
    * else the **shipped** model (:func:`load`), saying so. Its input size may differ from the
      profile's (Model A ships at 64 px): the returned settings carry the model's size
      (``image_size`` for Model A, ``transfer_image_size`` for Model B), so pipelines built from
      them fit the model. When ``split`` is given and some of its test faces were among the
      shipped model's training or validation faces (a cached full UTKFace contains them), the
      count is printed: scores on those faces are optimistic.
    """
    if name not in _KIND:
        raise CourseModelError(f"no shipped model called {name!r} (shipped: {', '.join(_KIND)})")
    if settings.profile == "ci":
        return _train_or_reuse_ci(settings, name, split), settings
    from agecourse import artifacts

    if retrain is None:
        retrain = artifacts.retrain_requested()
    if retrain:
        if verbose:
            print(f"AGECOURSE_RETRAIN=1: training {_KIND[name]} now with the '{settings.profile}' recipe.")
        return artifacts.get_model(settings, _which(name), split=split, retrain=True), settings
    model, reason = _runtime_model(settings, name, split)
    if model is not None:
        if verbose:
            print(f"Using the {_KIND[name]} this runtime trained and saved in {settings.artifacts_dir}.")
        return model, settings
    model = load(name)
    size = int(model.input_shape[1])
    fitted = settings.replace(image_size=size) if name == "model-a" else settings.replace(transfer_image_size=size)
    if verbose:
        print(f"{reason}: using the shipped {_KIND[name]} ({name}) instead (AGECOURSE_RETRAIN=1 trains one now).")
        print(f"  {summary(name)}")
        if settings.uses_synthetic:
            print("  It was trained on real faces: on synthetic faces its scores say little (`agecourse data fetch`).")
        if split is not None and not settings.uses_synthetic:
            seen = overlap(split.test)
            if seen:
                print(
                    f"  {seen} of the {len(split.test)} test faces here were among its training or validation "
                    "faces: its scores on this split are optimistic (the model card's are on held-out faces)."
                )
    return model, fitted


def _train_or_reuse_ci(settings, name: str, split):
    """The ``ci`` profile's model: what the lessons always did there (fast, offline, synthetic)."""
    from agecourse import artifacts

    return artifacts.get_model(settings, _which(name), split=split)


# --- the demo page --------------------------------------------------------------------------------


def about_html(name: str) -> str:
    """HTML for a page beside the model: its name and test MAE from the registry and a short model
    card (data, known gaps, intended use, licence). The block has the CSS class
    ``agecourse-model-card``."""
    from html import escape

    item = entry(name)
    test = item["test"]
    gaps = "".join(f"<li>{escape(gap)}</li>" for gap in item.get("known_gaps", [])[:3])
    return (
        "<div class='agecourse-model-card'>"
        f"<p><b>Model:</b> {escape(item['title'])}, shipped as <code>{escape(item['name'])}</code>: "
        f"<b>test age MAE {test['age_mae']:.2f} years</b> (95 % CI {test['age_mae_ci95'][0]:.2f}-"
        f"{test['age_mae_ci95'][1]:.2f}), gender accuracy {test['gender_accuracy']:.1%}, "
        f"on {test['count']:,} held-out UTKFace faces.</p>"
        "<details><summary>Model card (short)</summary><ul>"
        f"<li><b>Data:</b> {escape(item['training_data']['description'])}.</li>"
        f"<li><b>Known gaps</b> (worst groups on the test split):<ul>{gaps}</ul></li>"
        f"<li><b>Intended use:</b> {escape(item['intended_use'])}.</li>"
        "<li><b>Licence:</b> UTKFace is for non-commercial research only and its images belong to their "
        "owners; so do these weights.</li>"
        "</ul></details></div>"
    )


def demo_model(name: str = "model-b", path: str | os.PathLike | None = None):
    """The demo page's model and the HTML shown beside the upload: ``(model, about_html)``.

    ``path`` or ``AGECOURSE_DEMO_MODEL`` chooses a ``.keras`` file of your own (a missing one is an
    error). Otherwise the shipped model ``name`` with its test MAE and short model card
    (:func:`about_html`). Only when the shipped file is missing or fails its hash check does the page
    fall back to :func:`agecourse.demo_app.demo_model` (a model this runtime trained, or a small one
    on synthetic faces), and it says why.
    """
    from html import escape

    chosen = path or os.environ.get("AGECOURSE_DEMO_MODEL")
    if chosen:
        from agecourse.deploy import load_model

        return load_model(chosen), f"<p><b>Model:</b> {escape(Path(chosen).name)} (from {escape(str(chosen))})</p>"
    try:
        return load(name), about_html(name)
    except CourseModelError as err:
        from agecourse.demo_app import demo_model as fallback

        model, about = fallback()
        return model, (
            f"<p style='color:#b00020'><b>The shipped model could not be used:</b> {escape(str(err))}</p>"
            f"<p><b>Model:</b> {escape(about)}</p>"
        )
