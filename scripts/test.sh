#!/usr/bin/env bash
# The test command (CI runs exactly this): lint, then the whole suite.
# VENV=.venv313 scripts/test.sh runs it in another interpreter's environment (made by
# `VENV=.venv313 PYTHON=python3.13 scripts/setup.sh`); arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
echo "==> ruff"
"$VENV/bin/ruff" check firmware_app tests scripts
echo "==> mypy"
"$VENV/bin/mypy" firmware_app
echo "==> pytest ($("$VENV/bin/python" -c 'import platform; print("Python", platform.python_version())'))"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
