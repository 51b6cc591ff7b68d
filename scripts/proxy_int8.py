"""INT8 and emulated FP16 on a trained proxy, judged on its own synthetic task (issue 10, item 5).

    python scripts/proxy_int8.py gaitset proxies/gaitset-proxy.pt WORK [--samples 36] [--calib-method percentile]

Exports MODEL with the proxy checkpoint, writes calibration data from the proxy's family generator
with another seed than training and held-out (walkers / reid_persons / pose_figures, seed 500),
builds the INT8 engines (`deploykit build-engine --int8 --calib-data`: U8S8 for ONNX Runtime and the
S8S8 model for TensorRT), runs `deploykit parity` on each (held-out: the proxy's labelled task,
`verify.heldout`), and compares emulated FP16 (`build.fp16`: default FP32 keep list, `Fp16Emulator`)
with FP32 on the same held-out samples. Prints one JSON line per engine and writes WORK/summary.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

CALIB_SEED = 500  # training uses seed 0 (and its own stream), held-out 1000


def calib_data(manifest: dict, n: int) -> np.ndarray:
    """`n` calibration samples of the proxy's family (no batch axis)."""
    from deploykit import synth

    task = manifest["weights"]["proxy"]["task"]
    spec = manifest["inputs"][0]["shape"]
    if task.endswith("walkers"):
        return synth.walkers(max(1, n // 2), 2, spec[1], seed=CALIB_SEED, size=tuple(spec[2:]))[0]
    if task.endswith("reid_persons"):
        return synth.reid_persons(max(1, n // 2), 2, seed=CALIB_SEED, preprocess=manifest["preprocess"])[0]
    return synth.pose_figures(n, seed=CALIB_SEED, preprocess=manifest["preprocess"])[0]


def _cli(*args: str, ok=(0,)) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "deploykit.cli", *args], capture_output=True, text=True)
    if proc.returncode not in ok:
        raise SystemExit(f"deploykit {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc


def fp16_emulated(onnx_path: Path, manifest: dict, samples: int) -> dict:
    """Emulated FP16 of the FP32 ONNX vs FP32 ONNX on the proxy's held-out data: signal and task figures."""
    import onnx
    import onnxruntime as ort

    from deploykit.build.fp16 import Fp16Emulator, plan_fp32_nodes, to_fp16
    from deploykit.verify import compare
    from deploykit.verify import gates as G
    from deploykit.verify.heldout import heldout_feeds
    from deploykit.verify.task_metrics import task_agreement

    model = onnx.load(str(onnx_path))
    emu = Fp16Emulator(to_fp16(model, plan_fp32_nodes(model).fp32_nodes), watch_tensors=False)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    held = heldout_feeds(manifest, samples)
    names = [o["name"] for o in manifest["outputs"]]
    refs = {k: [] for k in names}
    outs = {k: [] for k in names}
    for b in held.batches:
        for k, v in zip(names, sess.run(names, b)):
            refs[k].append(v)
        got = emu.run(b).outputs
        for k in names:
            outs[k].append(got[k])
    refs = {k: np.concatenate(v) for k, v in refs.items()}
    outs = {k: np.concatenate(v) for k, v in outs.items()}
    stats = {k: compare.signal_stats(refs[k], outs[k]) for k in names}
    task = task_agreement(manifest, refs, outs, G.FP16, held.labels, held.keypoints)
    task.pop("checks", None)
    return {"engine": "fp16-emulated", "outputs": stats, "task": task, "source": held.source}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("checkpoint")
    ap.add_argument("work", type=Path)
    ap.add_argument("--samples", type=int, default=36, help="held-out samples (default 36)")
    ap.add_argument("--calib-samples", type=int, default=32)
    ap.add_argument("--calib-method", default="percentile", help="entropy, percentile (default: the main job's) or max")
    ap.add_argument("--skip-int8", action="store_true", help="only the FP16 emulation")
    a = ap.parse_args()
    exp, eng = a.work / "export", a.work / "engines"
    onnx_path = exp / f"{a.model}.onnx"
    if not onnx_path.exists():
        _cli("export", a.model, "--checkpoint", a.checkpoint, "--out", str(exp))
    manifest = json.loads(onnx_path.with_suffix(".manifest.json").read_text())
    rows = [fp16_emulated(onnx_path, manifest, a.samples)]
    print(json.dumps(rows[-1]), flush=True)
    if not a.skip_int8:
        np.save(a.work / "calib.npy", calib_data(manifest, a.calib_samples))
        _cli("build-engine", str(onnx_path), "--int8", "--calib-data", str(a.work / "calib.npy"), "--calib-samples",
             str(a.calib_samples), "--calib-method", a.calib_method, "--backend", "onnxruntime", "--out", str(eng))
        for e in sorted(eng.glob("*.int8*.onnx")):  # the U8S8 and S8S8 models (the .opt.onnx has no manifest)
            _cli("parity", a.model, "--engine", str(e), "--samples", str(a.samples), "--json", str(a.work / "p.json"),
                 ok=(0, 1))  # parity exits 1 on a missed gate: a result, not a failure
            rows.append({"engine": e.name, **json.loads((a.work / "p.json").read_text())})
            print(json.dumps({k: rows[-1][k] for k in ("engine", "passed", "task")}), flush=True)
    (a.work / "summary.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
