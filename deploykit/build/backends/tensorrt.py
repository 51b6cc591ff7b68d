"""TensorRT engine builder: ONNX -> serialized plan + manifest, for TensorRT 8.5, 8.6, 10.x and 11.x.

NOT EXECUTED on the development and CI machines (no GPU, no TensorRT). The decisions are made by
`plan_build` (pure, unit-tested); `_build_plan` is a thin sequence of documented API calls
(NVIDIA/TensorRT python/docstrings/infer/pyCoreDoc.h, release/10.3 and main; migration guide 10.x -> 11.x):

| TensorRT | path | FP16 | INT8 |
|---|---|---|---|
| 11.x | strongly typed (the only one: BuilderFlag.FP16/INT8 and the calibrators are removed) | FP16 ONNX graph (build/fp16.py) | S8S8 Q/DQ ONNX |
| 10.1 - 10.x | strongly typed by default; `trt_path="flags"` offers the flag path | as 11.x, or BuilderFlag.FP16 + FP32 layer constraints | as 11.x, or BuilderFlag.INT8 + calibration cache |
| 8.5, 8.6, 10.0 | builder flags | BuilderFlag.FP16 + OBEY_PRECISION_CONSTRAINTS, FP32 layers pinned | BuilderFlag.INT8 + OBEY_PRECISION_CONSTRAINTS + the calibration ranges (implicit INT8), mixed-precision float nodes pinned FP32 |

Always: `set_memory_pool_limit(WORKSPACE)`; TF32 cleared (it is on by default and would run the
FP32 plan and FP32 islands at 10-bit mantissas; recorded as `tf32: false`); an optional timing cache
(read; a cache from another device is refused by `set_timing_cache`, which returns False, and a
fresh one is used); the plan written *before* the timing cache is saved; an optimization profile
when the manifest says the batch is dynamic; the atomic write of the plan beside its manifest.

Implicit INT8 (flags path, 8.5-10.x) sets `ITensor.dynamic_range = (-amax, amax)` from ranges.json
on every tensor it names instead of a cache-only calibrator (no calibrator header to match, no
empty calibration). DLA: `--dla-core` builds on the flags path by default (DLA's documented modes
are FP16/INT8 by flags; strongly typed DLA builds are unverified), FP32 is refused, GPU_FALLBACK is
set and `IBuilderConfig.can_run_on_DLA` counts the layers DLA can take.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import re
from typing import Mapping

from ... import __version__, atomic, manifest as mf
from ...errors import BackendUnavailable, BadInputError, DeploykitError
from ...runtime.backends.tensorrt import capture_logger, gpu_identity, import_tensorrt, version_triple
from ..build_engine import BuildOptions, BuildResult, Precision, calibrate


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
        dynamic_ranges: implicit INT8: set ITensor.dynamic_range from ranges.json (flag path).
        fp32_layers: pin nodes FP32 with layer precision (flag path): the FP16 plan's FP32 nodes and, in
            implicit INT8, the calibration's mixed-precision float nodes (what the S8S8 model leaves
            without Q/DQ), so both TensorRT paths run the same layers in float.
        clear_flags: BuilderFlag names to clear (TF32: on by default, off for FP32 parity).
        dla: build for a DLA core (default device DLA, GPU_FALLBACK).
        notes: what the user should know.
    """

    strongly_typed: bool
    explicit_batch: bool
    builder_flags: tuple[str, ...]
    onnx: str
    dynamic_ranges: bool
    fp32_layers: bool
    clear_flags: tuple[str, ...] = ("TF32",)
    dla: bool = False
    notes: tuple[str, ...] = ()


