"""The command line's end-to-end job (``agecourse run`` / ``agecourse train``): load the data, split it,
train Model A with the profile's recipe, evaluate it on the test split, and write the metrics (JSON),
the plots (PNG), the model and the split into one folder. It follows lessons 01-09 in one call.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt

from agecourse import evaluate as ev
from agecourse.config import Settings
from agecourse.data import load_course_data, split_dataset
from agecourse.recipes import datasets, train_model_a
from agecourse.training import enable_mixed_precision, plot_history, save_history


def run_main(settings: Settings, out_dir: str | os.PathLike = "outputs/run", verbose: int | str = 2) -> dict:
    """Load -> split -> train Model A -> evaluate on the test split -> write JSON and PNG files.

    Training is the profile's full recipe (:func:`agecourse.recipes.train_model_a`) and the test
    split is scored with the profile's scoring recipe (:func:`agecourse.evaluate.score`: flip-averaged
    where ``settings.flip_tta``), as the benchmarks score it; ``metrics["predictions"]`` says which.

    Writes ``metrics.json``, ``history.json``, ``model_a.keras``, ``split.csv`` and plots into
    ``out_dir`` and returns the metrics dict (which includes the data source and timings).
    """
    matplotlib.use("Agg")  # files only: no window, also where a display exists
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
    table, metrics = ev.score(model, test, split.test, settings)  # the profile's scoring recipe
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
        "flip_tta": settings.flip_tta,
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
    print(f"Test ({label}): {ev.score_line(metrics)}; {metrics['seconds']['total']:.0f} s in all")
    print(f"Wrote metrics, plots and the model to {out.resolve()}")
    return metrics
