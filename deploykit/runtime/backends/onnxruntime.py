"""ONNX Runtime backend (CPU by default; CUDA/TensorRT execution providers with the `[gpu]` extra)."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ...errors import BadInputError, require
from ..backend import Backend, BenchVariant, register
from ..engine import Engine


class OnnxRuntimeEngine(Engine):
    """Runs an `.onnx` artifact in an ONNX Runtime InferenceSession.

    Args:
        threads: intra-op threads; default None lets ONNX Runtime decide.
        providers: execution providers; default ["CPUExecutionProvider"].
        optimization: "all" (default), "extended", "basic" or "disable".
    """

    def __init__(self, path, manifest, threads: Optional[int] = None,
                 providers: Optional[Sequence[str]] = None, optimization: str = "all") -> None:
        super().__init__(path, manifest)
        self.threads = threads
        self.providers = list(providers or ["CPUExecutionProvider"])
        self.optimization = optimization
        self.session = None

    def _activate(self) -> None:
        ort = require("onnxruntime", "gpu" if "CUDAExecutionProvider" in self.providers else "export")
        opts = ort.SessionOptions()
        if self.threads:
            opts.intra_op_num_threads = int(self.threads)
        level = {"all": "ORT_ENABLE_ALL", "extended": "ORT_ENABLE_EXTENDED", "basic": "ORT_ENABLE_BASIC",
                 "disable": "ORT_DISABLE_ALL"}[self.optimization]
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        opts.log_severity_level = 3
        # Stop the intra-op pool spinning after each run: a spinning idle session steals cores from
        # the next session in the same process (measured: 35 ms instead of 25 ms for an INT8 hrnet).
        opts.add_session_config_entry("session.force_spinning_stop", "1")
        self.session = ort.InferenceSession(str(self.path), opts, providers=self.providers)

    def _io_specs(self):
        """Graph inputs/outputs, read with `onnx` (graph only) when installed, else by opening a bare session."""
        try:
            import onnx
        except ImportError:
            onnx = None
        try:
            if onnx is not None:
                return _specs_from_onnx(onnx, self.path)
            return _specs_from_session(self.path)
        except Exception as exc:  # DecodeError, ORT's InvalidProtobuf/Fail: the file is not a usable model
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise BadInputError(f"{self.path} is not a readable ONNX model ({type(exc).__name__}: {first}); "
                                f"re-export it (the file is corrupt or truncated)") from None

    def _deactivate(self) -> None:
        self.session = None

    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [s.name for s in self.outputs]
        return dict(zip(names, self.session.run(names, feeds)))


_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64",
              "tensor(int32)": "int32", "tensor(uint8)": "uint8", "tensor(bool)": "bool"}


def _specs_from_onnx(onnx, path):
    m = onnx.load(str(path), load_external_data=False)
    inits = {t.name for t in m.graph.initializer}

    def spec(v):
        t = v.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in t.shape.dim]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name if t.elem_type else "?"
        return v.name, shape, dtype

    return [spec(v) for v in m.graph.input if v.name not in inits], [spec(v) for v in m.graph.output]


def _specs_from_session(path):
    ort = require("onnxruntime", "export")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return ([(a.name, list(a.shape), _ORT_TYPES.get(a.type, a.type)) for a in sess.get_inputs()],
            [(a.name, list(a.shape), _ORT_TYPES.get(a.type, a.type)) for a in sess.get_outputs()])


def _probe():
    try:
        import onnxruntime
    except ImportError as exc:
        return f"onnxruntime is not importable ({exc}); pip install deploykit"
    if "CPUExecutionProvider" not in onnxruntime.get_available_providers():
        return "onnxruntime has no CPUExecutionProvider"
    return None


def _doctor_rows(facts) -> list[dict]:
    """Two rows: the CPU provider (the base install) and the CUDA provider (the `[gpu]` extra)."""
    providers, gpus = facts.get("providers", []), facts.get("gpus", [])
    cpu = "CPUExecutionProvider" in providers
    cuda = "CUDAExecutionProvider" in providers
    return [{"backend": "onnxruntime (CPU)", "usable": cpu,
             "why": "CPUExecutionProvider" if cpu else "onnxruntime is not importable"},
            {"backend": "onnxruntime (CUDA)", "usable": cuda and bool(gpus),
             "why": ("CUDAExecutionProvider and a GPU" if cuda and gpus else
                     "no CUDAExecutionProvider (pip install 'deploykit[gpu]')" if not cuda else "no GPU found")}]


register(Backend(
    name="onnxruntime", engine=f"{__name__}:OnnxRuntimeEngine", builder="deploykit.build.backends.onnxruntime",
    probe=_probe, summary="ONNX Runtime (CPU) builds everywhere", device="CPU", priority=10, suffixes=(".onnx",),
    bench=(BenchVariant("ort-fp32"), BenchVariant("ort-int8", {"int8": True})),
    title="onnxruntime (CPU)", doctor=_doctor_rows))