def plan_build(version: str, precision: Precision, trt_path: str = "auto", dla: bool = False) -> BuildPlan:
    """Choose the build path for a TensorRT version (see the module table).

    Raises:
        BackendUnavailable: the flag path asked on TensorRT 11, or strong typing below 10.1.
        BadInputError: FP32 on DLA (DLA runs FP16 and INT8 only), or BF16 (an OpenVINO precision here).
    """
    if precision is Precision.BF16:
        raise BadInputError("--bf16 is an OpenVINO CPU precision; TensorRT builds here are FP32, FP16 or INT8: "
                            "use --fp16 with --backend tensorrt, or --backend openvino for bf16")
    v = version_triple(version)
    strong_ok = v >= (10, 1, 0)
    flags_ok = v < (11, 0, 0)
    if dla and precision is Precision.FP32:
        raise BadInputError("--dla-core with FP32 is refused: DLA runs FP16 and INT8 only, so every layer would "
                            "fall back to the GPU; add --fp16 or --int8, or drop --dla-core")
    notes: list[str] = []
    if trt_path != "auto":
        path = trt_path
    elif dla and flags_ok:  # DLA's documented modes are FP16/INT8 by builder flags
        path = "flags"
    else:
        path = "strong" if strong_ok else "flags"
    if path == "strong" and not strong_ok:
        raise BackendUnavailable(f"--trt-path strong needs TensorRT >= 10.1 (strongly typed networks with Q/DQ and "
                                 f"FP16 graphs); TensorRT {version} builds with --trt-path flags")
    if path == "flags" and not flags_ok:
        raise BackendUnavailable(f"--trt-path flags is not possible on TensorRT {version}: TensorRT 11 removed "
                                 f"BuilderFlag.FP16/INT8 and the INT8 calibrators; use --trt-path strong (the default)")
    flags: list[str] = ["GPU_FALLBACK"] if dla else []
    if path == "strong":
        if dla:
            notes.append("DLA with a strongly typed network is not verified (DLA's documented modes are FP16/INT8 "
                         "by builder flags); check the build log for layers falling back to the GPU")
        onnx = {Precision.FP32: "fp32", Precision.FP16: "fp16", Precision.INT8: "s8s8", Precision.INT8_FP16: "s8s8"}[precision]
        if precision is Precision.INT8_FP16:
            notes.append("strongly typed INT8+FP16: the Q/DQ graph's float layers run in FP32 (an FP16 Q/DQ graph "
                         "is not produced); use --trt-path flags on TensorRT <= 10.x for FP16 float layers")
        return BuildPlan(True, False, tuple(flags), onnx, False, False, dla=dla, notes=tuple(notes))
    if precision in (Precision.FP16, Precision.INT8_FP16):
        flags += ["FP16", "OBEY_PRECISION_CONSTRAINTS"]
    if precision in (Precision.INT8, Precision.INT8_FP16):
        flags.append("INT8")
        if "OBEY_PRECISION_CONSTRAINTS" not in flags:  # mixed precision's float layers are pinned FP32
            flags.append("OBEY_PRECISION_CONSTRAINTS")
    if v >= (10, 1, 0) and "INT8" in flags:
        notes.append(f"implicit INT8 (ITensor.dynamic_range) is deprecated since TensorRT 10.1 (still works on {version})")
    return BuildPlan(False, v < (10, 0, 0), tuple(flags), "fp32", "INT8" in flags, "OBEY_PRECISION_CONSTRAINTS" in flags,
                     dla=dla, notes=tuple(notes))


def layer_node(layer_name: str, node_names: frozenset) -> Optional[str]:
    """The ONNX node a parser layer came from, or None.

    The ONNX parser names a node's first layer after the node and any further one `<node>_<n>`
    (onnx-tensorrt ImporterContext::registerLayer / generateUniqueName, n a parser-wide counter). So a
    layer named like a node *is* that node, and `/Add_1` is never taken for a second layer of `/Add`
    when the graph has a node `/Add_1`.
    """
    if layer_name in node_names:
        return layer_name
    m = re.fullmatch(r"(.+)_(\d+)", layer_name)
    return m[1] if m and m[1] in node_names else None


