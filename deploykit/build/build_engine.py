"""`EngineFromOnnx`: an exported ONNX model -> an engine artifact + manifest, on a registered backend.

    >>> EngineFromOnnx("artifacts/gaitgl.onnx", BuildOptions(int8=True), backend="onnxruntime")("engines")

Each backend is one `Backend` record (`deploykit/runtime/backends/NAME.py`) naming its builder
module (`deploykit/build/backends/NAME.py`: `preflight(options)`, `build(...)`). `backend="auto"`
takes the usable backend of the highest priority (TensorRT on a GPU); on a CPU it builds every
usable CPU backend that can deliver the options, times them and keeps the fastest accurate one
(`auto_cpu.py`), and says why.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import Any, Optional, Sequence

from .. import artifact_set, manifest as mf
from ..artifact import Artifact, Source, resolve
from ..constants import DEFAULT_CALIB_METHOD
from ..errors import BadInputError, DeploykitError
from ..runtime import backend as backends

DEFAULT_OUT = "engines"  # `deploykit build-engine`'s --out


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
        calib_method: "percentile" (default, constants.DEFAULT_CALIB_METHOD), "entropy" or "max".
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
        all_int8: skip the automatic mixed precision (every layer TensorRT's placement quantizes stays
            INT8, as `trtexec --int8`); default False. Not with `sensitivity`.
        threads: CPU threads `--backend auto` times its candidates with (the count the engine will run
            at: `Engine.load(..., threads=N)`); None = each backend's own default, as `Engine.load` without it.
    """

    fp16: bool = False
    int8: bool = False
    calib_data: Optional[str] = None
    calib_method: str = DEFAULT_CALIB_METHOD
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
    threads: Optional[int] = None
    all_int8: bool = False

    def __post_init__(self) -> None:
        if self.all_int8 and not self.int8:
            raise BadInputError("--all-int8 is an INT8 option; add --int8")
        if self.all_int8 and self.sensitivity:
            raise BadInputError("--all-int8 and --sensitivity contradict each other (one keeps every layer INT8, "
                                "the other chooses float layers); pass one of them")
        if self.threads is not None and int(self.threads) < 1:
            raise BadInputError(f"--threads {self.threads} is not allowed; use 1 or more (or leave it out for "
                                f"each backend's default)")
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
class BuildResult(Artifact):
    """The engine (an Artifact: `path`, also `engine_path`), its manifest, and the other files the build wrote.

    Attributes:
        calibration: the CalibrationResult an INT8 build made (another CPU backend of `auto` reuses it).
    """

    backend: str = ""
    extras: dict[str, Path] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)
    calibration: Any = None

    @property
    def engine_path(self) -> Path:
        return self.path

    @engine_path.setter
    def engine_path(self, value: Path) -> None:
        self.path = value


def builder(name: str) -> ModuleType:
    """The builder module of backend `name` (its record names it by import path)."""
    return importlib.import_module(backends.get(name).builder)


def choose_backend(requested: str = "auto") -> tuple[str, str]:
    """(backend, reason) for `--backend`: auto takes the first usable backend by priority.

    Each record's `available()` is asked in priority order and the first usable one wins; the
    reasons of the ones passed over are part of the answer.
    """
    if requested != "auto":
        if requested not in backends.names():
            raise BadInputError(f"--backend {requested!r} is not one of auto, {', '.join(backends.names())}")
        return requested, "asked for"
    passed = []
    for rec in backends.by_priority():
        why = rec.available()
        if why is None:
            return rec.name, "; ".join([*passed, rec.summary])
        passed.append(why)
    raise BadInputError(f"no backend is usable here ({'; '.join(passed)}); install one of them")


