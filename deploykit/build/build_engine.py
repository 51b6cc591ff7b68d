"""`EngineFromOnnx`: an exported ONNX model -> an engine artifact + manifest, on a registered builder.

    >>> EngineFromOnnx("artifacts/gaitgl.onnx", BuildOptions(int8=True), backend="onnxruntime")("engines")

Builders are registered by name (`register_builder`), like runtime backends: "onnxruntime" here,
"tensorrt" in tensorrt_build.py. `backend="auto"` takes TensorRT when it is importable and a GPU
is present, else ONNX Runtime, and says why.

ONNX Runtime artifacts (CPU): FP32 = the model after ONNX Runtime's basic optimisation
(`NAME.fp32.onnx`); INT8 = the U8S8 Q/DQ model of one calibration (`NAME.int8.onnx`, with the
S8S8 model for TensorRT, the ranges JSON and the TensorRT calibration cache beside it). FP16 is
refused: the CPU provider has no FP16 kernels for most ops and silently computes them in FP32.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import importlib.util
import os
from pathlib import Path
from typing import Callable, Optional, Sequence

from .. import __version__, artifact_set, manifest as mf
from ..errors import BackendUnavailable, BadInputError, DeploykitError

_BUILDERS: dict[str, Callable[..., "BuildResult"]] = {}


class UnsupportedPrecision(DeploykitError):
    """A precision the chosen backend cannot deliver on this machine."""

    exit_code = 2


class Precision(str, enum.Enum):
    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"
    INT8_FP16 = "int8+fp16"
    BF16 = "bf16"


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    """What to build. Every default is the CLI's.

    Attributes:
        fp16: FP16 (an FP16 graph; TensorRT only).
        int8: INT8 (calibrated Q/DQ model, or TensorRT's calibration cache on the flag path).
        calib_data: --calib-data (folder, .npy/.npz, video; None = seeded synthetic, warns).
        calib_method: "entropy" (default), "percentile" or "max".
        calib_samples: at most this many calibration samples; default 64.
        sensitivity: per-layer sensitivity sweep decides the float layers; default False.
        keep_fp32_tensors: tensors the FP16 range audit flags (None: run the audit here).
        workspace_mib: TensorRT workspace pool; default 1024.
        timing_cache: TensorRT timing cache file (read if present, written after the build).
        dla_core: DLA core with GPU fallback (TensorRT on Jetson); default None (GPU).
        trt_path: "auto" (strongly typed on TensorRT >= 10.1, flags below), "strong" or "flags".
        seed: synthetic calibration seed; default 0.
        progress: progress bars; default True.
        bf16: BF16 (OpenVINO on a CPU with AVX512_BF16/AMX); default False.
    """

    fp16: bool = False
    int8: bool = False
    calib_data: Optional[str] = None
    calib_method: str = "entropy"
    calib_samples: int = 64
    sensitivity: bool = False
    keep_fp32_tensors: Optional[Sequence[str]] = None
    workspace_mib: int = 1024
    timing_cache: Optional[str] = None
    dla_core: Optional[int] = None
    trt_path: str = "auto"
    seed: int = 0
    progress: bool = True
    bf16: bool = False

    def __post_init__(self) -> None:
        if self.calib_method not in ("entropy", "percentile", "max"):
            raise BadInputError(f"--calib-method {self.calib_method!r} is not one of entropy, percentile, max")
        if int(self.calib_samples) < 1:
            raise BadInputError(f"--calib-samples {self.calib_samples} is not allowed; use 1 or more")
        if int(self.workspace_mib) < 1:
            raise BadInputError(f"--workspace {self.workspace_mib} MiB is not allowed; use 1 or more (1024 is usual)")
        if self.dla_core is not None and int(self.dla_core) < 0:
            raise BadInputError(f"--dla-core {self.dla_core} is not allowed; DLA cores are numbered from 0")
        if self.trt_path not in ("auto", "strong", "flags"):
            raise BadInputError(f"--trt-path {self.trt_path!r} is not one of auto, strong, flags")

    @property
    def precision(self) -> Precision:
        if self.int8 and self.fp16:
            return Precision.INT8_FP16
        if self.bf16:
            return Precision.BF16
        return Precision.INT8 if self.int8 else Precision.FP16 if self.fp16 else Precision.FP32


@dataclasses.dataclass
class BuildResult:
    """The engine artifact, its manifest, and the other files the build wrote."""

    engine_path: Path
    manifest_path: Path
    manifest: dict
    backend: str
    extras: dict[str, Path] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)


def register_builder(name: str):
    """Decorator: register `fn(onnx_path, manifest, options, out_dir) -> BuildResult` as backend `name`."""

    def deco(fn):
        if name in _BUILDERS:
            raise ValueError(f"engine builder {name!r} is registered twice")
        _BUILDERS[name] = fn
        return fn

    return deco


def builders() -> list[str]:
    _import_builders()
    return sorted(_BUILDERS)


def _import_builders() -> None:
    from . import tensorrt_build  # noqa: F401  (registers "tensorrt"; imports tensorrt lazily)
    from . import openvino_build  # noqa: F401  (registers "openvino"; imports openvino lazily)


def gpu_present() -> tuple[bool, str]:
    """Whether a CUDA GPU is visible, and how that was decided (cuda-python, else /dev/nvidia*).

    Any failure of the cuda-python probe means "no GPU" with its reason: cuda-python < 12.9 raises
    RuntimeError("Failed to dlopen libcuda.so.1") from cudaGetDeviceCount() on a machine without a driver.
    """
    why = ""
    try:
        from ..runtime.tensorrt_backend import cuda_runtime

        cudart = cuda_runtime()
        err, count = cudart.cudaGetDeviceCount()
        if int(err) == 0 and count > 0:
            return True, f"cuda-python sees {count} GPU(s)"
        return False, f"cuda-python sees no GPU ({err!r})"
    except BackendUnavailable:
        pass  # no cuda-python: look for the device nodes instead
    except Exception as exc:  # noqa: BLE001  (no driver, broken install: all mean no usable GPU)
        why = f"cuda-python cannot reach a driver ({type(exc).__name__}: {exc})"
    if why:
        return False, why
    devs = [p for p in ("/dev/nvidia0", "/dev/nvhost-ctrl-gpu") if os.path.exists(p)]
    return bool(devs), (f"{devs[0]} exists" if devs else "no /dev/nvidia0 or Jetson GPU device node")


def choose_backend(requested: str = "auto") -> tuple[str, str]:
    """(backend, reason) for `--backend`: auto picks TensorRT when importable and a GPU is present.

    TensorRT is probed first (an import spec, nothing loaded), the GPU only where TensorRT exists.
    """
    _import_builders()
    if requested != "auto":
        if requested not in _BUILDERS:
            raise BadInputError(f"--backend {requested!r} is not one of auto, {', '.join(sorted(_BUILDERS))}")
        return requested, "asked for"
    if importlib.util.find_spec("tensorrt") is None:
        return "onnxruntime", "tensorrt is not installed; ONNX Runtime (CPU) builds everywhere"
    gpu, how = gpu_present()
    if gpu:
        return "tensorrt", f"tensorrt is importable and {how}"
    return "onnxruntime", f"no GPU ({how}); ONNX Runtime (CPU) builds everywhere"


@dataclasses.dataclass
class EngineFromOnnx:
    """Lazy stage: build an engine from `onnx_path` (deploykit export, manifest beside it).

    Attributes:
        onnx_path: the FP32 ONNX model.
        options: BuildOptions.
        backend: "auto", "onnxruntime" or "tensorrt".
    """

    onnx_path: str | os.PathLike
    options: BuildOptions = BuildOptions()
    backend: str = "auto"

    def __call__(self, out_dir: str | os.PathLike) -> BuildResult:
        p = Path(self.onnx_path)
        if not p.is_file():
            raise BadInputError(f"ONNX model {p} does not exist; export one with `deploykit export NAME`")
        man = mf.read(mf.manifest_path_for(p))
        name, why = choose_backend(self.backend)
        preflight(name, self.options)
        preflight_inputs(self.options, man, out_dir)
        auto_cpu = False
        if self.backend == "auto" and name == "onnxruntime" and not self.options.bf16:
            from .auto_cpu import build_fastest_cpu, usable_cpu_backends

            auto_cpu = len(usable_cpu_backends()) > 1
        # Every file of the build is staged and committed together (artifact_set.py): a killed or
        # failed build never leaves opt/ranges/cache/engine/manifest from two different runs.
        with artifact_set.staged(out_dir, p.name.rsplit(".", 1)[0]) as (stage, final):
            res = (build_fastest_cpu if auto_cpu else _BUILDERS[name])(p, man, self.options, stage)
        res.engine_path, res.manifest_path = final(res.engine_path), final(res.manifest_path)
        res.extras = {k: final(v) for k, v in res.extras.items()}
        res.manifest = mf.read(res.manifest_path)
        if auto_cpu:
            res.notes.insert(0, f"backend {res.backend}: {why}; fastest accurate CPU backend, measured")
            return res
        res.notes.insert(0, f"backend {name}: {why}")
        return res


def preflight_inputs(opt: BuildOptions, man: dict, out_dir: str | os.PathLike) -> None:
    """Before any export, optimisation or calibration: --out writable, --calib-data readable and sane."""
    from .. import atomic
    from ..preflight import check_calib_data

    atomic.ensure_folder(out_dir, "--out")
    if opt.timing_cache:
        atomic.ensure_file_writable(opt.timing_cache, "--timing-cache")
    if opt.int8 or (opt.fp16 and opt.keep_fp32_tensors is None):
        check_calib_data(opt.calib_data, man)


# -- ONNX Runtime ---------------------------------------------------------------------------------

FP16_ON_CPU = ("FP16 is refused on the ONNX Runtime CPU backend: its CPU provider has no FP16 kernels for "
               "most ops and silently computes them in FP32 (with extra casts), so the engine would be "
               "neither FP16-accurate to measure nor faster. Build FP16 with --backend tensorrt on a machine "
               "with an NVIDIA GPU or Jetson; on this machine use FP32 or --int8, and measure FP16 accuracy "
               "with deploykit.build.fp16.run_emulated")


def preflight(backend: str, opt: BuildOptions) -> None:
    """Refuse what `backend` cannot build before any export or calibration work."""
    if backend == "openvino":
        from .openvino_build import preflight_openvino

        preflight_openvino(opt)
    if backend == "onnxruntime":
        if opt.bf16:
            raise UnsupportedPrecision("--bf16 is an OpenVINO precision; add --backend openvino")
        if opt.fp16:
            raise UnsupportedPrecision(FP16_ON_CPU)
        if opt.dla_core is not None:
            raise BackendUnavailable("--dla-core needs TensorRT on a Jetson (DLA cores exist only there); drop it "
                                     "for ONNX Runtime")


@register_builder("onnxruntime")
def build_onnxruntime(onnx_path: Path, man: dict, opt: BuildOptions, out_dir: Path) -> BuildResult:
    """FP32: ONNX Runtime-optimised model; INT8: calibrated U8S8 Q/DQ model (see module docstring)."""
    import onnx
    import onnxruntime

    preflight("onnxruntime", opt)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = onnx_path.name.rsplit(".", 1)[0]
    notes = []
    if opt.timing_cache or opt.workspace_mib != BuildOptions.workspace_mib:
        notes.append("--workspace and --timing-cache are TensorRT options; ignored by ONNX Runtime")
    if opt.int8:
        from ..calib import QdqFromOnnx

        cal = QdqFromOnnx(onnx_path, data=opt.calib_data, method=opt.calib_method, samples=opt.calib_samples,
                          sensitivity=opt.sensitivity, seed=opt.seed, progress=opt.progress)(out_dir)
        engine = cal.paths["u8s8"]
        extras = {k: v for k, v in cal.paths.items() if k != "u8s8"}
        return BuildResult(engine, mf.manifest_path_for(engine), mf.read(mf.manifest_path_for(engine)),
                           "onnxruntime", extras, notes)
    from ..calib.qdq import optimize_for_quantization

    engine = optimize_for_quantization(onnx_path, out_dir / f"{stem}.fp32.onnx")
    mpath = mf.write_engine_manifest(man, engine, {
        "backend": "onnxruntime", "precision": "fp32",
        "optimisation": "ONNX Runtime basic graph optimisation (constant folding, Conv+BatchNorm fusion); "
                        "the session applies the hardware-specific levels at load",
        "source_onnx": onnx_path.name, "source_onnx_sha256": mf.sha256_file(onnx_path),
        "versions": {"deploykit": __version__, "onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__}})
    return BuildResult(engine, mpath, mf.read(mpath), "onnxruntime", {}, notes)


def fp16_keep_list(opt_onnx: Path, man: dict, opt: BuildOptions) -> tuple[list[str], str]:
    """Tensors to keep FP32 in an FP16 graph: given, or the FP16 range audit on calibration data.

    Returns:
        (tensor names, how they were found)
    """
    if opt.keep_fp32_tensors is not None:
        return list(opt.keep_fp32_tensors), "given"
    from ..calib import sources
    from .fp16 import audit_keep_list

    data = list(sources.batches(sources.open_source(opt.calib_data, man, seed=opt.seed), min(opt.calib_samples, 16),
                                progress=opt.progress, label="FP16 range audit"))
    return audit_keep_list(opt_onnx, data)
