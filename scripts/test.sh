#!/usr/bin/env bash
# Run the whole test suite (unit tests and every lesson notebook under nbval).
# Does its own set-up: creates .venv with the Python it finds (3.11+) and installs agecourse[test].
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-env.sh
export AGECOURSE_PROFILE=ci
exec .venv/bin/python -m pytest tests notebooks --nbval-lax --current-env -p no:cacheprovider "$@"
