"""The Colab-stack check: the course installed on Colab's own package versions, used as a student would.

Colab is the students' platform, and its packages are older than the newest releases the test suite
installs. This check (run by ``.ci/run``):

1. builds ``.venv-colab`` with Colab's versions of every package the course shares with Colab
   (``constraints/colab.txt``, Colab's own ``pip freeze``): the course is resolved against those pins,
   then removed again with the packages Colab does not ship, so the environment holds only Colab's;
2. installs the course into it **the way a lesson's setup cell does** (``pip install`` of the source,
   non-editable, no constraints) and fails when pip changes any package Colab ships;
3. runs every lesson notebook alone from an empty folder (``ci`` profile: synthetic faces), and
   lessons 09-13 once more with the shipped models, as a fresh Colab runtime uses them
   (``AGECOURSE_USE_SHIPPED=1``);
4. runs ``agecourse predict`` on a photograph with the shipped model, and builds the demo app with
   Colab's ipywidgets 7.7 and analyses a photo through it.

    python scripts/colab_check.py [--lessons 9 13] [--no-notebooks] [--rebuild]

Exit status 0 when everything passed; 1 with one line per failure otherwise. Python 3.13 (Colab's)
cannot be installed on these machines; the environment uses the Python that runs this script.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints" / "colab.txt"
VENV = ROOT / ".venv-colab"
NOTEBOOKS = ROOT / "notebooks"
# What the check itself needs inside the environment, all of them packages Colab ships: running
# notebooks (nbclient, ipykernel) and the OpenCV build whose replacement the course once caused.
CHECK_TOOLS = ("nbclient", "nbformat", "ipykernel", "opencv-python-headless")
SHIPPED_LESSONS = (9, 10, 11, 12, 13)
NOTEBOOK_TIMEOUT_S = 900


def canonical(name: str) -> str:
    """A package name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def colab_versions(path: Path = CONSTRAINTS) -> dict[str, str]:
    """``{package: version}`` of Colab's runtime, from the constraints file (comments skipped)."""
    versions = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            versions[canonical(name)] = version.strip()
    return versions


def installed(python: Path) -> dict[str, str]:
    """``{package: version}`` of what ``python``'s environment has."""
    out = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {canonical(row["name"]): row["version"] for row in json.loads(out)}


def changed_colab_packages(before: dict[str, str], after: dict[str, str], colab: dict[str, str]) -> list[str]:
    """Colab packages whose installed version an install changed (added, removed or another
    version), as ``"name before -> after"`` lines; the course itself is not one of them."""
    lines = []
    for name in sorted(colab):
        if name != "agecourse" and before.get(name) != after.get(name):
            lines.append(
                f"{name} {before.get(name, 'absent')} -> {after.get(name, 'absent')} (Colab ships {colab[name]})"
            )
    return lines


def pip(python: Path, *args: str, log: Path | None = None) -> subprocess.CompletedProcess:
    """Run pip in the environment quietly; the output is kept for the error message."""
    result = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", *args], capture_output=True, text=True
    )
    if log is not None:
        log.write_text(result.stdout + result.stderr, encoding="utf-8")
    return result