@dataclasses.dataclass
class BuildReport:
    """What the build did beyond the plan: for the manifest and the notes."""

    pinned_layers: int = 0
    dynamic_ranges_set: int = 0
    dynamic_ranges_missing: int = 0
    dla_layers: Optional[dict] = None
    timing_cache: str = "not used"
    notes: list = dataclasses.field(default_factory=list)


def _pin_fp32(trt, network, fp32_nodes: frozenset, node_names: frozenset) -> int:
    """Layer precision FP32 on the layers of `fp32_nodes`, output type FP32 on their float outputs only."""
    floats = (trt.float32, trt.float16)
    pinned = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer_node(layer.name, node_names) not in fp32_nodes:
            continue
        outs = [j for j in range(layer.num_outputs) if layer.get_output(j).dtype in floats]
        if not outs:  # Shape/ArgMax/comparisons: integer or bool outputs keep their type
            continue
        layer.precision = trt.float32
        for j in outs:
            layer.set_output_type(j, trt.float32)
        pinned += 1
    return pinned


def _set_dynamic_ranges(network, amax: Mapping[str, float]) -> tuple[int, int]:
    """ITensor.dynamic_range = (-amax, amax) on the network inputs and layer outputs ranges.json names.

    Returns:
        (tensors set, float tensors without a range: TensorRT runs those layers in higher precision)
    """
    tensors = [network.get_input(i) for i in range(network.num_inputs)]
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        tensors += [layer.get_output(j) for j in range(layer.num_outputs)]
    done, missing = 0, 0
    for t in tensors:
        a = amax.get(t.name)
        if a is None:
            missing += 1
            continue
        t.dynamic_range = (-float(a), float(a))
        done += 1
    return done, missing


def _add_profile(builder, config, network, dynamic_batch: Mapping[str, int], specs: Mapping[str, tuple]) -> None:
    """One optimization profile: every input's min/opt/max shape with dim 0 = the manifest's min/opt/max."""
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        t = network.get_input(i)
        shape = tuple(specs.get(t.name) or tuple(t.shape))
        rest = tuple(int(d) for d in shape[1:])
        lo, opt, hi = (int(dynamic_batch[k]) for k in ("min", "opt", "max"))
        profile.set_shape(t.name, (lo, *rest), (opt, *rest), (hi, *rest))
    config.add_optimization_profile(profile)


def _attach_timing_cache(config, path: Optional[str], rep: BuildReport):
    """Read the timing cache if there is one; a cache refused (another device) is replaced by a fresh one."""
    if not path:
        return None
    blob = Path(path).read_bytes() if Path(path).is_file() else b""
    cache = config.create_timing_cache(blob)
    if config.set_timing_cache(cache, ignore_mismatch=False):
        rep.timing_cache = "read" if blob else "new"
        return cache
    rep.notes.append(f"timing cache {path} was made on another device or TensorRT and was refused; "
                     f"building with a fresh one (it replaces the file)")
    cache = config.create_timing_cache(b"")
    if config.set_timing_cache(cache, ignore_mismatch=False):
        rep.timing_cache = "replaced"
        return cache
    rep.timing_cache = "refused"
    return None


def _save_timing_cache(config, path: str, rep: BuildReport) -> None:
    """Write the builder's timing cache back; a failure only costs the next build's time, so it is a note."""
    cache = config.get_timing_cache()
    if cache is None:
        rep.notes.append(f"TensorRT returned no timing cache; {path} was not written")
        return
    try:
        atomic.write_bytes(path, bytes(cache.serialize()))
    except Exception as exc:  # noqa: BLE001  (the plan is already written; keep it)
        rep.notes.append(f"timing cache {path} was not written: {type(exc).__name__}: {exc}")


