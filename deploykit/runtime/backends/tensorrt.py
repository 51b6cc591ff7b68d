"""TensorRT backend: runs a serialized `.plan` with cuda-python buffers (no PyTorch, no pycuda).

NOT EXECUTED on the development and CI machines (no GPU, no TensorRT): written against TensorRT's
documented Python API (8.5+ name-based I/O: `num_io_tensors`, `get_tensor_name/mode/shape/dtype`,
`set_tensor_address`, `execute_async_v3`) and the cuda-python runtime bindings as TensorRT's own
samples use them (`samples/python/common_runtime.py`). What is tested here: the manifest check that
refuses a plan built by another TensorRT version or on another GPU *before* deserialisation, and
the BackendUnavailable errors naming the extra to install.

A plan is tied to the TensorRT version and the GPU (compute capability) it was built on; the
runtime's only portability check is deserialising it, which fails with a logger message. The
manifest beside each plan records both, so a mismatch is caught with a clear message first.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
from typing import Any, Mapping, Optional

import numpy as np

from ...errors import BackendUnavailable, BadInputError
from ..backend import Backend, BenchVariant, register
from ..engine import Engine

TRT_EXTRA = ("pip install 'deploykit[trt]' (CUDA 12 driver: tensorrt-cu12 10.x-11.x + cuda-python 12.x), 'deploykit[trt-cu13]' "
             "(CUDA 13 driver); on Jetson use JetPack's tensorrt with 'deploykit[jetson5]' (JetPack 5, CUDA 11.4) or "
             "'deploykit[jetson6]' (JetPack 6, CUDA 12.6)")


class EngineMismatch(BadInputError):
    """A plan built for another TensorRT version or GPU."""


def import_tensorrt():
    """`import tensorrt`, or BackendUnavailable naming the extra."""
    try:
        return importlib.import_module("tensorrt")
    except ImportError as exc:
        raise BackendUnavailable(f"the TensorRT backend needs the 'tensorrt' package, which is not installed "
                                 f"({exc}); {TRT_EXTRA}") from None


def cuda_runtime():
    """The cuda-python runtime bindings (`cuda.bindings.runtime`, or the older `cuda.cudart`)."""
    for mod in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            return importlib.import_module(mod)
        except ImportError:
            continue
    raise BackendUnavailable(f"the TensorRT backend needs cuda-python, which is not installed; {TRT_EXTRA}")


def _call(result):
    """cuda-python returns (err, *values); raise on err != 0, return the value(s)."""
    err, *vals = result
    if int(err) != 0:
        raise BackendUnavailable(f"CUDA runtime call failed with {err!r}; check the driver and that a GPU is visible")
    return vals[0] if len(vals) == 1 else tuple(vals)


def gpu_identity(device: int = 0) -> dict[str, str]:
    """{"gpu_name", "compute_capability"} of a CUDA device, via cuda-python.

    Raises:
        BackendUnavailable: cuda-python is missing, or the driver cannot be reached. cuda-python < 12.9
            raises RuntimeError("Failed to dlopen libcuda.so.1") from the call itself where no driver is
            installed, so every failure of the probe is caught and named.
    """
    cudart = cuda_runtime()
    try:
        props = _call(cudart.cudaGetDeviceProperties(int(device)))
    except BackendUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001  (RuntimeError without a driver; anything else: no usable GPU)
        raise BackendUnavailable(f"cuda-python cannot query GPU {device}: {type(exc).__name__}: {exc}; "
                                 f"install the NVIDIA driver or run on a machine with a GPU") from None
    name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
    return {"gpu_name": name.strip("\x00").strip(), "compute_capability": f"{props.major}.{props.minor}"}


def version_triple(version: str) -> tuple[int, int, int]:
    m = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", str(version))
    if not m:
        raise BadInputError(f"TensorRT version {version!r} is not like 10.3.0")
    return int(m[1]), int(m[2]), int(m[3] or 0)


def check_plan_compat(manifest: Mapping[str, Any], trt_version: str, gpu: Mapping[str, str], plan: str = "plan") -> None:
    """Refuse a plan whose manifest names another TensorRT version or GPU (call before deserialising).

    Args:
        manifest: the plan's manifest (its `engine` section holds trt_version, gpu_name, compute_capability).
        trt_version: the installed TensorRT (`tensorrt.__version__`).
        gpu: `gpu_identity()` of the device that will run it.

    Raises:
        EngineMismatch: with what the plan needs, what is here, and the rebuild command.
    """
    eng = manifest.get("engine", {})
    model = manifest.get("model", {}).get("name", "MODEL")
    rebuild = f"rebuild it here: deploykit build-engine {model} --backend tensorrt"
    built = eng.get("trt_version")
    if not built:
        raise EngineMismatch(f"{plan}: its manifest does not say which TensorRT built it, so it cannot be checked "
                             f"before loading; {rebuild}")
    if version_triple(built) != version_triple(trt_version):
        raise EngineMismatch(f"{plan} was built by TensorRT {built}, this machine has TensorRT {trt_version}; "
                             f"plans load only on the version that built them; {rebuild}")
    if eng.get("compute_capability") != gpu.get("compute_capability"):
        raise EngineMismatch(f"{plan} was built on {eng.get('gpu_name')} (compute capability "
                             f"{eng.get('compute_capability')}), this GPU is {gpu.get('gpu_name')} (compute capability "
                             f"{gpu.get('compute_capability')}); plans are not portable across GPU architectures; {rebuild}")
    if eng.get("gpu_name") != gpu.get("gpu_name"):
        raise EngineMismatch(f"{plan} was built on {eng.get('gpu_name')}, this GPU is {gpu.get('gpu_name')} (same "
                             f"compute capability, but TensorRT tunes tactics per GPU and warns or fails on another "
                             f"model); {rebuild}")


_LOGGER = None  # TensorRT keeps one logger per process: the first Builder/Runtime's wins


def capture_logger(trt):
    """The process's one trt.ILogger, keeping the messages so a failed build or load can say why.

    TensorRT registers a single logger per process (a second Runtime or Builder logs to the first
    one's), so every caller shares this instance; `log.since(mark)` gives the lines after `mark =
    len(log.lines)`.
    """
    global _LOGGER
    if _LOGGER is not None and _LOGGER.trt is trt:
        return _LOGGER

    class _Log(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.trt = trt
            self.lines: list[str] = []

        def log(self, severity, msg) -> None:
            if int(severity) <= int(trt.ILogger.Severity.WARNING):
                self.lines.append(f"{getattr(severity, 'name', severity)}: {msg}")

        def since(self, mark: int) -> list[str]:
            return self.lines[mark:]

    _LOGGER = _Log()
    return _LOGGER


def _max_shape(engine_shape, spec_shape: tuple) -> tuple:
    """The engine's tensor shape with its dynamic (-1) dims taken from the manifest (batch at max)."""
    return tuple(int(s) if int(s) >= 0 else int(m) for s, m in zip(engine_shape, spec_shape))


class TensorRTEngine(Engine):
    """Runs a `.plan` on a CUDA GPU. NOT EXECUTED on machines without a GPU (see module docstring).

    A plan built for DLA is loaded with `runtime.DLA_core` set from the manifest (as trtexec does),
    and a plan with a dynamic batch (`manifest["dynamic_batch"]`) gets its input shapes set per call
    (`set_input_shape`), its buffers sized for the manifest's shapes (batch at max).

    Args:
        device: CUDA device index; default 0.
    """

    def __init__(self, path, manifest, device: int = 0) -> None:
        super().__init__(path, manifest)
        self.device = int(device)
        self.dynamic_batch = self.manifest.get("dynamic_batch") or None
        self._trt = self._engine = self._context = self._stream = None
        self._buffers: dict[str, tuple[int, np.ndarray]] = {}

    def _activate(self) -> None:
        trt = import_tensorrt()
        cudart = cuda_runtime()
        check_plan_compat(self.manifest, trt.__version__, gpu_identity(self.device), self.path.name)
        _call(cudart.cudaSetDevice(self.device))
        log = capture_logger(trt)
        mark = len(log.lines)
        runtime = trt.Runtime(log)
        dla_core = self.manifest.get("engine", {}).get("dla_core")
        if dla_core is not None:  # a DLA plan deserialises onto the core it names (trtexec sets it too)
            runtime.DLA_core = int(dla_core)
        engine = runtime.deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            raise EngineMismatch(f"{self.path.name}: TensorRT {trt.__version__} could not deserialise the plan: "
                                 f"{' | '.join(log.since(mark)[-3:]) or 'no message'}; rebuild it on this machine")
        self._trt, self._engine, self._runtime = trt, engine, runtime
        self._context = engine.create_execution_context()
        self._stream = _call(cudart.cudaStreamCreate())
        specs = {s.name: s.shape for s in (*self.inputs, *self.outputs)}
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            shape = _max_shape(engine.get_tensor_shape(name), specs.get(name, ()))
            host = np.empty(int(np.prod(shape)), dtype=np.dtype(trt.nptype(engine.get_tensor_dtype(name))))
            ptr = _call(cudart.cudaMalloc(max(host.nbytes, 1)))
            self._context.set_tensor_address(name, int(ptr))
            self._buffers[name] = (int(ptr), host)

    def _deactivate(self) -> None:
        cudart = cuda_runtime()
        for ptr, _ in self._buffers.values():
            cudart.cudaFree(ptr)
        if self._stream is not None:
            cudart.cudaStreamDestroy(self._stream)
        self._buffers, self._context, self._engine, self._stream = {}, None, None, None

    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart = cuda_runtime()
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for name, arr in feeds.items():
            ptr, host = self._buffers[name]
            if arr.size > host.size:
                raise BadInputError(f"{self.path.name}: input {name!r} of shape {list(arr.shape)} is larger than the "
                                    f"plan's maximum ({host.size} values); rebuild with a larger batch maximum")
            if self.dynamic_batch:
                self._context.set_input_shape(name, tuple(arr.shape))
            view = host[:arr.size].reshape(arr.shape)
            np.copyto(view, arr, casting="same_kind")
            # host pointers as ints (`.ctypes.data`), as TensorRT's samples/python/common_runtime.py does; the views
            # live in self._buffers until the stream is synchronised
            _call(cudart.cudaMemcpyAsync(ptr, view.ctypes.data, view.nbytes, h2d, self._stream))
        if not self._context.execute_async_v3(self._stream):
            raise BackendUnavailable(f"{self.path.name}: TensorRT execute_async_v3 failed; rerun with the TensorRT "
                                     f"log (`trtexec --loadEngine={self.path.name} --verbose`) to see why")
        outs = {}
        for spec in self.outputs:
            ptr, host = self._buffers[spec.name]
            shape = tuple(self._context.get_tensor_shape(spec.name)) if self.dynamic_batch else spec.shape
            view = host[:int(np.prod(shape))].reshape(shape)
            _call(cudart.cudaMemcpyAsync(view.ctypes.data, ptr, view.nbytes, d2h, self._stream))
            outs[spec.name] = view
        _call(cudart.cudaStreamSynchronize(self._stream))
        return {k: v.copy() for k, v in outs.items()}


def gpu_present() -> tuple[bool, str]:
    """Whether a CUDA GPU is visible, and how that was decided (cuda-python, else /dev/nvidia*).

    Any failure of the cuda-python probe means "no GPU" with its reason: cuda-python < 12.9 raises
    RuntimeError("Failed to dlopen libcuda.so.1") from cudaGetDeviceCount() on a machine without a driver.
    """
    try:
        cudart = cuda_runtime()
        err, count = cudart.cudaGetDeviceCount()
        if int(err) == 0 and count > 0:
            return True, f"cuda-python sees {count} GPU(s)"
        return False, f"cuda-python sees no GPU ({err!r})"
    except BackendUnavailable:
        pass  # no cuda-python: look for the device nodes instead
    except Exception as exc:  # noqa: BLE001  (no driver, broken install: all mean no usable GPU)
        return False, f"cuda-python cannot reach a driver ({type(exc).__name__}: {exc})"
    devs = [p for p in ("/dev/nvidia0", "/dev/nvhost-ctrl-gpu") if os.path.exists(p)]
    return bool(devs), (f"{devs[0]} exists" if devs else "no /dev/nvidia0 or Jetson GPU device node")


def _probe() -> Optional[str]:
    """TensorRT first (an import spec, nothing loaded), the GPU only where TensorRT exists."""
    if importlib.util.find_spec("tensorrt") is None:
        return "tensorrt is not installed (pip install 'deploykit[trt]')"
    try:
        cuda_runtime()
    except BackendUnavailable:
        return "cuda-python is not installed (pip install 'deploykit[trt]')"
    gpu, how = gpu_present()
    return None if gpu else f"no GPU ({how})"


register(Backend(
    name="tensorrt", engine=f"{__name__}:TensorRTEngine", builder="deploykit.build.backends.tensorrt",
    probe=_probe, summary="tensorrt is importable and a GPU is present", device="GPU", priority=30,
    suffixes=(".plan", ".engine"),
    bench=(BenchVariant("trt-fp32", {}), BenchVariant("trt-fp16", {"fp16": True}),
           BenchVariant("trt-int8", {"int8": True}))))
