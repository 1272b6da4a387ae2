"""Saved artifacts: the split and both trained models with their histories, so each lesson runs alone.

Lesson 03 saves the split, lesson 08 Model A and lesson 10 Model B under ``settings.artifacts_dir``
(one folder per profile and data kind). A later lesson asks for the split with :func:`get_split`;
which model it uses (saved here, shipped, or trained now) is decided by
:func:`agecourse.model_choice.for_lesson`, which calls :func:`load_saved` and :func:`get_model`.

Both models are named as everywhere in the course, ``"model-a"`` and ``"model-b"``:

* :func:`model_path` -- ``model_a.keras`` / ``model_b.keras``, with ``model_a_history.json`` /
  ``model_b_history.json`` beside them (:func:`history_path`);
* :func:`save_model` / :func:`load_model` -- write and read a model and its history;
* :func:`load_saved` -- the saved model when it fits the settings, else why not (loading it once);
* :func:`compatibility_problem` -- why a model does not fit the settings (input size, and for Model B
  the backbone), so a model saved before a profile changed is retrained instead of silently reused;
"""

from __future__ import annotations

from pathlib import Path

import keras

# Registers Model B's preprocessing layer with Keras, so a saved Model B loads.
import agecourse.backbones  # noqa: F401
from agecourse.config import Settings
from agecourse.data import Split, load_course_data, split_dataset
from agecourse.recipes import train_model_a, train_model_b
from agecourse.training import load_history, save_history

MODELS = {"model-a": "Model A", "model-b": "Model B"}
LESSONS = {"model-a": "08", "model-b": "10"}


def get_split(settings: Settings, rebuild: bool = False, verbose: bool = True) -> Split:
    """The seeded train/val/test split for ``settings``: reloaded from ``split.csv`` if saved and
    all its files still exist, else built from :func:`agecourse.data.load_course_data` and saved."""
    path = settings.artifacts_dir / "split.csv"
    if path.exists() and not rebuild:
        split = Split.load(path)
        if all(Path(p).exists() for part in (split.train, split.val, split.test) for p in part["path"]):
            if verbose:
                print(f"Loaded the saved split from {path}: {split.sizes()}")
            return split
        if verbose:
            print(f"The saved split {path} points at missing files; rebuilding it.")
    result = load_course_data(settings)
    if verbose:
        print(result.summary())
    split = split_dataset(result.images, seed=settings.seed)
    split.save(path)
    if verbose:
        print(f"Built and saved a new split to {path}: {split.sizes()}")
    return split


def _name(which: str) -> str:
    """``"Model A"`` / ``"Model B"`` for ``which`` = ``"model-a"`` / ``"model-b"``; a clear error otherwise."""
    if which not in MODELS:
        raise ValueError(f"which={which!r}: use 'model-a' (Model A) or 'model-b' (Model B)")
    return MODELS[which]


def model_path(settings: Settings, which: str) -> Path:
    """Where Model A (``which="model-a"``, saved by lesson 08) or Model B (``"model-b"``, lesson 10) is
    saved: ``artifacts_dir/model_a.keras`` or ``artifacts_dir/model_b.keras``."""
    _name(which)
    return settings.artifacts_dir / f"{_stem(which)}.keras"


def _stem(which: str) -> str:
    return which.replace("-", "_")


def history_path(settings: Settings, which: str) -> Path:
    """The training history saved beside the model: ``model_a_history.json`` / ``model_b_history.json``."""
    return model_path(settings, which).with_name(f"{_stem(which)}_history.json")


def input_size(settings: Settings, which: str) -> int:
    """The image side the model takes under ``settings``: ``image_size`` for Model A,
    ``transfer_image_size`` for Model B."""
    _name(which)
    return settings.image_size if which == "model-a" else settings.transfer_image_size


def compatibility_problem(settings: Settings, which: str, model: keras.Model) -> str:
    """Why ``model`` cannot stand in for ``settings``' Model A or B ("" when it can): another input
    size, or for Model B another backbone than ``settings.transfer_backbone``."""
    name, size, wanted = _name(which), model.input_shape[1], input_size(settings, which)
    if size != wanted:
        return f"{name} takes {size} px images but the '{settings.profile}' profile uses {wanted} px"
    backbone = f"model_b_{settings.transfer_backbone.lower()}"
    if which == "model-b" and model.name.startswith("model_b_") and model.name != backbone:
        return f"{name} is {model.name}, but the '{settings.profile}' profile uses {settings.transfer_backbone}"
    return ""


def save_model(
    settings: Settings, which: str, model: keras.Model, history: dict[str, list[float]] | None = None
) -> Path:
    """Save a trained Model A or B (and its history, if given) where :func:`get_model` finds it.
    Refuses a model that does not fit ``settings`` (see :func:`compatibility_problem`)."""
    problem = compatibility_problem(settings, which, model)
    if problem:
        raise ValueError(f"not saving to {model_path(settings, which)}: {problem}")
    path = model_path(settings, which)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    if history is not None:
        save_history(history, history_path(settings, which))
    return path


def load_saved(settings: Settings, which: str) -> tuple[keras.Model | None, str]:
    """``(model, "saved in PATH")`` when a usable Model A or B is saved for ``settings``, else
    ``(None, reason)``: missing, unreadable, or built for other settings (see
    :func:`compatibility_problem`). The file is read once."""
    path = model_path(settings, which)
    if not path.exists():
        return None, f"no saved {_name(which)} at {path}"
    try:
        model = keras.models.load_model(path)
    except (OSError, ValueError, TypeError) as err:
        return None, f"{path} could not be loaded ({err})"
    problem = compatibility_problem(settings, which, model)
    return (None, f"{path}: {problem}") if problem else (model, f"saved in {path}")


def load_model(settings: Settings, which: str) -> tuple[keras.Model, dict[str, list[float]] | None]:
    """``(model, history)`` saved by :func:`save_model`; ``history`` is ``None`` if it was not saved.
    Raises ``FileNotFoundError`` naming the path when nothing is saved, ``ValueError`` when the saved
    model does not fit ``settings``."""
    model, problem = load_saved(settings, which)
    if model is None:
        path = model_path(settings, which)
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: no saved {_name(which)} (train it in lesson {LESSONS[which]} or call get_model)"
            )
        raise ValueError(problem)
    history = history_path(settings, which)
    return model, load_history(history) if history.exists() else None


def get_model(
    settings: Settings, which: str, split: Split | None = None, retrain: bool = False, verbose: bool = True
) -> keras.Model:
    """Model A or B for ``settings``: loaded if saved and compatible, else trained now with the
    profile's recipe (:func:`agecourse.recipes.train_model_a` / ``train_model_b``) and saved."""
    path = model_path(settings, which)
    model, problem = (None, "retraining was requested") if retrain else load_saved(settings, which)
    if model is not None:
        if verbose:
            print(f"Loaded the saved {_name(which)} from {path}")
        return model
    if verbose:
        print(f"{problem}: training {_name(which)} now with the '{settings.profile}' settings.")
    split = split if split is not None else get_split(settings, verbose=verbose)
    train = train_model_a if which == "model-a" else train_model_b
    model, history = train(settings, split, verbose=2 if verbose else 0)
    save_model(settings, which, model, history)
    return model
