"""The course's shipped models: a registry of Model A and Model B trained on real UTKFace faces.

The models are package data, so ``pip install`` (from git, on Colab) brings them. Each ships as its
**weights only** (``model_a.weights.npz``: every weight array in Keras's order, with its variable
path), and :func:`load` rebuilds the architecture with the package's own builders
(:func:`agecourse.recipes.build_model_a_for` / ``build_model_b_for``) from the settings recorded in the
registry, then sets the weights. So a model saved by one Keras release loads in every release the
package accepts: nothing depends on the saving Keras's config schema (a ``.keras`` file written by
Keras 3.15 does not load in Colab's Keras 3.13).

``registry.json`` holds one entry per model: its file and SHA-256, the architecture's settings, a
reference prediction on a fixed input (so a test can prove a load reproduces the model, not just
that it did not crash), training data, split seed, date, machine and test metrics with 95 %
bootstrap intervals, and a model card per model (``model_a.md``, ``model_b.md``). They are written by
``scripts/write_package_data.py`` (the one writer of package data).

:func:`load` checks the file's SHA-256 against the registry before reading it: a changed or damaged
file is refused with an error naming the file and both hashes; a file whose arrays do not fit the
architecture is refused naming the first array that differs.

Which model a lesson, the CLI or the demo uses (trained in this runtime, shipped, or a file) is
decided in :mod:`agecourse.model_choice`, not here.

Intended use: teaching. The models guess an apparent age and a binary gender label from a face
photo, with errors that differ between groups of people (see each card); never use them to make
decisions about people. UTKFace is licensed for non-commercial research only and its images belong
to their owners; models trained on it inherit that restriction.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from html import escape
from pathlib import Path

import numpy as np

FOLDER = Path(__file__).resolve().parent
REGISTRY = FOLDER / "registry.json"
SEEN_FILES = FOLDER / "training_files.txt.gz"
# The fixed input of each entry's reference prediction: seeded uniform pixels (numpy's PCG64 stream
# is the same on every platform and numpy release).
REFERENCE_SEED = 0
REFERENCE_COUNT = 2


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
        raise CourseModelError(
            f"{path}: no registry of shipped models (made by scripts/write_package_data.py)"
        ) from err
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


def architecture_settings(name: str):
    """The :class:`~agecourse.config.Settings` that build the shipped model's architecture: its
    recipe's profile with the fields recorded under ``architecture`` in the registry (input size,
    filters, backbone, alpha, ...). Data fields are left at "synthetic" (they play no part in a build)."""
    from agecourse.config import recipe_settings

    item = entry(name)
    arch = item.get("architecture")
    if not isinstance(arch, dict) or "kind" not in arch or "settings" not in arch:
        raise CourseModelError(f"{REGISTRY}: the entry of {name!r} records no architecture to rebuild")
    fields = dict(arch["settings"])
    if "model_filters" in fields:
        fields["model_filters"] = tuple(fields["model_filters"])
    return recipe_settings(arch["profile"], **fields)


def build(name: str):
    """The shipped model's architecture with fresh (untrained, no ImageNet) weights."""
    from agecourse.recipes import build_model_a_for, build_model_b_for

    kind = entry(name)["architecture"]["kind"]
    settings = architecture_settings(name)
    if kind == "model-a":
        return build_model_a_for(settings)
    if kind == "model-b":
        return build_model_b_for(settings, weights=None, verbose=False)
    raise CourseModelError(f"{REGISTRY}: {name!r} has an unknown architecture kind {kind!r}")


def read_weights(file: str | os.PathLike) -> tuple[list[np.ndarray], list[str]]:
    """``(arrays, variable paths)`` of a weights file written by :func:`write_weights`; a file that
    is not one raises :class:`CourseModelError` naming it."""
    try:
        with np.load(file, allow_pickle=False) as data:
            paths = [str(p) for p in data["paths"]]
            arrays = [data[f"w{i:04d}"] for i in range(len(paths))]
    except (OSError, ValueError, KeyError) as err:
        raise CourseModelError(f"{file}: not a weights file of agecourse ({err})") from err
    return arrays, paths


