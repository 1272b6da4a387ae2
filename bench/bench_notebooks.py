"""Notebook run time: every lesson notebook run headless, top to bottom, in one profile.

Each notebook runs with nbclient in its own subprocess (so a hung kernel can be killed) with the
working directory ``notebooks/``, like a student who opens it. Lessons run in order and share one
artifacts folder, as a student's would: lesson 03 saves the split and lesson 08 the trained Model A
that later lessons reload. By default that folder and the data cache start empty, so every number is
a cold first run (lesson 01 includes making the synthetic faces in ``ci``; lesson 08 and 10 train);
``--artifacts`` / ``--cache`` reuse folders instead.

* ``ci``: synthetic faces, tiny settings (what the test suite runs under nbval).
* ``cpu``: as a Binder user without UTKFace runs it (no ``AGECOURSE_DATA``, an empty cache, so
  :func:`agecourse.config.choose_data` picks synthetic faces), or with ``--data PATH`` on real faces
  (``--data shared``: the UTKFace part-1 sample in ``../shared``), written to ``notebooks_cpu_utkface``.
  Lessons 08 and 10 train for the profile's ``lesson_budget_s``.

Each lesson records its seconds, the kernel's peak memory (the largest resident set of the kernel
process, from ``getrusage`` once it has exited) and any TensorFlow start-up line (absl, oneDNN, CUDA,
cpu_feature_guard) that reached a cell's output. The kernels get the environment a student has:
no ``TF_CPP_MIN_LOG_LEVEL``; the ImageNet weights Keras would download come from
``AGECOURSE_WEIGHTS`` (default ``../shared/weights`` where it exists: this machine is offline).
A failure or a timeout is recorded (cell, error) and the run goes on with the next lesson.

    python bench/bench_notebooks.py --profile ci [--lessons 1 2 3] [--timeout 600] [--merge]
    python bench/bench_notebooks.py --profile cpu [--data shared]

``--merge`` keeps the other lessons of an earlier result, so a long profile can run in batches; each
lesson records when it ran and the load before it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    LESSON_FIELDS,
    RESULTS,
    ROOT,
    SHARED_DATA,
    SHARED_WEIGHTS,
    load_average,
    settings_record,
    write_result,
)

NOTEBOOKS = ROOT / "notebooks"
_LESSON = re.compile(r"^(\d{2})_.+\.ipynb$")


def lesson_notebooks(lessons: list[int] | None = None) -> list[tuple[int, Path]]:
    """``(number, path)`` of every ``notebooks/NN_*.ipynb``, in order, optionally only ``lessons``."""
    found = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        match = _LESSON.match(path.name)
        if match and (lessons is None or int(match.group(1)) in lessons):
            found.append((int(match.group(1)), path))
    return found


def _cell_seconds(cell) -> float | None:
    """Execution time of one code cell from the timing nbclient records in its metadata."""
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not start or not end:
        return None
    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


# What TensorFlow's start-up writes to stderr (absl, oneDNN, CUDA stubs, CPU instructions).
_TF_LOG = re.compile(
    r"absl::InitializeLog|oneDNN custom operations|cuda_(?:dnn|fft|blas|driver|executor)|cpu_feature_guard|"
    r"Unable to register cu|rebuild TensorFlow with the appropriate compiler flags|^[IWE]\d{4} \d\d:\d\d:\d\d",
    re.M,
)


def tensorflow_log_lines(cells) -> list[str]:
    """TensorFlow start-up lines found in the stream outputs of ``cells`` (code cells run by nbclient)."""
    found = []
    for index, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                found += [f"code cell {index}: {line[:160]}" for line in output.get("text", "").splitlines()
                          if _TF_LOG.search(line)]  # fmt: skip
    return found


def run_one(path: Path, timeout: float) -> dict:
    """Execute one notebook in this process (called in the child); returns its result.

    ``timeout`` bounds each cell, so nbclient itself stops a runaway notebook and shuts its kernel
    down cleanly; the parent's wall-clock limit is the backstop for the whole notebook.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=int(timeout), kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    start = time.perf_counter()
    result: dict = {"status": "ok"}
    try:
        client.execute()
    except CellExecutionError as err:
        result["status"] = "error"
        result["error"] = f"{err.ename}: {err.evalue}"[:500]
    except CellTimeoutError as err:
        result["status"] = "timeout"
        result["error"] = str(err).splitlines()[0][:300]
    result["seconds"] = time.perf_counter() - start
    # The kernel has exited and been waited for: its peak resident set is this process's children's (KiB).
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e6, 1)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    result["tensorflow_log_lines"] = tensorflow_log_lines(cells)
    times = [_cell_seconds(c) for c in cells]
    result["code_cells"] = len(cells)
    result["cells_seconds"] = sum(t for t in times if t is not None)
    slow = sorted(((t, i) for i, t in enumerate(times) if t is not None), reverse=True)[:3]
    result["slowest_cells"] = [{"code_cell": i, "seconds": round(t, 2)} for t, i in slow]
    if result["status"] == "error":
        failed = next((i for i, c in enumerate(cells) if any(o.get("output_type") == "error" for o in c.outputs)), None)
        result["failed_code_cell"] = failed
    return result


