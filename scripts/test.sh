#!/usr/bin/env bash
# The test command (CI runs exactly this): lint, then the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> ruff"
.venv/bin/ruff check firmware_app tests scripts
echo "==> mypy"
.venv/bin/mypy firmware_app
echo "==> pytest"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
