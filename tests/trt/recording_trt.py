"""A recording TensorRT (and cuda-python runtime): the documented Python API surface deploykit uses, per
version, with every access recorded. A member the version does not have raises AttributeError and is
listed in `rec.missing`, so a test can assert that a path never touches it.

Member lists, from the bindings' sources (read with the search tool; ids are the index's file ids):
- 8.5: NVIDIA/TensorRT release/8.5 python/src/infer/pyCore.cpp (id 2288052442): BuilderFlag has FP16, INT8,
  TF32, GPU_FALLBACK, OBEY/PREFER_PRECISION_CONSTRAINTS, no VERSION_COMPATIBLE; NetworkDefinitionCreationFlag
  EXPLICIT_BATCH, EXPLICIT_PRECISION; IBuilderConfig int8_calibrator, max_workspace_size (deprecated),
  set_memory_pool_limit, set/clear_flag, default_device_type, DLA_core, can_run_on_DLA, add_optimization_profile,
  create/set/get_timing_cache; Builder create_network, create_builder_config, create_optimization_profile,
  build_serialized_network, build_engine (deprecated), num_DLA_cores, platform_has_fast_fp16; Runtime
  deserialize_cuda_engine, DLA_core; ICudaEngine num_bindings (deprecated) and the name-based num_io_tensors,
  get_tensor_name/mode/shape/dtype; IExecutionContext execute_async_v2, set_input_shape, get_tensor_shape,
  set_tensor_address, execute_async_v3; IOptimizationProfile set_shape.
- 8.5 graph: python/src/infer/pyGraph.cpp (id 1318800788): ILayer name, num_outputs, precision, get_output,
  set_output_type; ITensor dynamic_range / set_dynamic_range; INetworkDefinition num_layers/inputs/outputs.
- 8.6: as 8.5 plus BuilderFlag VERSION_COMPATIBLE, EXCLUDE_LEAN_RUNTIME, FP8 (VERSION_COMPATIBLE "since 8.6":
  TensorRT developer guide, advanced.html; shared/tensorrt_facts.md section 3).
- 10.x: NVIDIA/TensorRT pyCore.cpp of a 10.x release (id 2933025354): BuilderFlag FP16, BF16, INT8, TF32, ...,
  no STRICT_TYPES; NetworkDefinitionCreationFlag EXPLICIT_BATCH ("ignored" from 10.0), STRONGLY_TYPED;
  int8_calibrator and set_calibration_profile "Deprecated in TensorRT 10.1"; ITensor.dynamic_range "Deprecated
  in TensorRT 10.1" (pyGraph.cpp id 2608858163); no num_bindings / execute_async_v2 / build_engine
  (tensorrt_facts.md 2.3: present in 8.6, gone in 10.3).
- 11.x: the 10.x lists less what "Removed Python APIs and Replacements" lists
  (docs.nvidia.com/deeplearning/tensorrt/latest/api/migration/tensorrt-10x-to-11x-python-api-reference.html):
  BuilderFlag FP16, INT8, FP8, BF16, INT4, FP4, OBEY_/PREFER_PRECISION_CONSTRAINTS, DIRECT_IO;
  IBuilderConfig int8_calibrator, set/get_calibration_profile, quantization flags; EXPLICIT_BATCH (11.1 enum,
  tensorrt_facts.md 2.3); platform_has_fast_fp16; the calibrators. ITensor.dynamic_range is left out too
  [inferred: implicit quantization is removed in 11]. TF32 stays: it is not on the removed list.
- The parser: onnx-tensorrt python bindings (pyOnnx.cpp, ids 37796296627, 2278488568): OnnxParser(network,
  logger), parse, num_errors, get_error.
- IBuilderConfig.set_timing_cache returns "A BOOL indicating whether the operation is done successfully"
  (pyCoreDoc.h, id 2889467438); TF32 is "Enabled by default" (same file).
- cuda-python runtime (cuda.bindings.runtime from 12.x, cuda.cudart in 11.8): every call returns
  (cudaError_t, *values); the ones used are listed in CUDART_MEMBERS.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Callable, Optional

import numpy as np

BUILDER_FLAGS_85 = {"FP16", "INT8", "DEBUG", "GPU_FALLBACK", "STRICT_TYPES", "REFIT", "DISABLE_TIMING_CACHE", "TF32",
                    "SPARSE_WEIGHTS", "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS",
                    "DIRECT_IO", "REJECT_EMPTY_ALGORITHMS", "ENABLE_TACTIC_HEURISTIC"}
BUILDER_FLAGS_86 = BUILDER_FLAGS_85 | {"VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME", "FP8"}
BUILDER_FLAGS_10 = {"FP16", "BF16", "INT8", "DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32",
                    "SPARSE_WEIGHTS", "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS",
                    "DIRECT_IO", "REJECT_EMPTY_ALGORITHMS", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME", "FP8",
                    "ERROR_ON_TIMING_CACHE_MISS", "DISABLE_COMPILATION_CACHE", "WEIGHTLESS", "STRIP_PLAN"}
REMOVED_IN_11 = {"FP16", "INT8", "FP8", "BF16", "INT4", "FP4", "OBEY_PRECISION_CONSTRAINTS",
                 "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO"}

_COMMON = {
    "tensorrt": {"__version__", "Builder", "Runtime", "OnnxParser", "ILogger", "Logger", "BuilderFlag",
                 "NetworkDefinitionCreationFlag", "MemoryPoolType", "DeviceType", "DataType", "TensorIOMode",
                 "float32", "float16", "int32", "int8", "bool", "nptype"},
    "Builder": {"create_network", "create_builder_config", "create_optimization_profile", "build_serialized_network",
                "num_DLA_cores", "platform_has_tf32"},
    "IBuilderConfig": {"set_memory_pool_limit", "set_flag", "clear_flag", "get_flag", "default_device_type",
                       "DLA_core", "can_run_on_DLA", "add_optimization_profile", "create_timing_cache",
                       "set_timing_cache", "get_timing_cache"},
    "INetworkDefinition": {"num_layers", "get_layer", "num_inputs", "get_input", "num_outputs", "get_output"},
    "ILayer": {"name", "type", "num_outputs", "get_output", "precision", "set_output_type", "get_output_type"},
    "ITensor": {"name", "shape", "dtype"},
    "OnnxParser": {"parse", "num_errors", "get_error"},
    "IOptimizationProfile": {"set_shape"},
    "ITimingCache": {"serialize"},
    "Runtime": {"deserialize_cuda_engine", "DLA_core"},
    "ICudaEngine": {"num_io_tensors", "get_tensor_name", "get_tensor_mode", "get_tensor_shape", "get_tensor_dtype",
                    "create_execution_context"},
    "IExecutionContext": {"set_tensor_address", "set_input_shape", "get_tensor_shape", "execute_async_v3"},
    "MemoryPoolType": {"WORKSPACE", "DLA_MANAGED_SRAM", "DLA_LOCAL_DRAM", "DLA_GLOBAL_DRAM"},
    "DeviceType": {"GPU", "DLA"},
    # ILogger: py::init, log, and the Severity enum (pyCore.cpp baseLoggerBinding, every version)
    "ILogger": {"__init__", "log", "Severity"},
    "Severity": {"INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"},
}
_PRE_11 = {"tensorrt": {"IInt8EntropyCalibrator2", "IInt8MinMaxCalibrator"}, "ITensor": {"dynamic_range"},
           "IBuilderConfig": {"int8_calibrator", "set_calibration_profile"}, "Builder": {"platform_has_fast_fp16"}}
_ONLY_8 = {"Builder": {"build_engine", "max_batch_size"}, "IBuilderConfig": {"max_workspace_size"},
           "ICudaEngine": {"num_bindings"}, "IExecutionContext": {"execute_async_v2"}}
VERSIONS = ("8.5.2", "8.6.1", "10.0.1", "10.3.0", "11.1.0")


def members(version: str) -> dict[str, set[str]]:
    """{class name: member names} of a TensorRT version (see the module docstring for the sources)."""
    major = int(version.split(".")[0])
    out = {k: set(v) for k, v in _COMMON.items()}
    extra = [_PRE_11] if major < 11 else []
    extra += [_ONLY_8] if major < 10 else []
    for e in extra:
        for k, v in e.items():
            out[k] |= v
    out["BuilderFlag"] = (BUILDER_FLAGS_85 if version.startswith("8.5") else BUILDER_FLAGS_86 if major == 8
                          else BUILDER_FLAGS_10 if major == 10 else BUILDER_FLAGS_10 - REMOVED_IN_11)
    out["NetworkDefinitionCreationFlag"] = ({"EXPLICIT_BATCH", "EXPLICIT_PRECISION"} if major < 10 else
                                            {"EXPLICIT_BATCH", "STRONGLY_TYPED"} if major == 10 else {"STRONGLY_TYPED"})
    out["DataType"] = {"FLOAT", "HALF", "INT8", "INT32", "BOOL"}
    out["TensorIOMode"] = {"NONE", "INPUT", "OUTPUT"}
    return out


_FLAG_VALUES = {"EXPLICIT_BATCH": 0, "EXPLICIT_PRECISION": 1, "STRONGLY_TYPED": 1}


@dataclasses.dataclass(frozen=True)
class EnumVal:
    kind: str
    name: str
    value: int

    def __int__(self) -> int:
        return self.value


FLOAT, HALF, INT32, BOOL = (EnumVal("DataType", n, i) for i, n in enumerate(("FLOAT", "HALF", "INT32", "BOOL")))
_NP = {"FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32, "BOOL": np.bool_, "INT8": np.int8}


@dataclasses.dataclass
class Net:
    """What the parsed network holds: layers as (name, [output dtype]), inputs as (name, shape, dtype)."""

    layers: list = dataclasses.field(default_factory=lambda: [("conv", [FLOAT]), ("relu", [FLOAT])])
    inputs: list = dataclasses.field(default_factory=lambda: [("x", (1, 4), FLOAT)])
    outputs: list = dataclasses.field(default_factory=lambda: [("y", (1, 4), FLOAT)])


class Recorder:
    """The shared log: `calls` [(kind, op, member, args)], `missing` ["Kind.member"] touched but absent."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.members = members(version)
        self.calls: list[tuple] = []
        self.missing: list[str] = []

    def check(self, kind: str, name: str) -> None:
        if name not in self.members.get(kind, ()):
            self.missing.append(f"{kind}.{name}")
            raise AttributeError(f"TensorRT {self.version}: {kind} has no member {name!r}")

    def touched(self) -> set[str]:
        return {f"{k}.{m}" for k, _, m, _ in self.calls}

    def ops(self, kind: Optional[str] = None) -> list[tuple]:
        return [(k, op, m, a) for k, op, m, a in self.calls if kind is None or k == kind]