def run_in_subprocess(path: Path, env: dict[str, str], timeout: float) -> dict:
    """Run :func:`run_one` in a child process group; kill the group (kernel included) on timeout."""
    command = [sys.executable, __file__, "--child", str(path), "--timeout", str(timeout)]
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout + 60)
    except subprocess.TimeoutExpired:
        # The child's own group; its kernel (own session) exits when it sees its parent gone.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"status": "timeout", "seconds": time.perf_counter() - start, "error": f"killed after {timeout:.0f} s"}
    line = next((x for x in out.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        tail = (err or out).strip().splitlines()[-5:]
        return {"status": "crashed", "seconds": time.perf_counter() - start, "error": " | ".join(tail)[-800:]}
    result = json.loads(line[len("RESULT ") :])
    result["process_seconds"] = time.perf_counter() - start
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=("ci", "cpu"), default="ci")
    parser.add_argument("--lessons", type=int, nargs="+", help="lesson numbers (default: every notebook)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds per notebook (ci 300, cpu 3600): a cell is stopped at it, the notebook at it + 60 s",
    )
    parser.add_argument("--artifacts", help="reuse this artifacts folder (default: a fresh temporary one)")
    parser.add_argument("--cache", help="reuse this data cache folder (default: a fresh temporary one)")
    parser.add_argument(
        "--data",
        help="cpu profile: a real UTKFace folder, or 'shared' for ../shared's part-1 sample "
        "(default: none, as a Binder user without UTKFace: synthetic faces)",
    )
    parser.add_argument("--output", help="result name (default notebooks_<profile>)")
    parser.add_argument(
        "--merge", action="store_true", help="keep the lessons of the existing result that this run does not redo"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(run_one(Path(args.child), args.timeout or 3600)))
        return
    load_start = load_average()
    timeout = args.timeout or (300 if args.profile == "ci" else 3600)
    notebooks = lesson_notebooks(args.lessons)
    if not notebooks:
        raise SystemExit(f"no lesson notebooks matching {args.lessons} in {NOTEBOOKS}")
    temp = Path(tempfile.mkdtemp(prefix=f"agecourse-nb-{args.profile}-"))
    # Absolute: the notebooks run with notebooks/ as their working directory.
    artifacts = Path(args.artifacts).resolve() if args.artifacts else temp / "artifacts"
    cache = Path(args.cache).resolve() if args.cache else temp / "cache"
    env = dict(os.environ, AGECOURSE_PROFILE=args.profile, AGECOURSE_ARTIFACTS=str(artifacts))
    env.update(AGECOURSE_DATA_DIR=str(cache), MPLBACKEND="Agg")
    for name in ("AGECOURSE_DATA", "TF_CPP_MIN_LOG_LEVEL"):  # a student's kernel has neither
        env.pop(name, None)
    if "AGECOURSE_WEIGHTS" not in env and SHARED_WEIGHTS.is_dir():
        # This machine has no internet: the ImageNet weights a student's Keras downloads come from ../shared.
        env["AGECOURSE_WEIGHTS"] = str(SHARED_WEIGHTS)
    data = None
    if args.profile == "cpu" and args.data:
        data = SHARED_DATA if args.data == "shared" else Path(args.data)
        if not data.is_dir():
            raise SystemExit(f"{data}: no such folder of UTKFace images")
        env["AGECOURSE_DATA"] = str(data.resolve())
    results = {}
    try:
        for number, path in notebooks:
            print(f"{path.name} ...", end=" ", flush=True)
            when, before = time.strftime("%Y-%m-%d %H:%M:%S %Z"), load_average()
            results[path.stem] = {"lesson": number, "when": when, "load_1min_before": before and before[0]}
            results[path.stem] |= run_in_subprocess(path, env, timeout)
            r = results[path.stem]
            peak = f", peak {r['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in r else ""
            print(f"{r['status']} in {r['seconds']:.1f} s{peak}" + (f" ({r['error']})" if "error" in r else ""),
                  flush=True)  # fmt: skip
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    name = args.output or f"notebooks_{args.profile}" + ("_utkface" if data else "")
    merged_from = None
    if args.merge and (RESULTS / f"{name}.json").exists():
        old = json.loads((RESULTS / f"{name}.json").read_text())
        kept = {k: r | {"when": r.get("when", old.get("when"))} for k, r in old["lessons"].items() if k not in results}
        results = dict(sorted((kept | results).items()))
        merged_from = {"when": old.get("when"), "lessons_kept": sorted(kept), "settings": old.get("settings")}
    ok = [r for r in results.values() if r["status"] == "ok"]
    from agecourse.config import get_settings

    # The recipes the lessons trained with, so a report can tell when the profile has moved since.
    recipe = settings_record(get_settings(args.profile, data_dir=data), LESSON_FIELDS)
    write_result(
        name,
        {
            "merged_from": merged_from,
            "settings": {
                "profile": args.profile,
                "data": str(data) if data else "synthetic faces (not real people)",
                "timeout_s_per_notebook": timeout,
                "artifacts": str(artifacts) if args.artifacts else "fresh temporary folder (cold run)",
                "cache": str(cache) if args.cache else "fresh temporary folder (cold run)",
                "runner": "nbclient, one subprocess per notebook, cwd notebooks/; seconds include kernel start",
                # Overrides the lessons read (AGECOURSE_FULL_RECIPE=1: 08 and 10 train the full recipe).
                "environment": {
                    k: os.environ[k] for k in ("AGECOURSE_RETRAIN", "AGECOURSE_FULL_RECIPE") if k in os.environ
                },
                "weights": env.get("AGECOURSE_WEIGHTS", "downloaded by Keras"),
                "peak_memory": "the kernel's largest resident set (getrusage of the exited kernel), MB (10^6 bytes)",
                "recipe": recipe,
            },
            "lessons": results,
            "summary": {
                "notebooks": len(results),
                "ok": len(ok),
                "failed": sorted(k for k, r in results.items() if r["status"] != "ok"),
                "total_seconds": sum(r["seconds"] for r in results.values()),
            },
        },
        load_start=load_start,
    )


if __name__ == "__main__":
    main()
