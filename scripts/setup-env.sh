# Sourced by run.sh and test.sh: make .venv and install agecourse into it, once per pyproject change.
# Uses $PYTHON when set, else python3 (or python) from PATH; it must be Python 3.11 or newer.
PYTHON_BIN=${PYTHON:-$(command -v python3 || command -v python || true)}
if [ -z "$PYTHON_BIN" ]; then
    echo "agecourse needs Python 3.11 or newer: no python3 found on PATH (or set PYTHON=/path/to/python)" >&2
    exit 1
fi
if ! "$PYTHON_BIN" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "agecourse needs Python 3.11 or newer; $PYTHON_BIN is $("$PYTHON_BIN" --version 2>&1)" >&2
    exit 1
fi
# A .venv without a working pip (say, an earlier attempt stopped half-way) is rebuilt in place.
if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    echo "Creating .venv with $("$PYTHON_BIN" --version 2>&1)"
    if ! "$PYTHON_BIN" -m venv --clear .venv; then
        echo "Could not create .venv with $PYTHON_BIN (on Debian/Ubuntu: apt install python3-venv)" >&2
        exit 1
    fi
    rm -f .venv/.agecourse-installed
fi
stamp=".venv/.agecourse-installed"
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "Installing agecourse and its test tools into .venv (first run: a few minutes, TensorFlow is large)"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".[test]"
    echo "$want" > "$stamp"
fi