class Obj:
    """Base of every recorded object: public reads, calls and writes are checked and logged."""

    KIND = ""

    def __init__(self, rec: Recorder, **state) -> None:
        object.__setattr__(self, "_rec", rec)
        for k, v in state.items():
            object.__setattr__(self, k, v)

    def __getattribute__(self, name):
        if name.startswith("_") or name == "KIND":
            return object.__getattribute__(self, name)
        rec, kind = object.__getattribute__(self, "_rec"), type(self).KIND
        rec.check(kind, name)
        val = object.__getattribute__(self, name)
        if callable(val) and not isinstance(val, (EnumVal, Obj, type)):
            def call(*args, **kw):
                rec.calls.append((kind, "call", name, (args, kw)))
                return val(*args, **kw)
            return call
        rec.calls.append((kind, "get", name, ()))
        return val

    def __setattr__(self, name, value) -> None:
        if name.startswith("_"):  # the double's own state
            return object.__setattr__(self, name, value)
        rec = object.__getattribute__(self, "_rec")
        rec.check(type(self).KIND, name)
        rec.calls.append((type(self).KIND, "set", name, (value,)))
        object.__setattr__(self, name, value)


class Enum(Obj):
    def __init__(self, rec: Recorder, kind: str) -> None:
        super().__init__(rec, _kind=kind)

    def __getattribute__(self, name):
        if name.startswith("_"):
            return object.__getattribute__(self, name)
        rec, kind = object.__getattribute__(self, "_rec"), object.__getattribute__(self, "_kind")
        rec.check(kind, name)
        rec.calls.append((kind, "get", name, ()))
        value = _FLAG_VALUES.get(name, sorted(rec.members[kind]).index(name))
        return EnumVal(kind, name, value)


