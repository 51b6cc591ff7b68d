#!/usr/bin/env bash
# Set up ./.venv and run the test suite. Extra arguments go to pytest
# (default: the fast tests; `-m slow` the heavy end-to-end ones; `-m "slow or not slow"` all).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${DEPLOYKIT_VENV:-.venv}/bin/python" -m pytest -q "$@"
