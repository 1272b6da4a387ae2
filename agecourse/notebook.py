"""What the first code cell of every lesson calls: versions, profile, GPU check, seed.

Introduced in lesson 01; every lesson's setup cell ends with ``settings = setup(lesson=N)``.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import warnings

import matplotlib
import numpy
import pandas

from agecourse import __version__
from agecourse.config import Settings, get_settings, in_colab
from agecourse.download import fetch_if_needed

# Where the course lives; scripts/badges.py writes these into every notebook's badge and setup cell.
COURSE_REPO = "agecourse/agecourse"
COURSE_REF = "main"

LESSONS = {
    1: "01_load",
    2: "02_explore",
    3: "03_preprocess",
    4: "04_balance",
    5: "05_augment",
    6: "06_build_cnn",
    7: "07_compile",
    8: "08_train",
    9: "09_evaluate",
    10: "10_transfer",
    11: "11_gradcam",
    12: "12_bias",
    13: "13_deploy",
}


def quiet_tensorflow(show: bool = False) -> None:
    """Import TensorFlow without its start-up lines reaching the output (a lesson's or the terminal).

    TensorFlow's C++ core writes notes on oneDNN, missing CUDA drivers, CPU instructions and absl's
    "log messages before absl::InitializeLog()" straight to the process's stderr while it loads and
    finds its devices, before its logging is set up, so ``TF_CPP_MIN_LOG_LEVEL`` alone does not
    silence them all (and Jupyter forwards that stderr into the cell's output). They are captured
    into a temporary file during the import and the device search and shown only if these fail.
    Afterwards C++ messages below errors and absl's and TensorFlow's Python logs below errors are
    switched off. ``show=True`` (the command line's ``AGECOURSE_DEBUG=1``) leaves everything visible.
    Call it before anything imports TensorFlow; later calls do nothing.
    """
    if show or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            # lazy: TensorFlow is imported here, with stderr captured, so that its start-up lines stay quiet
            import tensorflow as tf

            tf.config.list_physical_devices()  # loads the device drivers, which log as they start
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    tf.get_logger().setLevel("ERROR")


def versions() -> dict[str, str]:
    """Versions of Python and the main libraries, as printed by :func:`setup`."""
    # lazy: TensorFlow, Keras and agecourse.training (which imports them) are imported inside the
    # functions: setup imports it through quiet_tensorflow first so that its start-up lines stay quiet,
    # and bias_results imports this module without needing TensorFlow
    import keras
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "agecourse": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
    }


# Published lesson run times (bench/bench_notebooks.py, shipped in agecourse/results/): label, file.
# No gpu run is published: the machines the course is measured on have no GPU.
TIMINGS = (
    ("ci profile, synthetic faces", "notebooks_ci"),
    ("cpu profile, synthetic faces", "notebooks_cpu"),
    ("cpu profile, real faces", "notebooks_cpu_utkface"),
    ("gpu profile", "notebooks_gpu"),
)


def lesson_time(lesson: int, timings: tuple[tuple[str, str], ...] = TIMINGS) -> str:
    """One line on how long ``lesson`` took in each published run of the lessons (minutes and peak
    memory of the whole notebook, the machine and the date), printed by :func:`setup` before any cell
    that trains. A profile without a finished run of the lesson says "not measured"; a lesson that no
    run covers gives just "not measured"."""
    from agecourse import results

    parts, measured = [], False
    for label, name in timings:
        try:
            run = results.load(name)
        except FileNotFoundError:
            run = {"lessons": {}}
        record = next((r for r in run["lessons"].values() if r.get("lesson") == lesson), None)
        if record is None or record.get("status") != "ok":
            parts.append(f"{label}: not measured")
            continue
        measured = True
        machine = run["machine"]
        parts.append(
            f"{label}: {record['seconds'] / 60:.1f} min, peak memory {record['peak_rss_mb'] / 1000:.1f} GB "
            f"({machine['cores']} CPU cores, {run['when'][:10]})"
        )
    return "; ".join(parts) if measured else "not measured"


def setup(
    lesson: int, profile: str | None = None, seed: int | None = None, quiet: bool = False, **overrides
) -> Settings:
    """Prepare a lesson: choose the profile, seed everything, check for a GPU, print versions.

    The data come from :func:`agecourse.config.choose_data`, then
    :func:`agecourse.download.fetch_if_needed`: in Colab and the ``gpu`` profile UTKFace is
    downloaded into the cache on first use; elsewhere a cached copy is used when present; the
    printed ``data`` lines say which, and how to get real faces when synthetic ones stand in (a
    failed download never stops the lesson: it falls back to synthetic faces with a warning).

    In the ``gpu`` profile mixed precision is turned on. When Colab has no GPU runtime a warning
    says how to get one (Runtime > Change runtime type > GPU). Returns the :class:`Settings`.
    """
    quiet_tensorflow()  # before anything below imports TensorFlow
    import tensorflow as tf  # lazy: see versions

    from agecourse.training import enable_mixed_precision, set_seed  # lazy: see versions

    gpus = tf.config.list_physical_devices("GPU")
    settings = fetch_if_needed(get_settings(profile, **overrides))
    if seed is not None:
        settings = settings.replace(seed=seed)
    set_seed(settings.seed)
    policy = enable_mixed_precision(settings.mixed_precision and bool(gpus))
    if settings.mixed_precision and not gpus:
        warnings.warn("the 'gpu' profile asks for mixed precision but no GPU is visible: using float32", stacklevel=2)
    if in_colab() and not gpus:
        warnings.warn(
            "This Colab runtime has no GPU: training will be slow. "
            "Use Runtime > Change runtime type > GPU, then run the notebook again.",
            stacklevel=2,
        )
    if not in_colab():
        matplotlib.rcParams["figure.dpi"] = 90
    if quiet and settings.data_note.startswith("WARNING"):
        print(settings.data_note)  # a failed download is never a silent switch to synthetic faces
    if not quiet:
        title = LESSONS.get(lesson, str(lesson))
        print(f"Lesson {title} | profile '{settings.profile}' | seed {settings.seed} | precision {policy}")
        print("  " + ", ".join(f"{k} {v}" for k, v in versions().items()))
        print(f"  GPU: {', '.join(g.name for g in gpus) if gpus else 'none (CPU only)'}")
        print(f"  data: {settings.data_label}")
        print(f"  this lesson's published run time: {lesson_time(lesson)}")
        if settings.data_note:
            print(f"  {settings.data_note}")
    return settings
