#!/usr/bin/env bash
# The main job: load faces, train a small Model A, evaluate it, write metrics (JSON) and plots (PNG).
# Uses real UTKFace when --data PATH or AGECOURSE_DATA is given, else the built-in synthetic faces.
# Does its own set-up: creates .venv with the Python it finds (3.11+) and installs agecourse.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-env.sh
exec .venv/bin/agecourse run "$@"
