#!/usr/bin/env bash
# Make ./.venv-serve: the interpreter that runs `deploykit serve` and the Triton tests (tests/serve/).
# Usage: scripts/serve_env.sh            (venv dir: $DEPLOYKIT_SERVE_VENV or ./.venv-serve)
#
# Why a venv of its own, made with /usr/bin/python3.11: the Python-backend stub inside the
# nvidia-pytriton wheel links the *system's* shared libpython3.11 (Debian's 3.11.2). A venv made with
# another 3.11 build (the pyenv 3.11.7 first on PATH here) loads that build's stdlib into the stub,
# which then fails with `'_thread.RLock' object has no attribute '_recursion_count'`. pytriton also
# needs numpy < 2 and tritonclient's gRPC needs protobuf < 7, which the project's .venv (numpy 2,
# protobuf 7 via onnx/openvino) must not be downgraded to. No torch here: serving is runtime-only.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DEPLOYKIT_SERVE_VENV:-.venv-serve}
PYTHON=${DEPLOYKIT_SERVE_PYTHON:-/usr/bin/python3.11}
if [ ! -x "$PYTHON" ]; then
  echo "[serve_env] $PYTHON not found: the Triton Python-backend stub needs the system's Python 3.11" \
       "(apt-get install python3.11 python3.11-venv), or set DEPLOYKIT_SERVE_PYTHON" >&2
  exit 2
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "[serve_env] creating $VENV with $PYTHON" >&2
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
stamp="$VENV/.deploykit-serve-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/constraints.txt -nt "$stamp" ]; then
  echo "[serve_env] installing deploykit[serve] (no torch) into $VENV" >&2
  # editable: the Python-backend models import deploykit.runtime from this checkout
  "$PY" -m pip install -q --disable-pip-version-check -c scripts/constraints.txt -e '.[serve]' pytest 2>&1 \
    | grep -v '^WARNING: Location' || true
  "$PY" -c "import deploykit.runtime, pytriton, tritonclient.grpc, tritonclient.http, pytest" \
    || { echo "[serve_env] install failed (see pip output above)" >&2; exit 1; }
  if "$PY" -c "import torch" 2>/dev/null; then
    echo "[serve_env] torch got into $VENV; the serve install must stay torch-free" >&2; exit 1
  fi
  touch "$stamp"
fi
