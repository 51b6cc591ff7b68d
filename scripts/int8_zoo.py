"""INT8 accuracy of every model in the zoo (entropy calibration on seeded synthetic data).

    .venv/bin/python scripts/int8_zoo.py [--models a,b] [--calib-samples 16] [--eval-samples 4] > table.md

Prints a markdown table: per model and output, the mean/min cosine of the U8S8 (ONNX Runtime) and
S8S8 (TensorRT layout) engines against PyTorch FP32 on held-out samples (seed 1000), the centred
cosine (input-dependent part only), the gate, and for pose the share of joints within 1 heatmap px.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings

warnings.simplefilter("ignore")


def main() -> int:
    from deploykit import models
    from deploykit.export import OnnxFromModel
    from deploykit.build.build_engine import BuildOptions, EngineFromOnnx
    from deploykit.verify.quant_accuracy import engine_accuracy, gate_for

    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(models.names()))
    ap.add_argument("--calib-samples", type=int, default=16)
    ap.add_argument("--eval-samples", type=int, default=4)
    ap.add_argument("--frames", type=int, default=10, help="frames of gait exports (default 10, for time)")
    args = ap.parse_args()
    print("| model | output | U8S8 cosine (min) | U8S8 centred | S8S8 cosine (min) | S8S8 centred | joints within 1 px (U8S8) | gate | result |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for name in args.models.split(","):
        t0 = time.time()
        spec = models.spec(name)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                res = OnnxFromModel(name, frames=args.frames if spec.has_frames else None)(tmp)
                built = EngineFromOnnx(res.onnx_path, BuildOptions(int8=True, calib_samples=args.calib_samples,
                                                                   progress=False), backend="onnxruntime")(tmp)
                reps = {k: engine_accuracy(name, p, samples=args.eval_samples)
                        for k, p in (("u8s8", built.engine_path), ("s8s8", built.extras["s8s8"]))}
            except Exception as exc:  # a miss is a result too: record it and go on
                print(f"| {name} | - | error: {str(exc).splitlines()[0][:120]} | | | | | | miss |")
                continue
        u, s = reps["u8s8"], reps["s8s8"]
        kp = f"{u.keypoints['share_within']:.2f}" if u.keypoints else "-"
        for ou, os_ in zip(u.outputs, s.outputs):
            ok = "pass" if (u.passed and s.passed) else "miss"
            print(f"| {name} | {ou.name} | {ou.cosine_mean:.5f} ({ou.cosine_min:.5f}) | {ou.centred_cosine_mean:.3f} "
                  f"| {os_.cosine_mean:.5f} ({os_.cosine_min:.5f}) | {os_.centred_cosine_mean:.3f} | {kp} "
                  f"| {gate_for(spec.family)} | {ok} |", flush=True)
        print(f"{name}: {time.time() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
