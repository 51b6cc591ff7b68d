"""TensorRT engine builder: ONNX -> serialized plan + manifest, for TensorRT 8.5, 8.6, 10.x and 11.x.

NOT EXECUTED on the development and CI machines (no GPU, no TensorRT). The decisions are made by
`plan_build` (pure, unit-tested); `_build_plan` is a thin sequence of documented API calls
(NVIDIA/TensorRT python/docstrings/infer/pyCoreDoc.h, release/10.3 and main; migration guide 10.x -> 11.x):

| TensorRT | path | FP16 | INT8 |
|---|---|---|---|
| 11.x | strongly typed (the only one: BuilderFlag.FP16/INT8 and the calibrators are removed) | FP16 ONNX graph (export/fp16.py) | S8S8 Q/DQ ONNX |
| 10.1 - 10.x | strongly typed by default; `trt_path="flags"` offers the flag path | as 11.x, or BuilderFlag.FP16 + FP32 layer constraints | as 11.x, or BuilderFlag.INT8 + calibration cache |
| 8.5, 8.6, 10.0 | builder flags | BuilderFlag.FP16 + OBEY_PRECISION_CONSTRAINTS, FP32 layers pinned | BuilderFlag.INT8 + the calibration cache (implicit INT8) |

Always: `set_memory_pool_limit(WORKSPACE)`, an optional timing cache (read, then written back),
DLA core with GPU_FALLBACK where the version and device have DLA, and an atomic write of the plan
beside its manifest (TensorRT version, GPU name and compute capability, flags, sha256 of the ONNX).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

from .. import __version__, atomic, manifest as mf
from ..errors import BackendUnavailable, DeploykitError
from ..runtime.tensorrt_backend import capture_logger, gpu_identity, import_tensorrt, version_triple
from .build_engine import BuildOptions, BuildResult, Precision, fp16_keep_list, register_builder


class TrtBuildError(DeploykitError):
    """TensorRT could not parse or build the network."""


@dataclasses.dataclass(frozen=True)
class BuildPlan:
    """What the TensorRT build will do (decided without TensorRT, so it can be tested anywhere).

    Attributes:
        strongly_typed: NetworkDefinitionCreationFlag.STRONGLY_TYPED.
        explicit_batch: NetworkDefinitionCreationFlag.EXPLICIT_BATCH (TensorRT < 10 only).
        builder_flags: BuilderFlag names to set.
        onnx: which ONNX feeds the parser: "fp32" (optimised FP32), "fp16" (FP16 graph), "s8s8" (Q/DQ).
        calibration_cache: feed the calibration cache to a cache-only IInt8EntropyCalibrator2.
        fp32_layers: pin the FP16 plan's FP32 nodes with layer precision (flag path).
        notes: what the user should know.
    """

    strongly_typed: bool
    explicit_batch: bool
    builder_flags: tuple[str, ...]
    onnx: str
    calibration_cache: bool
    fp32_layers: bool
    notes: tuple[str, ...] = ()


def plan_build(version: str, precision: Precision, trt_path: str = "auto", dla: bool = False) -> BuildPlan:
    """Choose the build path for a TensorRT version (see the module table).

    Raises:
        BackendUnavailable: the flag path asked on TensorRT 11, or strong typing below 10.1.
    """
    v = version_triple(version)
    strong_ok = v >= (10, 1, 0)
    flags_ok = v < (11, 0, 0)
    path = trt_path if trt_path != "auto" else ("strong" if strong_ok else "flags")
    if path == "strong" and not strong_ok:
        raise BackendUnavailable(f"--trt-path strong needs TensorRT >= 10.1 (strongly typed networks with Q/DQ and "
                                 f"FP16 graphs); TensorRT {version} builds with --trt-path flags")
    if path == "flags" and not flags_ok:
        raise BackendUnavailable(f"--trt-path flags is not possible on TensorRT {version}: TensorRT 11 removed "
                                 f"BuilderFlag.FP16/INT8 and the INT8 calibrators; use --trt-path strong (the default)")
    notes: list[str] = []
    flags: list[str] = ["GPU_FALLBACK"] if dla else []
    if path == "strong":
        onnx = {Precision.FP32: "fp32", Precision.FP16: "fp16", Precision.INT8: "s8s8", Precision.INT8_FP16: "s8s8"}[precision]
        if precision is Precision.INT8_FP16:
            notes.append("strongly typed INT8+FP16: the Q/DQ graph's float layers run in FP32 (an FP16 Q/DQ graph "
                         "is not produced); use --trt-path flags on TensorRT <= 10.x for FP16 float layers")
        return BuildPlan(True, False, tuple(flags), onnx, False, False, tuple(notes))
    if precision in (Precision.FP16, Precision.INT8_FP16):
        flags += ["FP16", "OBEY_PRECISION_CONSTRAINTS"]
    if precision in (Precision.INT8, Precision.INT8_FP16):
        flags.append("INT8")
    if v >= (10, 1, 0) and "INT8" in flags:
        notes.append(f"implicit INT8 with a calibration cache is deprecated since TensorRT 10.1 (still works on {version})")
    return BuildPlan(False, v < (10, 0, 0), tuple(flags), "fp32", "INT8" in flags, "FP16" in flags, tuple(notes))


def _cache_calibrator(trt, cache: bytes):
    """An IInt8EntropyCalibrator2 that only hands TensorRT the cache (no batches: nothing to recalibrate)."""

    class _CacheOnly(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names, p_str=None):
            return None

        def read_calibration_cache(self):
            return cache

        def write_calibration_cache(self, data) -> None:
            return None

    return _CacheOnly()


def _build_plan(trt, plan: BuildPlan, onnx_path: Path, *, workspace_mib: int, timing_cache: Optional[str],
                dla_core: Optional[int], cache: Optional[bytes], fp32_nodes: frozenset) -> bytes:
    """The TensorRT API calls. NOT EXECUTED here."""
    log = capture_logger(trt)
    builder = trt.Builder(log)
    net_flags = 0
    if plan.explicit_batch:
        net_flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if plan.strongly_typed:
        net_flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(net_flags)
    parser = trt.OnnxParser(network, log)
    if not parser.parse(onnx_path.read_bytes()):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise TrtBuildError(f"TensorRT {trt.__version__} cannot parse {onnx_path.name}: {' | '.join(errors[:3])}; "
                            f"run `deploykit check` on the ONNX for unsupported ops")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mib) << 20)
    for flag in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if plan.calibration_cache and cache is not None:
        config.int8_calibrator = _cache_calibrator(trt, cache)
    if plan.fp32_layers and fp32_nodes:
        for i in range(network.num_layers):
            layer = network.get_layer(i)
            if layer.name in fp32_nodes or any(layer.name.startswith(f"{n}_") for n in fp32_nodes):
                layer.precision = trt.float32
                for j in range(layer.num_outputs):
                    layer.set_output_type(j, trt.float32)
    tcache = None
    if timing_cache:
        blob = Path(timing_cache).read_bytes() if Path(timing_cache).is_file() else b""
        tcache = config.create_timing_cache(blob)
        config.set_timing_cache(tcache, ignore_mismatch=False)
    if dla_core is not None:
        if not hasattr(trt.DeviceType, "DLA") or builder.num_DLA_cores <= int(dla_core):
            raise BackendUnavailable(f"--dla-core {dla_core}: this device has {getattr(builder, 'num_DLA_cores', 0)} DLA "
                                     f"core(s) under TensorRT {trt.__version__} (DLA exists on Jetson AGX/NX Xavier and "
                                     f"Orin; TensorRT 11.0-11.3 has none); drop --dla-core to build for the GPU")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(dla_core)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise TrtBuildError(f"TensorRT {trt.__version__} failed to build {onnx_path.name}: "
                            f"{' | '.join(log.lines[-3:]) or 'no message'}")
    if timing_cache and tcache is not None:
        atomic.write_bytes(timing_cache, bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


@register_builder("tensorrt")
def build_tensorrt(onnx_path: Path, man: dict, opt: BuildOptions, out_dir: Path) -> BuildResult:
    """Build a TensorRT plan (see the module table). NOT EXECUTED on machines without a GPU."""
    trt = import_tensorrt()
    from ..calib import QdqFromOnnx, trt_cache
    from ..calib.calibrate import write_engine_manifest
    from ..calib.qdq import optimize_for_quantization
    from .fp16 import Fp16FromOnnx

    gpu = gpu_identity(0)
    plan = plan_build(trt.__version__, opt.precision, opt.trt_path, dla=opt.dla_core is not None)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = onnx_path.name.rsplit(".", 1)[0]
    extras: dict[str, Path] = {"opt": optimize_for_quantization(onnx_path, out_dir / f"{stem}.opt.onnx")}
    engine: dict = {}
    cache = None
    fp32_nodes: frozenset = frozenset()
    if opt.int8:
        cal = QdqFromOnnx(onnx_path, data=opt.calib_data, method=opt.calib_method, samples=opt.calib_samples,
                          sensitivity=opt.sensitivity, trt_version=trt.__version__, seed=opt.seed,
                          progress=opt.progress)(out_dir)
        extras.update(cal.paths)
        cache = cal.paths["cache"].read_bytes()
        engine["calibration"] = cal.engine_entry["calibration"]
        engine["mixed_precision"] = cal.engine_entry["mixed_precision"]
    if opt.fp16:
        tensors, how = fp16_keep_list(extras["opt"], man, opt)
        fp16_path, fp16_plan = Fp16FromOnnx(extras["opt"], tensors)(out_dir / f"{stem}.fp16.onnx")
        extras["fp16"] = fp16_path
        fp32_nodes = frozenset(fp16_plan.fp32_nodes)
        engine["fp16"] = {**fp16_plan.to_json(), "keep_fp32_tensors": tensors, "audit": how}
    parsed = extras[{"fp32": "opt", "fp16": "fp16", "s8s8": "s8s8"}[plan.onnx]]
    blob = _build_plan(trt, plan, parsed, workspace_mib=opt.workspace_mib, timing_cache=opt.timing_cache,
                       dla_core=opt.dla_core, cache=cache, fp32_nodes=fp32_nodes)
    plan_path = out_dir / f"{stem}.{opt.precision.value.replace('+', '-')}.plan"
    atomic.write_bytes(plan_path, blob)
    base = {**man, "onnx_sha256": mf.sha256_file(parsed)}
    mpath = write_engine_manifest(base, plan_path, {
        "backend": "tensorrt", "precision": opt.precision.value, "trt_version": trt.__version__, **gpu,
        "strongly_typed": plan.strongly_typed, "network_flags": ["STRONGLY_TYPED"] if plan.strongly_typed else
        (["EXPLICIT_BATCH"] if plan.explicit_batch else []), "builder_flags": list(plan.builder_flags),
        "onnx": parsed.name, "onnx_sha256": mf.sha256_file(parsed), "plan_sha256": mf.sha256_file(plan_path),
        "source_onnx": onnx_path.name, "source_onnx_sha256": mf.sha256_file(onnx_path),
        "workspace_mib": int(opt.workspace_mib), "timing_cache": opt.timing_cache, "dla_core": opt.dla_core,
        "calibration_cache_header": f"TRT-{trt_cache.version_tag(trt.__version__)}-EntropyCalibration2"
        if plan.calibration_cache else None, **engine,
        "versions": {"deploykit": __version__, "tensorrt": trt.__version__}})
    return BuildResult(plan_path, mpath, mf.read(mpath), "tensorrt", extras, list(plan.notes))
