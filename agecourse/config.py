"""Run profiles: one settings object that every notebook and the CLI read.

Introduced in lesson 01 (setup cell) and used by every lesson after it.

Three profiles cover the places the course runs:

* ``ci``  -- synthetic faces, tiny images, a few epochs: seconds on a laptop, used by the tests.
* ``cpu`` -- Binder or a laptop: real UTKFace if a local copy is configured, smaller images.
* ``gpu`` -- Colab with a GPU: full data, larger images, mixed precision.

The profile is chosen by ``AGECOURSE_PROFILE``; without it, a visible GPU means ``gpu``, a
``CI`` environment variable means ``ci``, and anything else means ``cpu``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

PROFILES = ("ci", "cpu", "gpu")


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
    (:func:`agecourse.transfer_training.train_two_phase_cached`), which is what makes a 160 px, alpha 0.5
    MobileNetV2 fit a CPU budget.
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
    extra: dict = field(default_factory=dict)

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
        """Where lessons save and reload splits and models: ``AGECOURSE_ARTIFACTS`` or
        ``./artifacts``, one sub-folder per profile and data kind so they never mix."""
        root = Path(os.environ.get("AGECOURSE_ARTIFACTS", "artifacts")).expanduser()
        return root / f"{self.profile}-{'synthetic' if self.uses_synthetic else 'utkface'}"

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
        # Measured on the 600 synthetic faces: 4 epochs with full augmentation and ReduceLROnPlateau
        # left the age MAE at 16.3 (predicting the mean gives ~17); flips, a cosine decay and 8
        # epochs reach 12.2 for ~10 s more, so the lessons' outputs in CI show a model that learns.
        augment="flip",
        lr_schedule="cosine",
        cache="memory",
    ),
    "cpu": dict(
        image_size=64,
        batch_size=64,
        epochs=24,
        synthetic_count=3000,
        max_images=None,
        learning_rate=2e-3,
        mixed_precision=False,
        # Model B as bench/bench_model_b.py trains it (5.19 MAE / 86.7 % on the real part-1 sample in
        # 10 minutes): the textbook recipe at 96 px, alpha 0.35 (3 + 6 epochs) reached only 7.40 / 77.7 %,
        # worse than Model A, because at a size that fits a CPU uncached the backbone sees too little.
        transfer_image_size=160,
        transfer_alpha=0.5,
        transfer_epochs_frozen=3,
        transfer_epochs_finetune=12,
        transfer_dropout=0.5,
        transfer_cached_views=4,
        transfer_learning_rate=1e-3,
        transfer_finetune_learning_rate=5e-4,
        transfer_lr_schedule="cosine",
        # Narrower than the gpu profile's (32, 64, 128, 256): a third of the compute per image, so
        # three times the epochs fit in the same CPU time, which matters more on 5,500 faces.
        model_filters=(16, 32, 64, 128),
        # Trial on 5,500 real faces, 2 idle cores: flips only plus a cosine decay over 12 epochs
        # (8.5 minutes) reached 5.8 MAE / 84 % on the test split, and 24 epochs 5.55 / 85.8 %
        # (bench/README.md has the trials).
        augment="flip",
        lr_schedule="cosine",
        patience=6,
        lr_patience=1,
        cache="memory",
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


def data_dir_from_env() -> Path | None:
    """The real-data location from ``AGECOURSE_DATA``, or ``None`` (then synthetic faces are used)."""
    value = os.environ.get("AGECOURSE_DATA", "").strip()
    return Path(value).expanduser() if value else None


def get_settings(profile: str | None = None, data_dir: str | Path | None = None, **overrides) -> Settings:
    """Build the :class:`Settings` for a profile.

    Args:
        profile: ``"ci"``, ``"cpu"`` or ``"gpu"``; ``None`` detects it (see :func:`detect_profile`).
        data_dir: a folder or archive of UTKFace images; ``None`` reads ``AGECOURSE_DATA``.
            The ``ci`` profile ignores the environment variable and always uses synthetic faces,
            so tests never depend on a local copy of the dataset.
        **overrides: any :class:`Settings` field, e.g. ``epochs=2``.
    """
    profile = (profile or detect_profile()).lower()
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if data_dir is None and profile != "ci":
        data_dir = data_dir_from_env()
    values = dict(_BASE[profile])
    values.update(overrides)
    return Settings(profile=profile, data_dir=Path(data_dir) if data_dir else None, **values)