class Tensor(Obj):
    KIND = "ITensor"


class Layer(Obj):
    KIND = "ILayer"

    def get_output(self, j):
        return self._outs[j]

    def set_output_type(self, j, dtype):
        self._out_types[j] = dtype

    def get_output_type(self, j):
        return self._out_types.get(j, self._outs[j]._dtype)


class Network(Obj):
    KIND = "INetworkDefinition"

    def get_layer(self, i):
        return self._layers[i]

    def get_input(self, i):
        return self._inputs[i]

    def get_output(self, i):
        return self._outputs[i]


class Parser(Obj):
    KIND = "OnnxParser"

    def parse(self, blob):
        return self._ok

    def get_error(self, i):
        return f"error {i}"


class Profile(Obj):
    KIND = "IOptimizationProfile"

    def set_shape(self, name, lo, opt, hi):
        self._shapes[name] = (tuple(lo), tuple(opt), tuple(hi))


class TimingCache(Obj):
    KIND = "ITimingCache"

    def serialize(self):
        return self._blob


class Config(Obj):
    KIND = "IBuilderConfig"

    def set_memory_pool_limit(self, pool, size):
        self._pools[pool.name] = size

    def set_flag(self, flag):
        self._flags.add(flag.name)

    def clear_flag(self, flag):
        self._flags.discard(flag.name)

    def get_flag(self, flag):
        return flag.name in self._flags

    def can_run_on_DLA(self, layer):
        return self._dla_ok(layer._name)

    def add_optimization_profile(self, profile):
        self._profiles.append(profile)
        return len(self._profiles) - 1

    def create_timing_cache(self, blob):
        return TimingCache(self._rec, _blob=b"cache:" + bytes(blob))

    def set_timing_cache(self, cache, ignore_mismatch):
        ok = self._timing_ok.pop(0) if self._timing_ok else True
        if ok:
            self._tcache = cache
        return ok

    def get_timing_cache(self):
        return self._tcache