def plan_backends(requested: str, opt: "BuildOptions") -> tuple[list[str], str]:
    """The backends a build will make, and why: the one asked for, or auto's choice.

    When auto lands on a CPU backend, every usable CPU backend whose preflight accepts `opt` is a
    candidate (auto_cpu.py times them); none accepting raises the highest-priority one's refusal.
    """
    name, why = choose_backend(requested)
    if requested != "auto" or backends.get(name).device != "CPU":
        preflight(name, opt)
        return [name], why
    ok, refusals = [], []
    for rec in backends.by_priority():
        if rec.device != "CPU" or rec.available() is not None:
            continue
        try:
            preflight(rec.name, opt)
            ok.append(rec.name)
        except DeploykitError as exc:
            refusals.append(exc)
    if not ok:
        raise refusals[0]
    if len(ok) > 1:
        why += "; auto times each CPU backend and keeps the fastest"
    return ok[::-1], why  # lowest priority (the base install's, the reference when none is accurate) first


def preflight(backend: str, opt: "BuildOptions") -> None:
    """Refuse what `backend` cannot build before any export or calibration work."""
    builder(backend).preflight(opt)


def calibrate(onnx_path: Path, opt: "BuildOptions", out_dir: Path, trt_version: Optional[str] = None):
    """The one calibration of an INT8 build (QdqFromOnnx with the build's options) -> CalibrationResult."""
    from ..calib import QdqFromOnnx

    extra = {"trt_version": trt_version} if trt_version else {}
    return QdqFromOnnx(onnx_path, data=opt.calib_data, method=opt.calib_method, samples=opt.calib_samples,
                       sensitivity=opt.sensitivity, auto_mixed=not opt.all_int8, seed=opt.seed,
                       progress=opt.progress, **extra)(out_dir)


@dataclasses.dataclass
class EngineFromOnnx:
    """Lazy stage: build an engine from `onnx_path` (deploykit export, manifest beside it) into `out_dir`
    (default `engines`).

    Attributes:
        onnx_path: the FP32 ONNX model: a path, an Artifact, or a stage (called first, into `out_dir`).
        options: BuildOptions.
        backend: "auto" or a registered backend name (`deploykit.runtime.backend.names()`).
    """

    onnx_path: Source
    options: BuildOptions = BuildOptions()
    backend: str = "auto"

    def __call__(self, out_dir: Optional[str | os.PathLike] = None) -> BuildResult:
        out_dir = DEFAULT_OUT if out_dir is None else out_dir
        names, why = plan_backends(self.backend, self.options)  # refusals before an input stage's work
        if isinstance(self.onnx_path, (str, os.PathLike)) and not Path(self.onnx_path).is_file():
            raise BadInputError(f"ONNX model {self.onnx_path} does not exist; export one with `deploykit export NAME`")
        source = resolve(self.onnx_path, out_dir, "EngineFromOnnx")
        p = source.path
        man = mf.read(mf.manifest_path_for(p))
        preflight_inputs(self.options, man, out_dir)
        # Every file of the build is staged and committed together (artifact_set.py): a killed or
        # failed build never leaves opt/ranges/cache/engine/manifest from two different runs.
        with artifact_set.staged(out_dir, p.name.rsplit(".", 1)[0]) as (stage, final):
            if len(names) > 1:
                from .auto_cpu import build_fastest_cpu

                res = build_fastest_cpu(p, man, self.options, stage, {n: builder(n).build for n in names})
            else:
                res = builder(names[0]).build(p, man, self.options, stage)
        res.engine_path, res.manifest_path = final(res.engine_path), final(res.manifest_path)
        res.extras = {k: final(v) for k, v in res.extras.items()}
        res.manifest = mf.read(res.manifest_path)
        res.notes.insert(0, f"backend {res.backend}: {why}" + ("; fastest accurate CPU backend, measured"
                                                               if len(names) > 1 else ""))
        res.source = source
        return res


def preflight_inputs(opt: BuildOptions, man: dict, out_dir: str | os.PathLike) -> None:
    """Before any export, optimisation or calibration: --out writable, --calib-data readable and sane."""
    from .. import atomic
    from ..calib.sources import check_calib_data

    atomic.ensure_folder(out_dir, "--out")
    if opt.timing_cache:
        atomic.ensure_file_writable(opt.timing_cache, "--timing-cache")
    if opt.int8 or (opt.fp16 and opt.keep_fp32_tensors is None):
        check_calib_data(opt.calib_data, man)
