"""The whole job end to end, and the saved artifacts that let every lesson run on its own.

Lessons 03 and 08 save a split and a trained Model A under ``settings.artifacts_dir``; a later
lesson calls :func:`get_split` / :func:`get_model_a`, which reload them when present and otherwise
rebuild them quickly with the profile's settings, saying so. ``agecourse run`` calls
:func:`run_main`: load, split, train Model A, evaluate on the test split, write metrics and plots.
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


def datasets(settings: Settings, split: Split, augment=None, image_size: int | None = None):
    """``(train, val, test)`` ``tf.data`` pipelines for a split: training shuffled (seeded) and
    optionally augmented, validation and test in file order."""
    size = image_size or settings.image_size
    train = make_dataset(split.train, size, settings.batch_size, shuffle=True, seed=settings.seed, augment=augment)
    val = make_dataset(split.val, size, settings.batch_size)
    test = make_dataset(split.test, size, settings.batch_size)
    return train, val, test


def train_model_a(
    settings: Settings,
    split: Split,
    epochs: int | None = None,
    verbose: int | str = "auto",
    checkpoint: str | os.PathLike | None = None,
):
    """Build, compile and train Model A with the profile's settings; returns ``(model, history)``."""
    from agecourse.augment import make_augmentation
    from agecourse.models import build_model_a, compile_model
    from agecourse.training import set_seed, train_model

    set_seed(settings.seed)
    train, val, _ = datasets(settings, split)
    age_init = float(split.train["age"].mean())
    model = build_model_a(
        settings.image_size, filters=settings.model_filters, age_init=age_init, augment=make_augmentation()
    )
    compile_model(model, learning_rate=settings.learning_rate)
    history = train_model(model, train, val, epochs=epochs or settings.epochs, checkpoint=checkpoint, verbose=verbose)
    return model, history


def get_model_a(settings: Settings, split: Split | None = None, retrain: bool = False, verbose: bool = True):
    """Model A for ``settings``: loaded from ``model_a.keras`` if saved, else trained now and saved."""
    import keras

    path = settings.artifacts_dir / "model_a.keras"
    if path.exists() and not retrain:
        if verbose:
            print(f"Loaded the saved Model A from {path}")
        return keras.models.load_model(path)
    if verbose:
        print(f"No saved Model A at {path}: training one now with the '{settings.profile}' settings.")
    split = split if split is not None else get_split(settings, verbose=verbose)
    model, _ = train_model_a(settings, split, verbose=2 if verbose else 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
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


def get_model_b(settings: Settings, split: Split | None = None, retrain: bool = False, verbose: bool = True):
    """Model B (lesson 10): loaded from ``model_b.keras`` if saved, else trained now with
    :func:`agecourse.transfer.train_model_b` and saved."""
    import keras

    from agecourse.transfer import train_model_b  # also registers BackbonePreprocess for loading

    path = settings.artifacts_dir / "model_b.keras"
    if path.exists() and not retrain:
        if verbose:
            print(f"Loaded the saved Model B from {path}")
        return keras.models.load_model(path)
    if verbose:
        print(f"No saved Model B at {path}: training one now with the '{settings.profile}' settings.")
    split = split if split is not None else get_split(settings, verbose=verbose)
    model, _, _ = train_model_b(settings, split, verbose=2 if verbose else 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return model
