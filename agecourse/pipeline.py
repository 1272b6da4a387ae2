"""The whole job end to end, and the saved artifacts that let every lesson run on its own.

Lessons 03 and 08 save a split and a trained Model A under ``settings.artifacts_dir``; a later
lesson calls :func:`get_split` / :func:`get_model_a`, which reload them when present and otherwise
rebuild them quickly with the profile's settings, saying so. Lesson 08 (train) builds Model A with
:func:`build_model_a_for` and asks :func:`should_train_model_a` whether to train or reuse a saved
model (the ``ci`` profile always trains; ``cpu``/``gpu`` reuse one unless ``AGECOURSE_RETRAIN=1``).
``agecourse run`` calls :func:`run_main`: load, split, train Model A, evaluate on the test split,
write metrics and plots.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from agecourse.config import Settings
from agecourse.data import Split, load_course_data, make_dataset, split_dataset


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


def datasets(
    settings: Settings,
    split: Split,
    augment=None,
    image_size: int | None = None,
    train_images=None,
    sample_weight: str | None = None,
):
    """``(train, val, test)`` ``tf.data`` pipelines for a split: training shuffled (seeded, again
    every epoch) and optionally augmented, validation and test in file order.

    ``train_images`` replaces ``split.train`` (re-sampled rows, lesson 12) and ``sample_weight``
    names its column of per-image loss weights (lesson 04), which the training batches then carry.

    With ``settings.cache == "memory"`` the training and validation images are decoded and resized
    once and kept in RAM (``n x size x size x 3`` float32: about 270 MB for 5,500 images at 64 px);
    :func:`agecourse.data.make_dataset` shuffles *after* the cache, so every epoch sees a new order.
    """
    size = image_size or settings.image_size
    train = make_dataset(
        split.train if train_images is None else train_images,
        size,
        settings.batch_size,
        shuffle=True,
        seed=settings.seed,
        cache=settings.cache,
        augment=augment,
        sample_weight=sample_weight,
    )
    val = make_dataset(split.val, size, settings.batch_size, cache=settings.cache)
    test = make_dataset(split.test, size, settings.batch_size)
    return train, val, test


def augmentation_for(settings: Settings):
    """The augmentation layer ``settings.augment`` asks for: lesson 05's full set (``True``),
    mirror images only (``"flip"``) or none (``False`` / ``None``)."""
    from agecourse.augment import make_augmentation

    if settings.augment in (False, None, "none"):
        return None
    if settings.augment is True or settings.augment == "full":
        return make_augmentation()
    if settings.augment == "flip":
        return make_augmentation(rotation=0, zoom=0, translation=0, contrast=0, brightness=0)
    raise ValueError(f"settings.augment={settings.augment!r}: use True (or 'full'), 'flip' or False (or 'none')")


def build_model_a_for(settings: Settings, age_init: float | None = None):
    """Model A built and compiled with the recipe in ``settings`` (lessons 06-07): filters, head
    size, dropout, L2, augmentation, age loss and loss weights, AdamW at ``settings.learning_rate``.

    ``age_init`` starts the age head at that age (use the training split's mean age). This is the
    one place the recipe is turned into a model, so lesson 08, ``agecourse run`` and the benchmark
    train the same network.
    """
    from agecourse.models import DEFAULT_AGE_INIT, build_model_a, compile_model, default_loss_weights

    model = build_model_a(
        settings.image_size,
        filters=settings.model_filters,
        dropout=settings.head_dropout,
        l2=settings.l2,
        dense_units=settings.dense_units,
        age_init=DEFAULT_AGE_INIT if age_init is None else float(age_init),
        augment=augmentation_for(settings),
    )
    weights = default_loss_weights(settings.age_loss)
    if settings.gender_loss_weight is not None:
        weights = dict(weights, gender=float(settings.gender_loss_weight))
    return compile_model(model, learning_rate=settings.learning_rate, age_loss=settings.age_loss, loss_weights=weights)


def train_model_a(
    settings: Settings,
    split: Split,
    epochs: int | None = None,
    verbose: int | str = "auto",
    checkpoint: str | os.PathLike | None = None,
    time_budget_s: float | None = None,
    log_csv: str | os.PathLike | None = None,
    train_images=None,
    sample_weight: str | None = None,
):
    """Build, compile and train Model A with the profile's settings; returns ``(model, history)``.

    Training uses :func:`agecourse.training.make_callbacks` (early stopping with the best weights
    restored, the learning-rate schedule of ``settings.lr_schedule``, optional checkpoint and CSV
    log) and stops early if ``time_budget_s`` seconds of training would be exceeded.

    ``train_images`` replaces ``split.train`` (re-sampled rows, lesson 12's mitigation) and
    ``sample_weight`` names a column of per-image loss weights (lesson 04); validation stays
    ``split.val``. The age head then starts at the (weighted) mean age the loss sees.
    """
    import numpy as np

    from agecourse.training import set_seed, train_model

    set_seed(settings.seed)
    table = split.train if train_images is None else train_images
    if sample_weight is not None and sample_weight not in table:
        raise ValueError(f"the training table has no {sample_weight!r} column to weight by")
    train, val, _ = datasets(settings, split, train_images=table, sample_weight=sample_weight)
    weights = table[sample_weight] if sample_weight else None
    model = build_model_a_for(settings, age_init=float(np.average(table["age"], weights=weights)))
    history = train_model(
        model,
        train,
        val,
        epochs=epochs or settings.epochs,
        checkpoint=checkpoint,
        patience=settings.patience,
        lr_patience=settings.lr_patience,
        verbose=verbose,
        time_budget_s=time_budget_s,
        log_csv=log_csv,
        lr_schedule=settings.lr_schedule,
        learning_rate=settings.learning_rate,
    )
    return model, history


def model_a_path(settings: Settings) -> Path:
    """Where lesson 08 saves Model A and lessons 09-13 look for it: ``artifacts_dir/model_a.keras``.
    Its training history is saved beside it as ``model_a_history.json``."""
    return settings.artifacts_dir / "model_a.keras"


def save_model_a(settings: Settings, model, history: dict[str, list[float]] | None = None) -> Path:
    """Save a trained Model A (and its history, if given) where :func:`get_model_a` finds it."""
    from agecourse.training import save_history

    path = model_a_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    if history is not None:
        save_history(history, path.with_name("model_a_history.json"))
    return path


def saved_model_a_problem(settings: Settings) -> str:
    """Why the saved Model A cannot be reused for ``settings`` ("" when it can): missing, unreadable,
    or built for another image size (e.g. saved before the profile's ``image_size`` changed)."""
    return _load_compatible_model_a(settings)[1]


def _load_compatible_model_a(settings: Settings):
    """``(model, "")`` when a usable Model A is saved for ``settings``, else ``(None, reason)``."""
    import keras

    path = model_a_path(settings)
    if not path.exists():
        return None, f"no saved Model A at {path}"
    try:
        model = keras.models.load_model(path)
    except (OSError, ValueError) as err:
        return None, f"{path} could not be loaded ({err})"
    size = model.input_shape[1]
    if size != settings.image_size:
        return None, f"{path} takes {size} px images but the '{settings.profile}' profile uses {settings.image_size} px"
    return model, ""


def retrain_requested(variable: str = "AGECOURSE_RETRAIN") -> bool:
    """True when ``AGECOURSE_RETRAIN`` is set to 1 / true / yes: lesson 08 then trains even if a
    model is saved. Any other non-empty value is an error, so a typo does not pass silently."""
    value = os.environ.get(variable, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ValueError(f"{variable}={value!r}: use 1 (retrain) or 0 (reuse the saved model)")


def should_train_model_a(settings: Settings, retrain: bool | None = None) -> tuple[bool, str]:
    """Lesson 08's choice: train now, or reuse the saved Model A? Returns ``(train, reason)``.

    The ``ci`` profile always trains (it takes seconds and is what the lesson demonstrates). The
    ``cpu`` and ``gpu`` profiles reuse a compatible saved model, because training there takes
    minutes to hours, unless ``retrain`` is true (default: :func:`retrain_requested`).
    """
    if settings.profile == "ci":
        return True, "the 'ci' profile always trains (a few seconds on synthetic faces)"
    if retrain is None:
        retrain = retrain_requested()
    if retrain:
        return True, "retraining was requested (AGECOURSE_RETRAIN=1)"
    problem = saved_model_a_problem(settings)
    if problem:
        return True, problem
    return False, f"reusing the saved {model_a_path(settings)} (set AGECOURSE_RETRAIN=1 to train again)"


def load_model_a(settings: Settings):
    """``(model, history)`` saved by :func:`save_model_a`; ``history`` is ``None`` if it was not
    saved. Raises ``FileNotFoundError`` naming the path when nothing is saved."""
    import keras

    from agecourse.training import load_history

    path = model_a_path(settings)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no saved Model A (train it in lesson 08 or call get_model_a)")
    history_path = path.with_name("model_a_history.json")
    history = load_history(history_path) if history_path.exists() else None
    return keras.models.load_model(path), history


def get_model_a(settings: Settings, split: Split | None = None, retrain: bool = False, verbose: bool = True):
    """Model A for ``settings``: loaded from ``model_a.keras`` if saved (and built for the profile's
    image size), else trained now with :func:`train_model_a` and saved with :func:`save_model_a`."""
    path = model_a_path(settings)
    model, problem = (None, "retraining was requested") if retrain else _load_compatible_model_a(settings)
    if model is not None:
        if verbose:
            print(f"Loaded the saved Model A from {path}")
        return model
    if verbose:
        print(f"{problem}: training Model A now with the '{settings.profile}' settings.")
    split = split if split is not None else get_split(settings, verbose=verbose)
    model, history = train_model_a(settings, split, verbose=2 if verbose else 0)
    save_model_a(settings, model, history)
    return model


def run_main(settings: Settings, out_dir: str | os.PathLike = "outputs/run", verbose: int | str = 2) -> dict:
    """Load -> split -> train Model A -> evaluate on the test split -> write JSON and PNG files.

    Writes ``metrics.json``, ``history.json``, ``model_a.keras``, ``split.csv`` and plots into
    ``out_dir`` and returns the metrics dict (which includes the data source and timings).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from agecourse import evaluate as ev
    from agecourse.training import enable_mixed_precision, plot_history, save_history

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    enable_mixed_precision(settings.mixed_precision)
    loaded = load_course_data(settings)
    print(f"Data: {loaded.summary()}")
    if len(loaded.rejects):
        loaded.rejects.to_csv(out / "rejects.csv", index=False)
        print(f"  rejected files and reasons: {out / 'rejects.csv'}")
    split = split_dataset(loaded.images, seed=settings.seed)
    split.save(out / "split.csv")
    print(f"Split (seed {settings.seed}): {split.sizes()}")
    model, history = train_model_a(settings, split, verbose=verbose)
    train_seconds = time.perf_counter() - start
    _, _, test = datasets(settings, split)
    table = ev.predict_table(model, test, split.test)
    metrics = ev.evaluate_table(table)
    metrics["data"] = {
        "source": loaded.source,
        "synthetic": settings.uses_synthetic,
        "accepted": len(loaded.images),
        "rejected": len(loaded.rejects),
        "split": split.sizes(),
    }
    metrics["settings"] = {
        "profile": settings.profile,
        "image_size": settings.image_size,
        "epochs_max": settings.epochs,
        "epochs_run": len(history.get("loss", [])),
        "batch_size": settings.batch_size,
        "seed": settings.seed,
        "filters": list(settings.model_filters),
    }
    metrics["seconds"] = {"total": round(time.perf_counter() - start, 1), "to_trained": round(train_seconds, 1)}
    model.save(out / "model_a.keras")
    save_history(history, out / "history.json")
    ev.save_metrics(metrics, out / "metrics.json")
    label = "synthetic faces" if settings.uses_synthetic else "UTKFace"
    figures = {
        "learning_curves.png": plot_history(history, f"Model A learning curves ({label})"),
        "predicted_vs_actual.png": ev.plot_predicted_vs_actual(table, f"Model A on the test split ({label})"),
        "age_error_histogram.png": ev.plot_error_histogram(table),
        "age_mae_per_band.png": ev.plot_band_mae({"Model A": table}),
        "gender_confusion_matrix.png": ev.plot_confusion_matrix(table),
    }
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
    print(
        f"Test: age MAE {metrics['age']['mae']:.2f} years, gender accuracy {metrics['gender']['accuracy']:.1%} "
        f"on {len(table)} {label} images; {metrics['seconds']['total']:.0f} s in all"
    )
    print(f"Wrote metrics, plots and the model to {out.resolve()}")
    return metrics
