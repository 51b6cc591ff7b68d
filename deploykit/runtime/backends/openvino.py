"""OpenVINO backend (CPU): runs an `.onnx` artifact through OpenVINO's CPU plugin (`[openvino]` extra).

OpenVINO reads our ONNX files directly, FP32 ones and the S8S8 Q/DQ ones made for TensorRT alike
(its CPU plugin executes Q/DQ pairs as INT8 kernels). Its CPU plugin runs in bf16 by default on a
CPU with AVX512_BF16 or AMX, so the precision is always set explicitly from the manifest
(`INFERENCE_PRECISION_HINT`): an "fp32" engine that did not set it would silently be bf16.
"""

from __future__ import annotations

import importlib.util
import threading
from typing import Optional

import numpy as np

from ...errors import BadInputError, require
from ..backend import Backend, BenchVariant, register
from ..engine import Engine

# manifest precision -> OpenVINO inference precision hint; INT8 engines keep f32 for the float parts
PRECISION_HINT = {"fp32": "f32", "int8": "f32", "bf16": "bf16"}
PERFORMANCE_HINTS = ("LATENCY", "THROUGHPUT")


def bf16_supported() -> bool:
    """Whether this CPU's OpenVINO plugin reports native bf16 (AVX512_BF16 / AMX)."""
    ov = require("openvino", "openvino")
    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class OpenVinoEngine(Engine):
    """Runs an `.onnx` artifact with OpenVINO on the CPU.

    Args:
        threads: inference threads (`INFERENCE_NUM_THREADS`); default None lets OpenVINO decide.
        performance_hint: "LATENCY" (default) or "THROUGHPUT".
        cache_dir: OpenVINO's compiled-model cache folder (`CACHE_DIR`); default the manifest's
            `engine.cache_dir`, beside the engine file, else no cache.
    """

    def __init__(self, path, manifest, threads: Optional[int] = None, performance_hint: str = "LATENCY",
                 cache_dir: Optional[str] = None) -> None:
        super().__init__(path, manifest)
        if performance_hint not in PERFORMANCE_HINTS:
            raise BadInputError(f"performance_hint {performance_hint!r} is not one of {', '.join(PERFORMANCE_HINTS)}")
        precision = self.manifest.get("engine", {}).get("precision", "fp32")
        if precision not in PRECISION_HINT:
            raise BadInputError(f"{self.path.name}: precision {precision!r} has no OpenVINO CPU mode; "
                                f"OpenVINO engines are {', '.join(PRECISION_HINT)}")
        self.precision = precision
        self.threads = threads
        self.performance_hint = performance_hint
        # the manifest names the cache folder relative to the engine file, never to the working directory
        recorded = self.manifest.get("engine", {}).get("cache_dir")
        self.cache_dir = cache_dir or (str(self.path.parent / recorded) if recorded else None)
        self.compiled = None
        self._lock = threading.Lock()

    def config(self) -> dict[str, str]:
        """The CPU plugin properties this engine compiles with."""
        cfg = {"INFERENCE_PRECISION_HINT": PRECISION_HINT[self.precision], "PERFORMANCE_HINT": self.performance_hint}
        if self.threads:
            cfg["INFERENCE_NUM_THREADS"] = str(int(self.threads))
        return cfg

    def _activate(self) -> None:
        ov = require("openvino", "openvino")
        core = ov.Core()
        if self.cache_dir:
            core.set_property({"CACHE_DIR": str(self.cache_dir)})
        if self.precision == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            raise BadInputError(f"{self.path.name} is a bf16 engine but this CPU has no native bf16 "
                                f"(AVX512_BF16/AMX); build an fp32 or int8 OpenVINO engine here")
        self.compiled = core.compile_model(core.read_model(str(self.path)), "CPU", self.config())
        self._index = _output_index([s.name for s in self.outputs], [set(o.get_names()) for o in self.compiled.outputs],
                                    self.path.name)

    def _deactivate(self) -> None:
        self.compiled = None

    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._lock:  # one infer request per call would also do; a lock keeps memory flat
            results = self.compiled(feeds)
            return {name: np.array(results[i]) for name, i in self._index.items()}


def _output_index(wanted: list[str], names: list[set], where: str) -> dict[str, int]:
    """{manifest output name: compiled output index}. An OpenVINO output tensor can carry several names
    (the graph's output and the name of the node output it aliases, e.g. after a float island of a
    Q/DQ graph), and `get_any_name()` picks one of them, so each output is found among all its names."""
    index = {}
    for name in wanted:
        hits = [i for i, got in enumerate(names) if name in got]
        if not hits:
            raise BadInputError(f"{where}: OpenVINO's compiled model has no output {name!r} (its outputs: "
                                f"{[sorted(n) for n in names]}); rebuild the engine with `deploykit build-engine`")
        index[name] = hits[0]
    return index


def _probe():
    if importlib.util.find_spec("openvino") is None:
        return "openvino is not installed (pip install 'deploykit[openvino]')"
    return None


register(Backend(
    name="openvino", engine=f"{__name__}:OpenVinoEngine", builder="deploykit.build.backends.openvino",
    probe=_probe, summary="openvino is installed (CPU plugin)", device="CPU", priority=20,
    bench=tuple(BenchVariant(f"ov-{p}", {"int8": p == "int8", "bf16": p == "bf16"}) for p in ("fp32", "bf16", "int8")),
    title="openvino (CPU)"))