class Builder(Obj):
    KIND = "Builder"

    def __init__(self, rec, logger, net: Net, opts: dict) -> None:
        super().__init__(rec, _net=net, _o=opts, _logger=logger, num_DLA_cores=opts.get("dla_cores", 0), platform_has_tf32=True)

    def create_network(self, flags=0):
        self._rec.network_flags = {n for n, v in _FLAG_VALUES.items() if flags & (1 << v)
                                   and n in self._rec.members["NetworkDefinitionCreationFlag"]}
        rec, net = self._rec, self._net

        def tensor(name, shape, dtype):
            return Tensor(rec, name=name, shape=tuple(shape), dtype=dtype, _name=name, _dtype=dtype)

        layers = [Layer(rec, name=n, type="layer", num_outputs=len(d), precision=FLOAT, _name=n, _out_types={},
                        _outs=[tensor(f"{n}_out{j}" if len(d) > 1 else f"{n}_out", (1,), t) for j, t in enumerate(d)])
                  for n, d in net.layers]
        self._rec.network = Network(rec, num_layers=len(layers), num_inputs=len(net.inputs),
                                    num_outputs=len(net.outputs), _layers=layers,
                                    _inputs=[tensor(*i) for i in net.inputs], _outputs=[tensor(*o) for o in net.outputs])
        return self._rec.network

    def create_builder_config(self):
        self._rec.config = Config(self._rec, _pools={}, _flags={"TF32"}, _profiles=[], _tcache=None,
                                  _timing_ok=list(self._o.get("timing_ok", [])),
                                  _dla_ok=self._o.get("dla_ok", lambda name: True))
        return self._rec.config

    def create_optimization_profile(self):
        return Profile(self._rec, _shapes={})

    def build_serialized_network(self, network, config):
        if self._logger is not None:  # TensorRT logs through the registered logger while it builds
            self._logger.log(ILoggerBase.Severity.WARNING, "recorded build")
        return self._o.get("plan", b"PLAN")