def stamp() -> str:
    """What the environment was built from: the constraints and the course's requirements."""
    digest = hashlib.sha256()
    for path in (CONSTRAINTS, ROOT / "pyproject.toml"):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build_environment(venv: Path, rebuild: bool) -> Path:
    """``venv`` with Colab's versions of the packages the course needs (and nothing else); rebuilt when
    the constraints or ``pyproject.toml`` changed. Returns its Python."""
    python = venv / "bin" / "python"
    stamp_file = venv / ".colab-stamp"
    if not rebuild and python.exists() and stamp_file.exists() and stamp_file.read_text() == stamp():
        print(f"[colab] reusing {venv} (built from the same constraints and requirements)")
        return python
    print(f"[colab] building {venv} with Colab's versions ({CONSTRAINTS.relative_to(ROOT)})", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    colab = colab_versions()
    # Resolve the course against Colab's pins: if a requirement needs another version of a package
    # Colab ships, this fails and says which.
    result = pip(python, "install", "--quiet", "-c", str(CONSTRAINTS), str(ROOT), *CHECK_TOOLS)
    if result.returncode:
        raise SystemExit("[colab] FAIL: the course cannot be installed on Colab's versions:\n" + result.stderr[-3000:])
    # Back to Colab's packages only: the course and what Colab does not ship are removed, so that the
    # setup cell's install (next step) starts where a Colab runtime starts.
    extra = sorted(name for name in installed(python) if name not in colab and name not in ("pip", "setuptools"))
    if extra:
        pip(python, "uninstall", "--quiet", "-y", *extra)
    stamp_file.write_text(stamp())
    return python


def install_like_the_setup_cell(python: Path, report_dir: Path) -> list[str]:
    """``pip install`` of the course's source, non-editable and unconstrained, as a lesson's setup
    cell does on Colab (``%pip install "agecourse @ git+..."``). Returns the changed Colab packages."""
    colab = colab_versions()
    before = installed(python)
    report = report_dir / "pip-report.json"
    result = pip(python, "install", "--quiet", "--report", str(report), str(ROOT), log=report_dir / "pip-install.log")
    if result.returncode:
        raise SystemExit("[colab] FAIL: `pip install` of the course failed:\n" + result.stderr[-3000:])
    after = installed(python)
    changed = changed_colab_packages(before, after, colab)
    added = sorted(set(after) - set(before) - {"agecourse"})
    print(f"[colab] setup-cell install: added {len(added)} packages Colab does not ship ({', '.join(added) or 'none'})")
    return changed


def lesson_paths(lessons: list[int] | None) -> list[tuple[int, Path]]:
    """``(number, path)`` of the lesson notebooks, optionally only ``lessons``."""
    found = []
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        number = int(path.name[:2])
        if lessons is None or number in lessons:
            found.append((number, path))
    return found


RUN_NOTEBOOK = """
import sys, nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
path, folder, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3])
nb = nbformat.read(path, as_version=4)
try:
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": folder}}).execute()
except CellExecutionError as err:
    print(str(err)[-2500:])
    sys.exit(1)
"""


def tail(text: str, lines: int = 25) -> str:
    """The last ``lines`` lines of a failure's output, where its error is."""
    return "\n".join(text.strip().splitlines()[-lines:])


def run_lesson(python: Path, number: int, path: Path, shipped: bool) -> str:
    """Run one lesson alone from an empty folder in the Colab environment; ``""`` or why it failed."""
    with tempfile.TemporaryDirectory(prefix=f"colab-lesson{number:02d}-") as tmp:
        folder = Path(tmp)
        copy = folder / path.name
        shutil.copyfile(path, copy)
        env = dict(os.environ)
        for variable in [key for key in env if key.startswith("AGECOURSE_")]:
            del env[variable]
        env.update(
            AGECOURSE_PROFILE="ci",
            AGECOURSE_ARTIFACTS=str(folder / "artifacts"),
            AGECOURSE_DATA_DIR=str(folder / "cache"),
            MPLBACKEND="Agg",
            PYTHONNOUSERSITE="1",
        )
        if shipped:
            env["AGECOURSE_USE_SHIPPED"] = "1"
        result = subprocess.run(
            [str(python), "-c", RUN_NOTEBOOK, str(copy), str(folder), str(NOTEBOOK_TIMEOUT_S)],
            capture_output=True,
            text=True,
            env=env,
            cwd=folder,
        )
    return "" if result.returncode == 0 else tail(result.stdout + result.stderr)


SHIPPED_CHECK = """
import numpy as np
from agecourse import course_models
for name in course_models.names():
    model = course_models.load(name)
    got, want = course_models.reference_prediction(model), course_models.entry(name)["reference"]
    for key in ("age", "gender"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-4, atol=1e-4, err_msg=f"{name} {key}")
    print(name, "reproduces its reference prediction:", [round(v, 3) for v in got["age"]])
"""


DEMO_CHECK = """
import io, sys
import ipywidgets
from PIL import Image
from matplotlib import cbook
from agecourse import demo_app, model_choice
assert ipywidgets.__version__.startswith("7."), ipywidgets.__version__
chosen, about = model_choice.for_demo()
assert "model-b" in about, about
photo = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
app = demo_app.make_app(
    chosen.model, about=about, age_interval=chosen.age_interval, gender_temperature=chosen.gender_temperature
)
data = open(photo, "rb").read()
status = app.analyse(data, "grace_hopper.jpg")
print("ipywidgets", ipywidgets.__version__, "->", status)
"""


def check_predict_and_demo(python: Path) -> list[str]:
    """Both shipped models load and reproduce their registry's reference predictions, ``agecourse
    predict`` on a photograph with the shipped model, and the demo app under Colab's ipywidgets:
    ``[]`` or the failures."""
    failures = []
    # Run from an empty folder: from the checkout, ``python -c`` would import its agecourse/ folder
    # instead of the installed package.
    elsewhere = tempfile.mkdtemp(prefix="colab-predict-")
    photo = subprocess.run(
        [
            str(python),
            "-c",
            "from matplotlib import cbook; print(cbook.get_sample_data('grace_hopper.jpg', asfileobj=False))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=elsewhere,
    ).stdout.strip()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AGECOURSE_")}
    shipped = subprocess.run([str(python), "-c", SHIPPED_CHECK], capture_output=True, text=True, env=env, cwd=elsewhere)
    if shipped.returncode != 0:
        failures.append(f"a shipped model does not load or predict as recorded: {tail(shipped.stderr)}")
    else:
        for line in shipped.stdout.strip().splitlines():
            print(f"[colab] {line}")
    predict = subprocess.run(
        [str(python.parent / "agecourse"), "predict", photo, "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=elsewhere,
    )
    if predict.returncode != 0:
        failures.append(f"agecourse predict failed ({predict.returncode}): {tail(predict.stderr)}")
    else:
        faces = json.loads(predict.stdout)[0]["faces"]
        print(f"[colab] agecourse predict: {len(faces)} face(s), age {faces[0]['age']:.0f}" if faces else "no face")
        if len(faces) != 1:
            failures.append(f"agecourse predict found {len(faces)} faces on grace_hopper.jpg, expected 1")
    demo = subprocess.run([str(python), "-c", DEMO_CHECK], capture_output=True, text=True, env=env, cwd=elsewhere)
    shutil.rmtree(elsewhere, ignore_errors=True)
    if demo.returncode != 0:
        failures.append(f"the demo app failed under Colab's ipywidgets: {tail(demo.stderr)}")
    else:
        print(f"[colab] demo app: {demo.stdout.strip().splitlines()[-1]}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lessons", type=int, nargs="*", help="only these lessons (default: all)")
    parser.add_argument("--no-notebooks", action="store_true", help="skip the lesson notebooks")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the environment from scratch")
    parser.add_argument("--venv", type=Path, default=VENV, help="where the Colab-like environment lives")
    args = parser.parse_args(argv)
    start = time.monotonic()
    python = build_environment(args.venv, args.rebuild)
    failures = []
    changed = install_like_the_setup_cell(python, args.venv)
    if changed:
        failures += [f"the setup cell's install changed a Colab package: {line}" for line in changed]
    versions = installed(python)
    print(
        "[colab] stack: "
        + ", ".join(f"{name} {versions.get(name)}" for name in ("tensorflow", "keras", "numpy", "ipywidgets"))
    )
    if not args.no_notebooks:
        runs = [(n, p, False) for n, p in lesson_paths(args.lessons)]
        runs += [(n, p, True) for n, p in lesson_paths(args.lessons) if n in SHIPPED_LESSONS]
        for number, path, shipped in runs:
            began = time.monotonic()
            problem = run_lesson(python, number, path, shipped)
            label = f"lesson {number:02d}" + (" with the shipped models" if shipped else "")
            print(
                f"[colab] {label}: {'ok' if not problem else 'FAILED'} ({time.monotonic() - began:.0f} s)", flush=True
            )
            if problem:
                failures.append(f"{label} failed:\n{problem}")
    failures += check_predict_and_demo(python)
    print(f"[colab] {time.monotonic() - start:.0f} s in all")
    for failure in failures:
        print(f"[colab] FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
