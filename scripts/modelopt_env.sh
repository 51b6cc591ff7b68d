#!/usr/bin/env bash
# Make a separate virtual environment with NVIDIA ModelOpt's ONNX quantizer and OpenVINO, for
# scripts/int8_vs_modelopt.py. Usage: scripts/modelopt_env.sh [VENV_DIR]
#   VENV_DIR defaults to $MODELOPT_VENV or $HOME/.cache/deploykit/modelopt-venv.
# Why a venv of its own: "nvidia-modelopt[onnx]" pulls torch (CUDA build where pip resolves one), cupy,
# onnxruntime-gpu and pins onnx -- several GB, and versions that would break the project's .venv (torch
# 2.13.0 CPU, plain onnxruntime). Nothing here touches the project's venv; nothing of ModelOpt is copied.
set -euo pipefail
VENV=${1:-${MODELOPT_VENV:-$HOME/.cache/deploykit/modelopt-venv}}
here=$(cd "$(dirname "$0")/.." && pwd)
case "$(cd "$(dirname "$VENV")" 2>/dev/null && pwd)/$(basename "$VENV")" in
  "$here/.venv"|"${DEPLOYKIT_VENV:-/nonexistent}")
    echo "[modelopt_env] refusing to install into the project's venv ($VENV): pass another directory." >&2
    exit 2 ;;
esac
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  echo "[modelopt_env] creating $VENV" >&2
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
stamp="$VENV/.modelopt-installed"
if [ ! -f "$stamp" ]; then
  echo "[modelopt_env] installing nvidia-modelopt[onnx] and openvino into $VENV (several GB)" >&2
  "$PY" -m pip install --disable-pip-version-check -q --upgrade pip
  "$PY" -m pip install --disable-pip-version-check "nvidia-modelopt[onnx]"
  "$PY" -m pip install --disable-pip-version-check openvino
  "$PY" -c "import modelopt.onnx.quantization, openvino, onnx, onnxruntime" \
    || { echo "[modelopt_env] install finished but imports fail; see the pip output above." >&2; exit 1; }
  touch "$stamp"
fi
"$PY" - <<'EOF'
import importlib.metadata as md
for name in ("nvidia-modelopt", "openvino", "onnx", "onnxruntime-gpu", "onnxruntime", "torch", "numpy"):
    try:
        print(f"{name}=={md.version(name)}")
    except md.PackageNotFoundError:
        pass
EOF
echo "$VENV"
