"""The OpenVINO engine builder (CPU): FP32, BF16 where the CPU has it, INT8 from the S8S8 Q/DQ model.

An OpenVINO engine is an ONNX file that OpenVINO compiles at load (it reads ONNX natively; its
compiled-model cache, `CACHE_DIR`, makes later loads fast), beside a manifest whose `engine`
section says `backend: openvino` and the precision:

| precision | artifact | what OpenVINO runs |
|---|---|---|
| fp32 | `NAME.openvino.fp32.onnx` (the exported graph) | f32 kernels, precision hint set to f32 |
| bf16 | `NAME.openvino.bf16.onnx` (the exported graph) | bf16 kernels (AVX512_BF16/AMX CPUs only) |
| int8 | `NAME.openvino.int8.onnx` (the S8S8 Q/DQ model made for TensorRT) | INT8 kernels for the Q/DQ parts |

One S8S8 artifact thus serves TensorRT (explicit quantization) and the CPU.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ... import __version__, artifact_set, atomic, manifest as mf
from ...errors import BackendUnavailable, require
from ..build_engine import BuildOptions, BuildResult, UnsupportedPrecision, calibrate

FP16_ON_OPENVINO = ("--fp16 is not an OpenVINO CPU precision here: the CPU plugin's half precision is bf16; "
                    "use --bf16 on a CPU with AVX512_BF16/AMX, or build FP16 with --backend tensorrt")


def preflight(opt: BuildOptions) -> None:
    """Refuse what OpenVINO's CPU plugin cannot build, before any export or calibration work."""
    ov = require("openvino", "openvino")
    if opt.fp16:
        raise UnsupportedPrecision(FP16_ON_OPENVINO)
    if opt.dla_core is not None:
        raise BackendUnavailable("--dla-core needs TensorRT on a Jetson; drop it for OpenVINO")
    if getattr(opt, "bf16", False) and "BF16" not in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        raise UnsupportedPrecision("--bf16: this CPU has no native bf16 (AVX512_BF16/AMX), so OpenVINO would "
                                   "emulate it slowly; build --backend openvino without --bf16 (fp32) or --int8")


def build(onnx_path: Path, man: dict, opt: BuildOptions, out_dir: Path, calibration=None) -> BuildResult:
    """FP32/BF16: the exported ONNX under an OpenVINO manifest; INT8: the calibrated S8S8 Q/DQ model.

    Args:
        calibration: a CalibrationResult already made in `out_dir` to reuse (`--backend auto` calibrates once).
    """
    require("openvino", "openvino")
    preflight(opt)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not opt.int8:
        return package_openvino(onnx_path, onnx_path, man, "bf16" if opt.bf16 else "fp32", out_dir)
    cal = calibration or calibrate(onnx_path, opt, out_dir)
    res = package_openvino(cal.paths["s8s8"], onnx_path, mf.read(mf.manifest_path_for(cal.paths["s8s8"])), "int8",
                           out_dir)
    if calibration is None:  # its own calibration's files belong to this build; a shared one's to the first build
        res.extras.update(cal.paths)
    res.calibration = cal
    return res


def package_openvino(src: Path, onnx_path: Path, base: dict, precision: str, out_dir: Path) -> BuildResult:
    """Write `src` (the exported ONNX, or its S8S8 Q/DQ model for int8) as an OpenVINO engine + manifest."""
    ov = require("openvino", "openvino")
    stem = onnx_path.name.rsplit(".", 1)[0]
    entry = {k: v for k, v in base.get("engine", {}).items() if k not in ("backend", "precision", "built")}
    engine = out_dir / f"{stem}.openvino.{precision}.onnx"
    with open(src, "rb") as f:
        atomic.write_bytes(engine, f.read())
    cache_dir = out_dir / f"{stem}.openvino-cache"

    mpath = mf.write_engine_manifest(base, engine, {
        **entry, "backend": "openvino", "precision": precision, "device": "CPU",
        "inference_precision_hint": "bf16" if precision == "bf16" else "f32",
        "cache_dir": cache_dir.name, "source_onnx": onnx_path.name,
        "source_onnx_sha256": mf.sha256_file(onnx_path),
        "versions": {"deploykit": __version__, "openvino": ov.__version__}})
    shutil.rmtree(cache_dir, ignore_errors=True)  # a stale compiled cache must not outlive its graph
    if artifact_set.is_stage(out_dir):  # staged build: the cache that matters is the one beside the committed set
        shutil.rmtree(out_dir.parent / cache_dir.name, ignore_errors=True)
    return BuildResult(engine, mpath, mf.read(mpath), "openvino", {}, [])
