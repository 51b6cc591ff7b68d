#!/usr/bin/env bash
# Write benchmarks/all_int8_full_size.md: how fast an all-INT8 engine of rga, hrnet-w32 and fastpose-res50
# is at the upstream input size, against torch eager in the same `deploykit bench` run.
#
#   bash scripts/all_int8_speed.sh [WORK]      (WORK default /tmp/all_int8; about 15 minutes on 2 cores)
#
# Why: on trained weights the automatic mixed precision keeps no layer float (the re-ID and pose proxies,
# benchmarks/cpu_backends.md), but the proxies are small (192x96, 128x96) and real checkpoints cannot be
# downloaded here. With seeded weights the automatic choice keeps most layers float, so the seeded rows of
# cpu_backends.md time an engine nobody deploys. `build-engine --all-int8` builds the all-INT8 engine a
# trained model gets; latency does not depend on the weights' values, so this is its speed at full size.
# Its accuracy on random weights means nothing and is not reported.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-/tmp/all_int8}
OUT=${OUT:-benchmarks/all_int8_full_size.md}
PY=${DEPLOYKIT_VENV:-.venv}/bin/python
dk() { echo "+ deploykit $*" >&2; "$PY" -m deploykit.cli "$@"; }
INT8=(--int8 --all-int8 --calib-method percentile --calib-samples 32)
tables=()
for m in rga hrnet-w32 fastpose-res50; do
  d=$WORK/$m
  [ -f "$d/bench.md" ] && { tables+=("$d/bench.md"); continue; }   # a rerun keeps finished models
  dk export "$m" --out "$d"
  dk build-engine "$d/$m.onnx" --backend onnxruntime "${INT8[@]}" --out "$d/ort"
  dk build-engine "$d/$m.onnx" --backend openvino "${INT8[@]}" --out "$d/ov"
  dk bench "$m" "$d/ort/$m.int8.onnx" "$d/ov/$m.openvino.int8.onnx" --backends torch --threads 2 \
     --duration 14 --rounds 5 --warmup 3 --json "$d/bench.json" --markdown "$d/bench.md.part"
  mv "$d/bench.md.part" "$d/bench.md"
  tables+=("$d/bench.md")
done
tmp=$(mktemp "$OUT.XXXX")
{
  echo "# All-INT8 engines at the upstream input size: rga, hrnet-w32, fastpose-res50"
  echo
  echo "Written by \`bash scripts/all_int8_speed.sh\` ($(date -u +'%d %b %Y %H:%M UTC'), $(nproc) cores, ${MACHINE:-nothing else said about the machine}; the script's header says why)."
  echo "Per model: \`deploykit export NAME\` (seeded weights, upstream input size), \`deploykit build-engine NAME.onnx"
  echo "--backend onnxruntime|openvino --int8 --all-int8 --calib-method percentile --calib-samples 32\` (no layer"
  echo "kept float: the form a trained model's engine takes, see benchmarks/cpu_backends.md), then ONE"
  echo "\`deploykit bench NAME ENGINES --backends torch --threads 2 --duration 14 --rounds 5 --warmup 3\`: torch"
  echo "eager and both engines interleaved in one run. \`NAME.int8.onnx\` is ONNX Runtime's U8S8 engine,"
  echo "\`NAME.openvino.int8.onnx\` OpenVINO running the S8S8 model. Speed only: on random weights an all-INT8"
  echo "model misses the accuracy gates, which say nothing about trained weights."
  echo
  for t in "${tables[@]}"; do
    sed 's/^### /## /' "$t"
    d=$(dirname "$t"); m=$(basename "$d")
    "$PY" -c 'import json, sys; print("\ninput " + "x".join(map(str, json.load(open(sys.argv[1]))["inputs"][0]["shape"])))' \
      "$d/$m.manifest.json"
    echo
  done
} > "$tmp"
mv "$tmp" "$OUT"
echo "wrote $OUT" >&2
