#!/usr/bin/env bash
# Run every benchmark, one after the other (never two at once: they would slow each other down),
# then rebuild the table in bench/README.md. Each script can also be run on its own.
#
#   bash bench/run_all.sh [--with-cpu-notebooks] [--skip NAME ...]
#
# NAME is one of: tuning pipeline speed detect model_a model_b ensemble course_cards bias
# notebooks_ci notebooks_cpu.
# A failing benchmark is reported and the others still run; the exit status is 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
export TF_CPP_MIN_LOG_LEVEL=2

with_cpu=0
skip=" "
while [ $# -gt 0 ]; do
  case "$1" in
    --with-cpu-notebooks) with_cpu=1 ;;
    --skip) shift; skip="$skip$1 " ;;
    -h|--help) sed -n 2,8p "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
  shift
done

failed=()
run() {  # run NAME COMMAND...
  local name="$1"; shift
  if [[ "$skip" == *" $name "* ]]; then echo "== $name: skipped"; return; fi
  echo "== $name: $* (started $(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null))"
  local start=$SECONDS
  if "$@"; then
    echo "== $name: done in $((SECONDS - start)) s"
  else
    echo "== $name: FAILED (exit $?) after $((SECONDS - start)) s" >&2
    failed+=("$name")
  fi
}

# Tuning first (validation split only): its trials read the shipped models and their training records.
run tuning "$PYTHON" bench/tune.py $("$PYTHON" bench/tune.py --names)
run pipeline "$PYTHON" bench/bench_pipeline.py
run speed "$PYTHON" bench/bench_speed.py
# The photo path on validation scenes (the detector settings' choice), then once on the test split.
# The Haar row needs OpenCV 4 in a throwaway folder: pip install --target /tmp/haarlib "opencv-python-headless<5"
run photo_val "$PYTHON" bench/bench_photo.py --split val --scenes 100
run photo "$PYTHON" bench/bench_photo.py --split test ${HAAR_LIB:+--haar-lib "$HAAR_LIB"}
# The final recipes: three seeds each, the test split scored once per seed; each benchmark's seed-42
# run is also shipped in the package (--ship), then the registry and model cards are rewritten.
run model_a "$PYTHON" bench/bench_model_a.py --ship
run model_b "$PYTHON" bench/bench_model_b.py --ship
# The shipped models' validation predictions (their age intervals' and gender temperature's
# calibration), then the registry and the model cards.
run course_cards "$PYTHON" scripts/write_package_data.py models --intervals
# Model A + Model B averaged: weights from the shipped models' validation predictions, test from the runs above.
run ensemble "$PYTHON" bench/bench_ensemble.py
run bias "$PYTHON" bench/bench_bias.py
run notebooks_ci "$PYTHON" bench/bench_notebooks.py --profile ci
if [ "$with_cpu" = 1 ]; then
  run notebooks_cpu "$PYTHON" bench/bench_notebooks.py --profile cpu
fi
"$PYTHON" bench/bench_report.py || failed+=("report")

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "All benchmarks done; see bench/README.md"
