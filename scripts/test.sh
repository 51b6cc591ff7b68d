#!/usr/bin/env bash
# Set up ./.venv and run the test suite. Extra arguments go to pytest
# (default: the fast tests; `-m slow` the heavy end-to-end ones; `-m "slow or not slow"` all).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# the Triton tests (tests/serve, slow) run the server in a venv of the system python3.11
bash scripts/serve_env.sh || echo "[test] no serve venv: tests/serve will fail (see the line above)" >&2
exec "${DEPLOYKIT_VENV:-.venv}/bin/python" -m pytest -q "$@"
