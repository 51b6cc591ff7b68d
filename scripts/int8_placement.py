"""Does INT8 keep the input-dependent signal? S8S8 and U8S8 Q/DQ models against FP32, per model.

    PYTHONPATH=. python scripts/int8_placement.py [--models gaitgl,gaitset] [--json out.json] > table.md

Per model: exported with seeded random weights (seed 0, the spec's default frames); 32 calibration
samples from `calib.sources.SyntheticSource` seed 0, saved as a .npy and passed as calibration data
(as `--calib-data` would); 12 held-out samples from seed 1000. The reference is the FP32 ONNX model
in ONNX Runtime (CPU); the Q/DQ models run there too.

Columns, per output (the worst output is printed when a model has several):
- plain cosine: mean over held-out samples of cosine(out_i, ref_i);
- centred cosine: one cosine of `out - mean(ref)` with `ref - mean(ref)` over all held-out samples
  (the part of the output that depends on the input);
- NN: share of held-out samples whose nearest neighbour (Euclidean, flattened output) among the
  other held-out samples is the same for the engine as for FP32;
- runtime: ONNX Runtime CPU, and OpenVINO CPU (f32 hint) when installed: OpenVINO executes the
  Q/DQ placement with int8 kernels much as TensorRT does, where ONNX Runtime's fusions differ;
- Q / DQ: QuantizeLinear / DequantizeLinear node counts;
- float nodes: what the automatic mixed precision kept in float (manifest `mixed_precision`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

warnings.simplefilter("ignore")
CALIB, HELD_OUT = 32, 12


def _samples(man: dict, seed: int, n: int) -> list[dict]:
    from deploykit.calib import sources

    it = sources.SyntheticSource(man, seed=seed, warn=False).samples()
    return [next(it) for _ in range(n)]


def metrics(ref: np.ndarray, got: np.ndarray) -> dict:
    """ref, got: [n, ...] outputs over the held-out samples (see module docstring)."""
    r = ref.reshape(len(ref), -1).astype(np.float64)
    g = got.reshape(len(got), -1).astype(np.float64)
    cos = [float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30)) for a, b in zip(r, g)]
    mu = r.mean(axis=0, keepdims=True)
    rc, gc = (r - mu).ravel(), (g - mu).ravel()
    centred = float(rc @ gc / (np.linalg.norm(rc) * np.linalg.norm(gc) + 1e-30))

    def nn(x):
        d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        return d.argmin(axis=1)

    return {"cosine": float(np.mean(cos)), "centred": centred, "nn": float(np.mean(nn(r) == nn(g)))}


def measure(name: str, work: Path, threads: int | None) -> dict:
    import onnxruntime as ort

    from deploykit import manifest as mf
    from deploykit.calib import QdqFromOnnx, qdq
    from deploykit.export import OnnxFromModel

    onnx_path = OnnxFromModel(name, seed=0)(work).onnx_path
    man = mf.read(mf.manifest_path_for(onnx_path))
    calib = _samples(man, 0, CALIB)
    primary = man["inputs"][0]["name"]
    if len(calib[0]) == 1:
        data = work / "calib.npy"
        np.save(data, np.stack([s[primary] for s in calib]))
    else:
        data = work / "calib.npz"
        np.savez(data, **{k: np.stack([s[k] for s in calib]) for k in calib[0]})
    res = QdqFromOnnx(onnx_path, data=str(data), samples=CALIB, progress=False, threads=threads)(work / "int8")
    held = _samples(man, 1000, HELD_OUT)
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads

    def run(path):
        s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        outs = [s.run(None, {k: v[None] for k, v in f.items()}) for f in held]
        return [np.concatenate([o[k] for o in outs]) for k in range(len(outs[0]))], [o.name for o in s.get_outputs()]

    ref, names = run(onnx_path)
    row = {"model": name, "float_nodes": res.float_nodes,
           "decided_by": res.engine_entry["mixed_precision"]["decided_by"]}
    for key in ("s8s8", "u8s8"):
        got, _ = run(res.paths[key])
        counts = qdq.count_qdq(res.paths[key])
        row[key] = {"outputs": {n: metrics(a, b) for n, a, b in zip(names, ref, got)},
                    "Q": counts["QuantizeLinear"], "DQ": counts["DequantizeLinear"]}
        ov = run_openvino(res.paths[key], held, names, threads)
        if ov is not None:
            row[key]["openvino"] = {n: metrics(a, b) for n, a, b in zip(names, ref, ov)}
    return row


def run_openvino(path: Path, held: list[dict], names: list[str], threads: int | None):
    """Outputs in OpenVINO CPU at f32 (it runs Q/DQ models with int8 kernels); None if not installed."""
    try:
        import openvino as ov
    except ImportError:
        return None
    cfg = {"INFERENCE_PRECISION_HINT": "f32", **({"INFERENCE_NUM_THREADS": threads} if threads else {})}
    comp = ov.Core().compile_model(str(path), "CPU", cfg)
    req = comp.create_infer_request()
    order = [next(o for o in comp.outputs if n in o.get_names()) for n in names]
    outs = [req.infer({k: v[None] for k, v in f.items()}) for f in held]
    return [np.concatenate([np.array(o[port]) for o in outs]) for port in order]


def _worst(outputs: dict) -> tuple[str, dict]:
    return min(outputs.items(), key=lambda kv: kv[1]["centred"])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="gaitgl,gaitset,rga,hrnet-w32")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write every output's figures here")
    args = ap.parse_args()
    rows = []
    print("| model | layout | runtime | output | plain cosine | centred cosine | NN | Q | DQ | float nodes |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    for name in args.models.split(","):
        t0 = time.time()
        with tempfile.TemporaryDirectory(prefix="int8place-") as tmp:
            row = measure(name, Path(tmp), args.threads)
        rows.append(row)
        for key in ("s8s8", "u8s8"):
            for rt, field in (("ONNX Runtime", "outputs"), ("OpenVINO", "openvino")):
                if field not in row[key]:
                    continue
                out, m = _worst(row[key][field])
                print(f"| {name} | {key.upper()} | {rt} | {out} | {m['cosine']:.5f} | {m['centred']:.3f} "
                      f"| {m['nn']:.2f} | {row[key]['Q']} | {row[key]['DQ']} | {len(row['float_nodes'])} |",
                      flush=True)
        print(f"{name}: {time.time() - t0:.0f} s", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
