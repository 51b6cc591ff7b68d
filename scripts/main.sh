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
echo "== 3/4 parity against PyTorch (FP32 ONNX, then the INT8 engine on 12 held-out clips)" >&2
# INT8 is gated on the input-dependent signal (centred cosine, signal NSR) and neighbour agreement
# (deploykit/verify/gates.py). A miss is reported, the bench still runs, and the job exits 1 at the end.
deploykit parity gaitgl --engine "$OUT/gaitgl.onnx" --samples 2 --json "$OUT/gaitgl.parity.json"
int8_rc=0
deploykit parity gaitgl --engine "$OUT/gaitgl.int8.onnx" --json "$OUT/gaitgl.int8.parity.json" || int8_rc=$?
echo "== 4/4 bench (interleaved rounds, ratios vs PyTorch eager)" >&2
deploykit bench gaitgl --backends torch,ort-fp32,ort-int8 --threads 2 --rounds 3 --iters 3 \
  --json "$OUT/gaitgl.bench.json"
if [ "$int8_rc" -ne 0 ]; then
  echo "main: the INT8 engine missed its parity gates (see the parity lines above)" >&2
  exit "$int8_rc"
fi
