"""The ONNX Runtime engine builder (CPU): FP32 = the optimised ONNX, INT8 = the calibrated U8S8 Q/DQ model.

FP32 is the model after ONNX Runtime's basic optimisation (`NAME.fp32.onnx`); INT8 is the U8S8
Q/DQ model of one calibration (`NAME.int8.onnx`, with the S8S8 model for TensorRT, the ranges
JSON and the TensorRT calibration cache beside it). FP16 is refused: the CPU provider has no FP16
kernels for most ops and silently computes them in FP32.
"""

from __future__ import annotations

from pathlib import Path

from ... import __version__, manifest as mf
from ...errors import BackendUnavailable
from ..build_engine import BuildOptions, BuildResult, UnsupportedPrecision, calibrate

FP16_ON_CPU = ("FP16 is refused on the ONNX Runtime CPU backend: its CPU provider has no FP16 kernels for "
               "most ops and silently computes them in FP32 (with extra casts), so the engine would be "
               "neither FP16-accurate to measure nor faster. Build FP16 with --backend tensorrt on a machine "
               "with an NVIDIA GPU or Jetson; on this machine use FP32 or --int8, and measure FP16 accuracy "
               "with deploykit.build.fp16.run_emulated")


def preflight(opt: BuildOptions) -> None:
    """Refuse what ONNX Runtime's CPU provider cannot build, before any export or calibration work."""
    if opt.bf16:
        raise UnsupportedPrecision("--bf16 is an OpenVINO precision; add --backend openvino")
    if opt.fp16:
        raise UnsupportedPrecision(FP16_ON_CPU)
    if opt.dla_core is not None:
        raise BackendUnavailable("--dla-core needs TensorRT on a Jetson (DLA cores exist only there); drop it "
                                 "for ONNX Runtime")


def build(onnx_path: Path, man: dict, opt: BuildOptions, out_dir: Path, calibration=None) -> BuildResult:
    """FP32: ONNX Runtime-optimised model; INT8: calibrated U8S8 Q/DQ model (see module docstring).

    Args:
        calibration: a CalibrationResult already made in `out_dir` to reuse (`--backend auto` calibrates once).
    """
    import onnx
    import onnxruntime

    preflight(opt)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = onnx_path.name.rsplit(".", 1)[0]
    notes = []
    if opt.timing_cache or opt.workspace_mib != BuildOptions.workspace_mib:
        notes.append("--workspace and --timing-cache are TensorRT options; ignored by ONNX Runtime")
    if opt.int8:
        cal = calibration or calibrate(onnx_path, opt, out_dir)
        engine = cal.paths["u8s8"]
        extras = {k: v for k, v in cal.paths.items() if k != "u8s8"}
        return BuildResult(engine, mf.manifest_path_for(engine), mf.read(mf.manifest_path_for(engine)),
                           "onnxruntime", extras, notes, cal)
    from ...calib.qdq import optimize_for_quantization

    engine = optimize_for_quantization(onnx_path, out_dir / f"{stem}.fp32.onnx")
    mpath = mf.write_engine_manifest(man, engine, {
        "backend": "onnxruntime", "precision": "fp32",
        "optimisation": "ONNX Runtime basic graph optimisation (constant folding, Conv+BatchNorm fusion); "
                        "the session applies the hardware-specific levels at load",
        "source_onnx": onnx_path.name, "source_onnx_sha256": mf.sha256_file(onnx_path),
        "versions": {"deploykit": __version__, "onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__}})
    return BuildResult(engine, mpath, mf.read(mpath), "onnxruntime", {}, notes)