class Context(Obj):
    KIND = "IExecutionContext"

    def set_tensor_address(self, name, ptr):
        self._addr[name] = ptr

    def set_input_shape(self, name, shape):
        self._shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        return self._engine_._shape_of(name, self._shapes)

    def execute_async_v3(self, stream):
        return self._engine_._run(self)


class CudaEngine(Obj):
    KIND = "ICudaEngine"

    def get_tensor_name(self, i):
        return self._io[i][0]

    def get_tensor_mode(self, name):
        return EnumVal("TensorIOMode", "INPUT" if name in self._ins else "OUTPUT", 1)

    def get_tensor_shape(self, name):
        return self._shape[name]

    def get_tensor_dtype(self, name):
        return FLOAT

    def create_execution_context(self):
        return Context(self._rec, _engine_=self, _addr={}, _shapes={})

    def _shape_of(self, name, set_shapes):
        if name in set_shapes:
            return set_shapes[name]
        batch = next(iter(set_shapes.values()))[0] if set_shapes else None
        s = self._shape[name]
        return tuple(batch if (d < 0 and batch is not None) else d for d in s)

    def _run(self, ctx) -> bool:
        mem = self._cudart.mem
        ins = {n: mem[ctx._addr[n]][:int(np.prod(self._shape_of(n, ctx._shapes))) * 4].view(np.float32)
               .reshape(self._shape_of(n, ctx._shapes)) for n in self._ins}
        for name, val in self._fn(ins).items():
            raw = np.ascontiguousarray(val, np.float32).view(np.uint8).reshape(-1)
            mem[ctx._addr[name]][:raw.size] = raw
        return True


class Runtime(Obj):
    KIND = "Runtime"

    def __init__(self, rec, logger, engine_spec: dict) -> None:
        super().__init__(rec, _spec=engine_spec, _logger=logger)
        rec.loggers.append(logger)

    def deserialize_cuda_engine(self, blob):
        s = self._spec
        io = [(n, shp) for n, shp in [*s["inputs"], *s["outputs"]]]
        return CudaEngine(self._rec, num_io_tensors=len(io), _io=io, _ins={n for n, _ in s["inputs"]},
                          _shape=dict(io), _fn=s["fn"], _cudart=s["cudart"])