def _dla_config(trt, builder, config, network, dla_core: int, rep: BuildReport) -> None:
    if builder.num_DLA_cores <= int(dla_core):
        raise BackendUnavailable(f"--dla-core {dla_core}: this device has {builder.num_DLA_cores} DLA core(s) under "
                                 f"TensorRT {trt.__version__} (DLA exists on Jetson AGX/NX Xavier and Orin; TensorRT "
                                 f"11.0-11.3 has none); drop --dla-core to build for the GPU")
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = int(dla_core)
    n = network.num_layers
    on_dla = sum(1 for i in range(n) if config.can_run_on_DLA(network.get_layer(i)))
    rep.dla_layers = {"can_run_on_dla": on_dla, "layers": n,
                      "how": "IBuilderConfig.can_run_on_DLA before the build; the rest run on the GPU"}
    rep.notes.append(f"DLA core {dla_core}: {on_dla} of {n} layers can run on DLA, the rest fall back to the GPU")


def _build_plan(trt, plan: BuildPlan, onnx_path: Path, plan_path: Path, *, workspace_mib: int,
                timing_cache: Optional[str], dla_core: Optional[int], amax: Optional[Mapping[str, float]],
                fp32_nodes: frozenset, node_names: frozenset, dynamic_batch: Optional[Mapping[str, int]] = None,
                input_shapes: Optional[Mapping[str, tuple]] = None) -> BuildReport:
    """The TensorRT API calls; writes the plan to `plan_path`, then the timing cache. NOT EXECUTED here
    (tests/trt runs it against a recording TensorRT of each version's documented API)."""
    rep = BuildReport()
    log = capture_logger(trt)
    mark = len(log.lines)
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
    for flag in plan.clear_flags:
        config.clear_flag(getattr(trt.BuilderFlag, flag))
    if plan.dynamic_ranges and amax:
        rep.dynamic_ranges_set, rep.dynamic_ranges_missing = _set_dynamic_ranges(network, amax)
    if plan.fp32_layers and fp32_nodes:
        rep.pinned_layers = _pin_fp32(trt, network, fp32_nodes, node_names)
    if dynamic_batch:
        _add_profile(builder, config, network, dynamic_batch, input_shapes or {})
    tcache = _attach_timing_cache(config, timing_cache, rep)
    if dla_core is not None:
        _dla_config(trt, builder, config, network, dla_core, rep)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise TrtBuildError(f"TensorRT {trt.__version__} failed to build {onnx_path.name}: "
                            f"{' | '.join(log.since(mark)[-3:]) or 'no message'}")
    atomic.write_bytes(plan_path, bytes(serialized))  # the plan first: nothing after this may lose it
    if tcache is not None:
        _save_timing_cache(config, timing_cache, rep)
    return rep


def fp16_keep_list(opt_onnx: Path, man: dict, opt: BuildOptions) -> tuple[list[str], str]:
    """Tensors to keep FP32 in an FP16 graph: given, or the FP16 range audit on calibration data.

    Returns:
        (tensor names, how they were found)
    """
    if opt.keep_fp32_tensors is not None:
        return list(opt.keep_fp32_tensors), "given"
    from ...calib import sources
    from ..fp16 import audit_keep_list

    data = list(sources.batches(sources.open_source(opt.calib_data, man, seed=opt.seed), min(opt.calib_samples, 16),
                                progress=opt.progress, label="FP16 range audit"))
    return audit_keep_list(opt_onnx, data)


def _node_names(onnx_path: Path) -> frozenset:
    import onnx

    return frozenset(n.name for n in onnx.load(str(onnx_path), load_external_data=False).graph.node)


def preflight(opt: BuildOptions) -> None:
    """Refuse before any export or calibration work: TensorRT missing (naming the extra), or what
    `plan_build` refuses for this TensorRT (BF16, FP32 on DLA, the flag path on 11)."""
    plan_build(import_tensorrt().__version__, opt.precision, opt.trt_path, dla=opt.dla_core is not None)


