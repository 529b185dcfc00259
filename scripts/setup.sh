#!/usr/bin/env bash
# Create .venv with regauth (editable) and its test dependencies. Idempotent and quick
# when nothing changed. Needs only PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.regauth-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e '.[test]'
  touch "$stamp"
fi
# Byte-compile our sources as a wheel install would: an editable install only writes
# __pycache__ on first import, and never where PYTHONDONTWRITEBYTECODE is set (common
# in CI and containers), which would make every regauth run compile ~40 modules
# from source (~20 ms of a ~100 ms cold start).  Quick when nothing changed.
"$VENV/bin/python" -m compileall -q generator templates