class ILoggerBase:
    class Severity(enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    def __init__(self) -> None:
        pass


class Module(Obj):
    KIND = "tensorrt"


def make_trt(version: str, net: Optional[Net] = None, engine: Optional[dict] = None, **opts):
    """(module, recorder): a recording `tensorrt` of `version`. opts: parse_ok, timing_ok (list of set_timing_cache
    results), plan (bytes or None), dla_cores, dla_ok(layer name) -> bool."""
    rec = Recorder(version)
    rec.loggers = []
    rec.builders = []
    net = net or Net()

    def builder(logger):
        rec.loggers.append(logger)
        b = Builder(rec, logger, net, opts)
        rec.builders.append(b)
        return b

    def parser(network, logger):
        rec.loggers.append(logger)
        return Parser(rec, num_errors=1, _ok=opts.get("parse_ok", True))

    mod = Module(rec, __version__=version, Builder=builder, OnnxParser=parser, ILogger=ILoggerBase, Logger=ILoggerBase,
                 Runtime=lambda logger: Runtime(rec, logger, engine or {}),
                 BuilderFlag=Enum(rec, "BuilderFlag"), NetworkDefinitionCreationFlag=Enum(rec, "NetworkDefinitionCreationFlag"),
                 MemoryPoolType=Enum(rec, "MemoryPoolType"), DeviceType=Enum(rec, "DeviceType"),
                 DataType=Enum(rec, "DataType"), TensorIOMode=Enum(rec, "TensorIOMode"),
                 float32=FLOAT, float16=HALF, int32=INT32, int8=EnumVal("DataType", "INT8", 4), bool=BOOL,
                 nptype=lambda dt: _NP[dt.name], IInt8EntropyCalibrator2=object, IInt8MinMaxCalibrator=object)
    return mod, rec


# -- cuda-python ---------------------------------------------------------------------------------

CUDART_MEMBERS = {"cudaGetDeviceCount", "cudaGetDeviceProperties", "cudaSetDevice", "cudaStreamCreate", "cudaMalloc",
                  "cudaFree", "cudaStreamDestroy", "cudaMemcpyAsync", "cudaStreamSynchronize", "cudaMemcpyKind"}


class FakeCudart:
    """cuda-python's runtime module: (err, *values) returns, device memory as byte arrays.

    driverless: cudaGetDeviceCount/Properties raise RuntimeError("Failed to dlopen libcuda.so.1"), as
    cuda-python 12.4.0 and cuda-bindings 12.8.0 do without a driver (issue 13)."""

    class cudaMemcpyKind:
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    def __init__(self, driverless: bool = False, gpu=(b"NVIDIA H200", 9, 0), count: int = 1) -> None:
        self.driverless, self.gpu, self.count = driverless, gpu, count
        self.mem: dict[int, np.ndarray] = {}
        self.calls: list[str] = []
        self._next = 0x1000

    def __getattribute__(self, name):
        if name.startswith("cuda"):
            if name not in CUDART_MEMBERS:
                raise AttributeError(name)
            object.__getattribute__(self, "calls").append(name)
        return object.__getattribute__(self, name)

    def _driver(self):
        if self.driverless:
            raise RuntimeError("Failed to dlopen libcuda.so.1")

    def cudaGetDeviceCount(self):
        self._driver()
        return 0, self.count

    def cudaGetDeviceProperties(self, device):
        self._driver()
        name, major, minor = self.gpu
        return 0, type("cudaDeviceProp", (), {"name": name, "major": major, "minor": minor})()

    def cudaSetDevice(self, device):
        return (0,)

    def cudaStreamCreate(self):
        return 0, 7

    def cudaStreamDestroy(self, stream):
        return (0,)

    def cudaStreamSynchronize(self, stream):
        return (0,)

    def cudaMalloc(self, n):
        self._next += 0x1000
        self.mem[self._next] = np.zeros(int(n), np.uint8)
        return 0, self._next

    def cudaFree(self, ptr):
        self.mem.pop(int(ptr))
        return (0,)

    def cudaMemcpyAsync(self, dst, src, count, kind, stream):
        """Host pointers are ints (`ndarray.ctypes.data`), read and written through ctypes."""
        import ctypes

        def host(addr):
            return np.ctypeslib.as_array((ctypes.c_uint8 * int(count)).from_address(int(addr)))

        if kind == self.cudaMemcpyKind.cudaMemcpyHostToDevice:
            self.mem[int(dst)][:count] = host(src)
        else:
            host(dst)[:] = self.mem[int(src)][:count]
        return (0,)


def install_cudart(monkeypatch, cudart: FakeCudart) -> None:
    """Make `cuda.bindings.runtime` (cuda-python >= 12) resolve to `cudart`."""
    import sys
    import types

    pkg, bindings = types.ModuleType("cuda"), types.ModuleType("cuda.bindings")
    bindings.runtime = cudart
    pkg.bindings = bindings
    monkeypatch.setitem(sys.modules, "cuda", pkg)
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", cudart)


Fn = Callable[[dict], dict]