def build(onnx_path: Path, man: dict, opt: BuildOptions, out_dir: Path, calibration=None) -> BuildResult:
    """Build a TensorRT plan (see the module table). NOT EXECUTED on machines without a GPU.

    Args:
        calibration: unused by `--backend auto` (it shares calibrations between CPU backends only); a
            TensorRT build calibrates itself, so its cache names this TensorRT version.
    """
    trt = import_tensorrt()
    from ...calib.qdq import optimize_for_quantization
    from ...calib.ranges import Ranges
    from ..fp16 import Fp16FromOnnx

    gpu = gpu_identity(0)
    plan = plan_build(trt.__version__, opt.precision, opt.trt_path, dla=opt.dla_core is not None)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = onnx_path.name.rsplit(".", 1)[0]
    extras: dict[str, Path] = {"opt": optimize_for_quantization(onnx_path, out_dir / f"{stem}.opt.onnx")}
    engine: dict = {}
    amax = None
    fp32_nodes: frozenset = frozenset()
    if opt.int8:
        cal = calibrate(onnx_path, opt, out_dir, trt_version=trt.__version__)
        extras.update(cal.paths)
        amax = {k: r.amax for k, r in Ranges.load(cal.paths["ranges"]).tensors.items()}
        engine["calibration"] = cal.engine_entry["calibration"]
        engine["mixed_precision"] = cal.engine_entry["mixed_precision"]
        fp32_nodes = frozenset(engine["mixed_precision"]["float_nodes"])
    if opt.fp16:
        tensors, how = fp16_keep_list(extras["opt"], man, opt)
        fp16_path, fp16_plan = Fp16FromOnnx(extras["opt"], tensors)(out_dir / f"{stem}.fp16.onnx")
        extras["fp16"] = fp16_path
        fp32_nodes |= frozenset(fp16_plan.fp32_nodes)
        engine["fp16"] = {**fp16_plan.to_json(), "keep_fp32_tensors": tensors, "audit": how}
    parsed = extras[{"fp32": "opt", "fp16": "fp16", "s8s8": "s8s8"}[plan.onnx]]
    plan_path = out_dir / f"{stem}.{opt.precision.value.replace('+', '-')}.plan"
    dyn = man.get("dynamic_batch") or None
    rep = _build_plan(trt, plan, parsed, plan_path, workspace_mib=opt.workspace_mib, timing_cache=opt.timing_cache,
                      dla_core=opt.dla_core, amax=amax, fp32_nodes=fp32_nodes,
                      node_names=_node_names(extras["opt"]) if plan.fp32_layers else frozenset(),
                      dynamic_batch=dyn, input_shapes={s.name: s.shape for s in mf.inputs_of(man)})
    base = {**man, "onnx_sha256": mf.sha256_file(parsed)}
    mpath = mf.write_engine_manifest(base, plan_path, {
        "backend": "tensorrt", "precision": opt.precision.value, "trt_version": trt.__version__, **gpu,
        "strongly_typed": plan.strongly_typed, "network_flags": ["STRONGLY_TYPED"] if plan.strongly_typed else
        (["EXPLICIT_BATCH"] if plan.explicit_batch else []), "builder_flags": list(plan.builder_flags),
        "cleared_flags": list(plan.clear_flags), "tf32": "TF32" not in plan.clear_flags,
        "onnx": parsed.name, "onnx_sha256": mf.sha256_file(parsed), "plan_sha256": mf.sha256_file(plan_path),
        "source_onnx": onnx_path.name, "source_onnx_sha256": mf.sha256_file(onnx_path),
        "workspace_mib": int(opt.workspace_mib), "timing_cache": opt.timing_cache,
        "timing_cache_status": rep.timing_cache, "dla_core": opt.dla_core, "dla_layers": rep.dla_layers,
        "fp32_pinned_layers": rep.pinned_layers if plan.fp32_layers else None,
        "int8_scales": {"via": "ITensor.dynamic_range from ranges.json", "tensors_set": rep.dynamic_ranges_set,
                        "tensors_without_range": rep.dynamic_ranges_missing} if plan.dynamic_ranges else None,
        "optimization_profile": dict(dyn) if dyn else None, **engine,
        "versions": {"deploykit": __version__, "tensorrt": trt.__version__}})
    return BuildResult(plan_path, mpath, mf.read(mpath), "tensorrt", extras, [*plan.notes, *rep.notes])