def write_weights(model, file: str | os.PathLike) -> Path:
    """Save ``model``'s weights as :func:`load` reads them: an ``.npz`` of every weight array in
    Keras's order (``w0000``, ``w0001``, ...) and their variable paths (``paths``)."""
    file = Path(file)
    arrays = {f"w{i:04d}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    np.savez_compressed(file, paths=np.array([v.path for v in model.weights]), **arrays)
    return file


def reference_input(size: int) -> np.ndarray:
    """The fixed input of the registry's reference predictions: ``REFERENCE_COUNT`` images of seeded
    uniform pixel values 0-255 at ``size`` px."""
    rng = np.random.default_rng(REFERENCE_SEED)
    return rng.uniform(0, 255, (REFERENCE_COUNT, size, size, 3)).astype("float32")


def reference_prediction(model) -> dict[str, list[float]]:
    """``{"age": [...], "gender": [...]}``: the model's outputs on :func:`reference_input`."""
    out = model.predict(reference_input(int(model.input_shape[1])), verbose=0)
    if not isinstance(out, dict):
        out = dict(zip(model.output_names, out))
    return {key: [float(v) for v in np.asarray(out[key]).reshape(-1)] for key in ("age", "gender")}


def load(name: str, file: str | os.PathLike | None = None):
    """Load a shipped model by name (``"model-a"``, ``"model-b"``) after checking its SHA-256.

    The architecture is built by the package (:func:`build`) and the shipped weights are set into it
    (:func:`read_weights`), so this works on every Keras the package accepts. ``file`` loads another
    copy, checked against the same registry entry. Raises :class:`CourseModelError` naming the file
    when the hash or the arrays' number or shapes do not match.
    """
    checked = verify(name, file)
    arrays, paths = read_weights(checked)
    model = build(name)
    expected = model.get_weights()
    if len(arrays) != len(expected):
        raise CourseModelError(
            f"{checked}: holds {len(arrays)} weight arrays but {name}'s architecture has {len(expected)}"
        )
    for index, (array, want) in enumerate(zip(arrays, expected)):
        if array.shape != want.shape:
            raise CourseModelError(
                f"{checked}: weight {index} ({paths[index]}) has shape {array.shape}, the architecture "
                f"expects {want.shape}"
            )
    model.set_weights(arrays)
    return model


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


def age_interval(name: str) -> dict | None:
    """The shipped model's age-interval calibration (``level``, ``half_width`` in years, ``method``,
    ``test_coverage`` overall and by age band; lesson 09's split conformal prediction, written by
    ``scripts/write_package_data.py models --intervals``), or ``None`` when it has none."""
    return entry(name).get("age_interval")


def gender_temperature(name: str) -> float | None:
    """The shipped model's gender temperature (lesson 09's temperature scaling, fitted on its
    validation faces by ``scripts/write_package_data.py models --intervals``), or ``None`` when it
    has none; the registry entry also records the calibration error before and after."""
    calibration = entry(name).get("gender_temperature")
    return None if calibration is None else float(calibration["temperature"])


def models_table() -> str:
    """A markdown table of the shipped models, generated from the registry (for the README)."""
    rows = [
        "| name | model | input | file size | test age MAE (95 % CI) | test gender accuracy (95 % CI) | test faces "
        "| predictions | age interval (held on the test faces) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for item in registry()["models"]:
        test = item["test"]
        interval = item.get("age_interval")
        if interval and interval.get("band_half_widths"):
            widths = interval["band_half_widths"].values()
            interval_text = (
                f"{interval['level']:.0%}: ± {min(widths):.1f} to ± {max(widths):.1f} years by predicted-age band "
                f"({interval['band_test_coverage']:.1%})"
            )
        elif interval:
            interval_text = (
                f"{interval['level']:.0%}: ± {interval['half_width']:.1f} years ({interval['test_coverage']:.1%})"
            )
        else:
            interval_text = "not calibrated"
        rows.append(
            f"| `{item['name']}` | {item['title']} | {item['input_size']} px | {item['size_bytes'] / 1e6:.1f} MB | "
            f"{test['age_mae']:.2f} ({test['age_mae_ci95'][0]:.2f}-{test['age_mae_ci95'][1]:.2f}) | "
            f"{test['gender_accuracy']:.1%} ({test['gender_accuracy_ci95'][0]:.1%}-"
            f"{test['gender_accuracy_ci95'][1]:.1%}) | {test['count']:,} | {test.get('predictions', 'plain')} | "
            f"{interval_text} |"
        )
    return "\n".join(rows)


# --- what the shipped models have seen, and their card on a page -------------------------------


def seen_files() -> set[str]:
    """File names of the faces the shipped models were trained or selected on (their training and
    validation splits); the shipped models must not be scored on these."""
    if not SEEN_FILES.is_file():
        raise CourseModelError(f"{SEEN_FILES}: the list of the shipped models' training files is missing")
    with gzip.open(SEEN_FILES, "rt", encoding="utf-8") as fh:
        return {line.strip() for line in fh if line.strip()}


def overlap(images, names_seen: set[str] | None = None) -> int:
    """How many rows of ``images`` (a table with a ``path`` column) the shipped models were trained
    or selected on."""
    names_seen = seen_files() if names_seen is None else names_seen
    return int(sum(Path(p).name in names_seen for p in images["path"]))


def about_html(name: str) -> str:
    """HTML for a page beside the model: its name and test MAE from the registry and a short model
    card (data, known gaps, intended use, licence). The block has the CSS class
    ``agecourse-model-card``."""
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
