#!/usr/bin/env bash
# Create ./.venv (if missing) and install deploykit with the export and dev extras.
# torch is pinned to the 2.13.0 CPU wheel *before* anything else, and by a constraint file, so pip
# never resolves a CUDA build of torch (gigabytes) on a machine without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DEPLOYKIT_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV" >&2
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
stamp="$VENV/.deploykit-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/constraints.txt -nt "$stamp" ]; then
  echo "[setup] installing torch 2.13.0 (CPU) and deploykit[export,dev,faiss,openvino,eval] into $VENV" >&2
  "$PY" -m pip install -q --disable-pip-version-check torch==2.13.0 2>&1 | grep -v '^WARNING: Location' || true
  "$PY" -m pip install -q --disable-pip-version-check -c scripts/constraints.txt -e '.[export,dev,faiss,openvino,eval]' 2>&1 \
    | grep -v '^WARNING: Location' || true
  "$PY" -c "import torch, onnx, onnxruntime, onnx_graphsurgeon, openvino, pycocotools, deploykit" || { echo "[setup] install failed" >&2; exit 1; }
  touch "$stamp"
fi
