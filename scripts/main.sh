#!/usr/bin/env bash
# The main job on the embedded default backend (ONNX Runtime, CPU): export gaitgl to ONNX and
# report its parity against the PyTorch reference. Sets up ./.venv first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source "${DEPLOYKIT_VENV:-.venv}/bin/activate"
OUT=${OUT_DIR:-artifacts}
deploykit export gaitgl --out "$OUT"
deploykit parity gaitgl --engine "$OUT/gaitgl.onnx" --samples 2 --json "$OUT/gaitgl.parity.json"
