#!/usr/bin/env bash
# The main job on the embedded default backend (ONNX Runtime, CPU, when no GPU/TensorRT is here):
# export gaitgl -> build its INT8 engine -> parity against PyTorch -> bench summary.
# Sets up ./.venv first. Weights are seeded random (no checkpoint can be downloaded here) and the
# INT8 calibration uses the seeded synthetic source: fine for parity and speed, not for deployment.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source "${DEPLOYKIT_VENV:-.venv}/bin/activate"
OUT=${OUT_DIR:-artifacts}
echo "== 1/4 export" >&2
deploykit export gaitgl --out "$OUT"
echo "== 2/4 build the INT8 engine on the default backend" >&2
deploykit build-engine "$OUT/gaitgl.onnx" --int8 --out "$OUT"
echo "== 3/4 parity against PyTorch (FP32 ONNX, then the INT8 engine)" >&2
deploykit parity gaitgl --engine "$OUT/gaitgl.onnx" --samples 2 --json "$OUT/gaitgl.parity.json"
deploykit parity gaitgl --engine "$OUT/gaitgl.int8.onnx" --samples 4 --json "$OUT/gaitgl.int8.parity.json"
echo "== 4/4 bench (interleaved rounds, ratios vs PyTorch eager)" >&2
deploykit bench gaitgl --backends torch,ort-fp32,ort-int8 --threads 2 --rounds 3 --iters 3 \
  --json "$OUT/gaitgl.bench.json"
