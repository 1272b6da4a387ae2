# Sourced by run.sh and test.sh: make .venv and install agecourse into it, once per pyproject change.
PYTHON_BIN=${PYTHON:-$(command -v python3 || command -v python)}
if ! "$PYTHON_BIN" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "agecourse needs Python 3.10 or newer; $PYTHON_BIN is $("$PYTHON_BIN" --version 2>&1)" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo "Creating .venv with $("$PYTHON_BIN" --version)"
    "$PYTHON_BIN" -m venv .venv
fi
stamp=".venv/.agecourse-installed"
want=$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "Installing agecourse and its test tools into .venv (first run: a few minutes, TensorFlow is large)"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".[test]"
    echo "$want" > "$stamp"
fi
