"""Run profiles: one settings object that every notebook and the CLI read.

Introduced in lesson 01 (setup cell) and used by every lesson after it.

Three profiles cover the places the course runs:

* ``ci``  -- synthetic faces, tiny images, a few epochs: seconds on a laptop, used by the tests.
* ``cpu`` -- Binder or a laptop: real UTKFace if a local copy is configured, smaller images.
* ``gpu`` -- Colab with a GPU: full data, larger images, mixed precision.

The profile is chosen by ``AGECOURSE_PROFILE``; without it, a visible GPU means ``gpu``, a
``CI`` environment variable means ``ci``, and anything else means ``cpu``.

Which faces a run uses (:func:`choose_data`): ``AGECOURSE_DATA`` when set (a folder or archive,
or ``synthetic``); else a UTKFace copy that ``agecourse data fetch`` left in the cache; else, in
Colab and in the ``gpu`` profile, UTKFace is downloaded into the cache on first use (lesson setup
and the CLI call :func:`agecourse.download.fetch_if_needed`); else synthetic faces. The ``ci`` profile is
always synthetic and offline. Whenever synthetic faces stand in outside ``ci``, ``Settings.data_note``
says why and how to get real faces, and the lesson setup and the CLI print it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import platformdirs

PROFILES = ("ci", "cpu", "gpu")
FINETUNE_LAYERS = 60  # Model B on images: backbone layers its phase 2 unfreezes, unless a profile says otherwise


@dataclass(frozen=True)
class Settings:
    """Everything a lesson or the CLI needs to know about the current run.

    Attributes mirror the choices a student makes: how big the images are, how much data to use,
    how long to train. ``data_dir`` is ``None`` when no real UTKFace copy is configured, in which
    case the built-in *synthetic* faces are used and every output says so.

    Model A's recipe (lessons 06-08) is part of the settings too, so the lessons, ``agecourse run``
    and the benchmark all train the same model: ``model_filters``, ``dense_units``,
    ``head_dropout``, ``l2`` and ``augment`` shape the network; ``age_loss`` (``"huber"``,
    ``"mae"`` or ``"mse"``) and ``gender_loss_weight`` (``None`` = the loss's default weight) set
    the objective; ``patience`` and ``lr_patience`` drive early stopping and the learning-rate
    reduction; ``lr_schedule`` is ``"plateau"`` (ReduceLROnPlateau) or ``"cosine"`` (a planned
    decay over ``epochs``, :func:`agecourse.training.cosine_schedule`); ``augment`` is ``True``
    (lesson 05's flips, rotation, zoom, shifts, contrast, brightness), ``"flip"`` (mirror images
    only) or ``False``; ``cache="memory"`` decodes every image once and keeps it in RAM (worth it on a CPU,
    where decoding JPEGs every epoch costs as much as a small model's training step).

    Model B's recipe (lesson 10) lives in the ``transfer_*`` fields. ``transfer_cached_views = 0``
    trains it the textbook way, on the image pipeline with lesson 05's augmentation inside the model;
    ``N >= 1`` (the ``cpu`` profile) computes the frozen backbone below ``transfer_cut`` once for
    ``N`` views of every training image and trains both phases above it
    (:func:`agecourse.transfer_training.train_two_phase_cached`), which is what makes a 224 px, alpha 0.5
    MobileNetV2 fit a CPU budget. ``transfer_restore_best`` ends each phase on its lowest-validation-loss
    epoch (``True``, as lesson 08 teaches) or on its last (``False``: with a cosine decay the last epoch,
    trained at the smallest rate, was the better model on validation; ``bench/tune.py`` has the trial).
    ``transfer_patience`` is Model B's early-stopping patience (``None``: ``patience``, Model A's);
    ``transfer_gender_loss_weight`` and ``transfer_weight_decay`` change its objective (``None``: the
    defaults of :func:`agecourse.models.compile_model`). ``transfer_oversample = N`` trains Model B on
    a training set whose every age band x gender cell has at least ``N`` rows, the rarer cells filled
    with seeded repeats (:func:`agecourse.recipes.oversampled_train_for`); ``None`` trains on the split as it is.

    ``flip_tta`` (test-time augmentation) makes evaluation average each prediction over the face and
    its mirror image (:func:`agecourse.evaluate.predict_table` with ``flip_average=True``): twice the
    prediction cost, no training cost. The benchmarks score both ways and headline the profile's.

    ``transfer_finetune_layers`` is how many backbone layers Model B's phase 2 unfreezes when it
    trains on images (on cached views, every backbone layer above ``transfer_cut``).

    ``lesson_budget_s`` is how long lessons 08 and 10 train (the ``cpu`` profile's lessons fit a
    Binder session that way; each lesson compares its short run with the shipped model, which is the
    full recipe's result); ``None`` trains the full recipe, which ``AGECOURSE_FULL_RECIPE=1`` asks for.
    The benchmarks, ``agecourse run`` and retraining (``retrain``) always train the full recipe.

    ``max_images`` keeps a seeded sample stratified by age band x gender when a dataset is larger
    (the ``cpu`` profile's 8,000 keep the full 23,708-face UTKFace within Binder's ~2 GB and a
    lesson's CPU budget); ``data_note`` is one line on where the faces come from when that needs
    saying (synthetic faces outside ``ci``, a cached or downloaded copy, a failed download).
    """

    profile: str
    image_size: int
    batch_size: int
    epochs: int
    synthetic_count: int
    max_images: int | None
    learning_rate: float
    mixed_precision: bool
    seed: int = 42
    data_dir: Path | None = None
    transfer_image_size: int = 96
    transfer_epochs_frozen: int = 2
    transfer_epochs_finetune: int = 2
    transfer_backbone: str = "MobileNetV2"
    transfer_alpha: float = 0.35
    transfer_dropout: float = 0.3
    transfer_cached_views: int = 0
    transfer_cut: str = "block_12_add"
    transfer_learning_rate: float | None = None  # phase 1; None: learning_rate
    transfer_finetune_learning_rate: float | None = None  # phase 2; None: transfer_training.FINETUNE_LEARNING_RATE
    transfer_lr_schedule: str = "plateau"
    transfer_restore_best: bool = True
    transfer_patience: int | None = None  # Model B's early-stopping patience; None: patience
    transfer_gender_loss_weight: float | None = None  # Model B's gender loss weight; None: compile_model's
    transfer_weight_decay: float | None = None  # Model B's AdamW weight decay; None: compile_model's
    transfer_oversample: int | None = None  # rows per age band x gender cell of Model B's training set; None: off
    model_filters: tuple[int, ...] = (32, 64, 128)
    dense_units: int = 128
    head_dropout: float = 0.3
    l2: float = 1e-4
    augment: bool | str = True
    age_loss: str = "huber"
    gender_loss_weight: float | None = None
    patience: int = 5
    lr_patience: int = 2
    lr_schedule: str = "plateau"
    cache: str | None = None
    flip_tta: bool = False
    transfer_finetune_layers: int = FINETUNE_LAYERS
    # How long lessons 08 and 10 train, in seconds: None runs the full recipe (as the shipped models
    # were trained); AGECOURSE_FULL_RECIPE=1 sets None in every profile.
    lesson_budget_s: float | None = None
    # AGECOURSE_RETRAIN: lessons train now even when a model is saved (or shipped).
    retrain: bool = False
    # AGECOURSE_USE_SHIPPED: lessons 09-13 use the shipped models even in the ci profile (what a fresh
    # Colab runtime does: scripts/colab_check.py runs them so).
    use_shipped: bool = False
    # AGECOURSE_DEMO_MODEL: a .keras file the demo page runs instead of the shipped model.
    demo_model: str | None = None
    # AGECOURSE_ARTIFACTS: where lessons save splits and models (read once, in get_settings).
    artifacts_root: Path = Path("artifacts")
    # Faces in photos (agecourse.faces: lesson 13, `agecourse predict`, the demo): MTCNN's three stage
    # thresholds (P-Net, R-Net, O-Net; the first two are MTCNN's own defaults) and the smallest face
    # (box side, px of the photo as read) that is predicted; smaller faces are refused as too small.
    # Chosen on validation-split scenes by bench/bench_photo.py --split val (results/photo_val.json,
    # "chosen", with its rule): below 128 px the photo path lost more than 0.3 years of MAE.
    face_thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    face_min_side: int = 128
    data_note: str = ""

    @property
    def uses_synthetic(self) -> bool:
        """True when no real UTKFace copy is configured and synthetic faces stand in."""
        return self.data_dir is None

    @property
    def data_label(self) -> str:
        """Human-readable name of the data source, for titles and reports."""
        return "synthetic faces (not real people)" if self.uses_synthetic else f"UTKFace at {self.data_dir}"

    @property
    def artifacts_dir(self) -> Path:
        """Where lessons save and reload splits and models: ``artifacts_root`` (``AGECOURSE_ARTIFACTS``,
        else ``./artifacts``), one sub-folder per profile and data kind so they never mix."""
        return self.artifacts_root / f"{self.profile}-{'synthetic' if self.uses_synthetic else 'utkface'}"

    def replace(self, **changes) -> Settings:
        """Return a copy with some fields changed (a frozen dataclass cannot be edited in place)."""
        return dataclasses.replace(self, **changes)


_BASE: dict[str, dict] = {
    "ci": dict(
        image_size=48,
        batch_size=32,
        epochs=8,
        synthetic_count=600,
        max_images=600,
        learning_rate=3e-3,
        mixed_precision=False,
        transfer_image_size=64,
        transfer_epochs_frozen=1,
        transfer_epochs_finetune=1,
        model_filters=(16, 32, 64),
        # On the 600 synthetic faces, 4 epochs with full augmentation and ReduceLROnPlateau left the
        # age MAE barely below that of predicting the mean age; flips, a cosine decay and 8 epochs
        # cost seconds more and clearly learn, so the lessons' outputs in CI show a model that learns.
        augment="flip",
        lr_schedule="cosine",
        cache="memory",
    ),
    "cpu": dict(
        image_size=64,
        batch_size=64,
        epochs=24,
        synthetic_count=3000,
        # The full UTKFace is three times the part-1 sample the cpu recipes were timed on: a
        # stratified 8,000 keeps the in-memory image cache and Model B's cached views (lesson 10 prints
        # their size) within a Binder session's memory and each lesson's CPU time.
        max_images=8000,
        learning_rate=2e-3,
        mixed_precision=False,
        # Model B as bench/bench_model_b.py trains it (its three-seed scores are in bench/README.md):
        # alpha 0.5 on cached views of the frozen bottom, which is what fits this size into a CPU
        # budget (the textbook recipe, uncached, is the ci and gpu profiles'). 224 px, the ImageNet
        # weights' own size, chosen on the validation split (bench/tune.py b-224px against
        # b-keep-last-full-schedule at 160 px): lower age MAE and higher gender accuracy, for about
        # twice the training time. Twice the views for half the epochs (b-224px-8-views-6-epochs),
        # stronger weight decay (b-224px-weight-decay-0.05) and twice the gender loss weight
        # (b-224px-gender-weight-40) did no better on validation, flip-averaged as the recipe scores.
        transfer_image_size=224,
        transfer_alpha=0.5,
        transfer_epochs_frozen=3,
        transfer_epochs_finetune=12,
        transfer_dropout=0.5,
        transfer_cached_views=4,
        transfer_learning_rate=1e-3,
        transfer_finetune_learning_rate=5e-4,
        transfer_lr_schedule="cosine",
        # Chosen on the validation split (bench/tune.py restore-vs-last): with the cosine decay the
        # last fine-tuning epoch beat the restored lowest-loss one on age MAE.
        transfer_restore_best=False,
        # Chosen on the validation split (bench/tune.py flip-tta): lower age MAE for both models.
        flip_tta=True,
        # Narrower than the gpu profile's (32, 64, 128, 256): a third of the compute per image, so
        # three times the epochs fit in the same CPU time, which matters more on 5,500 faces.
        model_filters=(16, 32, 64, 128),
        # Flips only and a cosine decay over 24 epochs: chosen in earlier rounds whose trials saw the
        # test split too (bench/README.md says so); not re-tuned on validation since. The three-seed
        # scores of this recipe are in bench/README.md.
        augment="flip",
        lr_schedule="cosine",
        # Early stopping out of the way (patience = epochs), chosen on the validation split
        # (bench/tune.py a-seed-43-patience-6 vs a-seed-43-no-early-stop): with patience 6 one seed
        # stopped while the cosine rate was still high and the validation loss was still jumping. The
        # run still ends on its lowest-validation-loss epoch (restored); Model B, without
        # transfer_patience, uses it too (bench/tune.py b-keep-last-full-schedule).
        patience=24,
        lr_patience=1,
        cache="memory",
        # Lessons 08 and 10 train for this many seconds each (the full recipes take longer: their
        # training times are in bench/README.md), so that every lesson fits 10 minutes of a Binder
        # session; AGECOURSE_FULL_RECIPE=1 trains the full recipe.
        lesson_budget_s=240.0,
    ),
    "gpu": dict(
        image_size=128,
        batch_size=128,
        epochs=30,
        synthetic_count=10000,
        max_images=None,
        learning_rate=1e-3,
        mixed_precision=True,
        transfer_image_size=160,
        transfer_epochs_frozen=5,
        transfer_epochs_finetune=15,
        transfer_alpha=1.0,
        model_filters=(32, 64, 128, 256),
    ),
}


def cache_dir() -> Path:
    """Where downloads, extracted archives, converted images and synthetic faces go.

    ``AGECOURSE_DATA_DIR`` when set, else the user cache folder
    (``platformdirs.user_cache_dir("agecourse")``).
    """
    value = os.environ.get("AGECOURSE_DATA_DIR", "").strip()
    if value:
        return Path(value).expanduser()
    return Path(platformdirs.user_cache_dir("agecourse"))


def gpu_available() -> bool:
    """True if TensorFlow can see a GPU. Imports TensorFlow here, not at the top: it takes seconds,
    and most uses of the settings (the ``ci`` profile, the command line's data commands) need none."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def detect_profile() -> str:
    """Pick a profile: ``AGECOURSE_PROFILE`` if set, else ``gpu`` / ``ci`` / ``cpu`` by environment."""
    chosen = os.environ.get("AGECOURSE_PROFILE", "").strip().lower()
    if chosen:
        if chosen not in PROFILES:
            raise ValueError(f"AGECOURSE_PROFILE={chosen!r} is not one of {', '.join(PROFILES)}")
        return chosen
    if os.environ.get("CI"):
        return "ci"
    return "gpu" if gpu_available() else "cpu"


def data_from_env() -> tuple[bool, Path | None]:
    """What ``AGECOURSE_DATA`` asks for: ``(set, folder)``. ``set`` is False when the variable is
    unset or empty; ``folder`` is ``None`` when it is ``synthetic`` (never look for real faces)."""
    value = os.environ.get("AGECOURSE_DATA", "").strip()
    if not value:
        return False, None
    return True, None if value.lower() == SYNTHETIC else Path(value).expanduser()


SYNTHETIC = "synthetic"  # AGECOURSE_DATA=synthetic: never look for or download real faces
HOW_TO_GET_REAL_FACES = (
    "for real UTKFace faces run `agecourse data fetch` once (about 107 MB into the cache), "
    "or set AGECOURSE_DATA to a folder or archive of UTKFace images"
)


def in_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules


def auto_fetch_enabled(profile: str) -> bool:
    """Whether UTKFace is downloaded on first use without being asked: in Colab and in the ``gpu``
    profile, unless ``AGECOURSE_AUTO_FETCH=0``; never in ``ci``."""
    if profile == "ci":
        return False
    return env_flag("AGECOURSE_AUTO_FETCH", default=profile == "gpu" or in_colab())


def weights_dirs() -> list[Path]:
    """The folders ``AGECOURSE_WEIGHTS`` names (separated by ``os.pathsep``) where ImageNet weight
    files are looked for before the Keras cache (:func:`agecourse.backbones.weight_folders`)."""
    return [Path(p).expanduser() for p in os.environ.get("AGECOURSE_WEIGHTS", "").split(os.pathsep) if p.strip()]


def keras_home() -> Path:
    """Keras's own folder: ``KERAS_HOME``, else ``~/.keras`` (downloaded weights go to its ``models``)."""
    home = os.environ.get("KERAS_HOME", "").strip()
    return Path(home).expanduser() if home else Path.home() / ".keras"


UTKFACE_POINTER = "utkface.json"  # written into the cache by agecourse.download.fetch


def cached_utkface(cache: str | Path | None = None) -> Path | None:
    """The UTKFace folder an earlier :func:`agecourse.download.fetch` extracted into the cache
    (``cache``, default :func:`cache_dir`), or ``None``. Only a finished extraction of a download
    that passed every check counts (fetch records it in ``utkface.json`` after the checks, and the
    folder's ``.complete`` marker must exist); nothing is read but that record, so this is cheap."""
    record = Path(cache).expanduser() if cache is not None else cache_dir()
    try:
        info = json.loads((record / UTKFACE_POINTER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    folder = Path(info.get("folder", "")) if isinstance(info, dict) else None
    if folder and folder.is_dir() and folder.with_name(folder.name + ".complete").is_file():
        return folder
    return None


def choose_data(profile: str) -> tuple[Path | None, str]:
    """Where a run's faces come from, and one line saying so: ``(folder or None, note)``.

    In order: ``AGECOURSE_DATA`` (a path; ``synthetic`` means synthetic faces); the ``ci``
    profile's synthetic faces; a UTKFace copy already in the cache (:func:`cached_utkface`); else
    synthetic faces, with a note on how to get real ones. Downloading is not done here: lesson
    setup cells and the CLI then call :func:`agecourse.download.fetch_if_needed`, which downloads
    UTKFace in Colab and the ``gpu`` profile (:func:`auto_fetch_enabled`).
    """
    asked, path = data_from_env()
    if asked:
        return path, "" if path else "synthetic faces, as AGECOURSE_DATA=synthetic asks"
    if profile == "ci":
        return None, ""
    cached = cached_utkface()
    if cached is not None:
        return cached, f"UTKFace from the cache at {cached}"
    if auto_fetch_enabled(profile):
        return None, "synthetic faces until UTKFace is downloaded (lesson setup and the CLI do that on first use)"
    return None, f"using synthetic faces (not real people); {HOW_TO_GET_REAL_FACES}"


def env_flag(name: str, default: bool = False) -> bool:
    """An on/off environment variable: ``1``/``true``/``yes`` or ``0``/``false``/``no`` (any case);
    unset or empty gives ``default``. Any other value is an error naming the variable, so a typo does
    not pass silently."""
    value = os.environ.get(name, "").strip().lower()
    if value == "":
        return default
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    raise ValueError(f"{name}={value!r}: use 1 (on) or 0 (off)")


def recipe_settings(profile: str, **fields) -> Settings:
    """A profile's recipe as :class:`Settings` with ``fields`` changed, without looking for data or
    reading the environment (synthetic faces): what a shipped model's architecture is rebuilt from
    (:func:`agecourse.course_models.build`)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    values = dict(_BASE[profile])
    values.update(fields)
    return Settings(profile=profile, **values)


def environment_fields() -> dict:
    """The :class:`Settings` fields the environment sets (read here and nowhere else):

    * ``AGECOURSE_RETRAIN`` (flag) -> ``retrain``: lessons train now even when a model is saved or shipped;
    * ``AGECOURSE_USE_SHIPPED`` (flag) -> ``use_shipped``: lessons 09-13 use the shipped models, also in ``ci``;
    * ``AGECOURSE_FULL_RECIPE`` (flag) -> ``lesson_budget_s = None``: lessons 08 and 10 train the full recipe;
    * ``AGECOURSE_DEMO_MODEL`` -> ``demo_model``: a ``.keras`` file the demo page runs;
    * ``AGECOURSE_ARTIFACTS`` -> ``artifacts_root``: where lessons save splits and models.

    The profile (``AGECOURSE_PROFILE``), the data (``AGECOURSE_DATA``, ``AGECOURSE_DATA_DIR``,
    ``AGECOURSE_AUTO_FETCH``) and the weights (``AGECOURSE_WEIGHTS``) are read by the functions of
    this module that choose them.
    """
    fields: dict = {
        "retrain": env_flag("AGECOURSE_RETRAIN"),
        "use_shipped": env_flag("AGECOURSE_USE_SHIPPED"),
        "demo_model": os.environ.get("AGECOURSE_DEMO_MODEL", "").strip() or None,
        "artifacts_root": Path(os.environ.get("AGECOURSE_ARTIFACTS", "").strip() or "artifacts").expanduser(),
    }
    if env_flag("AGECOURSE_FULL_RECIPE"):
        fields["lesson_budget_s"] = None
    return fields


def get_settings(profile: str | None = None, data_dir: str | Path | None = None, **overrides) -> Settings:
    """Build the :class:`Settings` for a profile.

    Args:
        profile: ``"ci"``, ``"cpu"`` or ``"gpu"``; ``None`` detects it (see :func:`detect_profile`).
        data_dir: a folder or archive of UTKFace images; ``None`` chooses with :func:`choose_data`
            (``AGECOURSE_DATA``, a copy in the cache, or synthetic faces). The ``ci`` profile
            ignores the environment and the cache and always uses synthetic faces, so tests never
            depend on a local copy of the dataset. Nothing is downloaded here (see
            :func:`agecourse.download.fetch_if_needed`).
        **overrides: any :class:`Settings` field, e.g. ``epochs=2``.
    """
    profile = (profile or detect_profile()).lower()
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    note = ""
    if data_dir is None and profile != "ci":
        data_dir, note = choose_data(profile)
    values = dict(_BASE[profile])
    values.update(environment_fields())
    values.update(overrides)
    values.setdefault("data_note", note)
    return Settings(profile=profile, data_dir=Path(data_dir) if data_dir else None, **values)
