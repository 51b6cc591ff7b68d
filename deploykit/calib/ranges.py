"""Activation range collection and the three range methods: max, percentile and entropy.

One streaming pass over the calibration data records, for every float activation, its min, its
max and a histogram of |x| (2048 bins, TensorRT's layout). The three methods read the same record:

- `max`: amax = max |x| seen.
- `percentile`: amax = the |x| below which `percentile` % of the values fall (99.99 by default).
- `entropy`: amax minimising the KL divergence between the |x| histogram and its 128-level
  quantized version, TensorRT's EntropyCalibration2 method (Migacz, "8-bit Inference with TensorRT",
  GTC 2017; the same search as TensorRT's pytorch-quantization `_compute_amax_entropy`).

Why not `onnxruntime.quantization`'s calibrators: their histogram calibrators keep every batch's
outputs in memory until `collect_data` returns, their entropy method searches a signed histogram
(MXNet's variant, 128 bins by default) in Python loops, and none gives TensorRT's |x| method. What
ONNX Runtime does serve is used: its `TensorsData` range cache feeds `quantize_static` (see qdq.py).

No torch here: calibration runs on machines with numpy, onnx and onnxruntime only.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import numpy as np

from .. import atomic
from ..errors import BadInputError, DeploykitError

NUM_BINS = 2048           # TensorRT's histogram size
NUM_QUANT_LEVELS = 128    # 8-bit signed: 127 levels + sign, TensorRT searches thresholds from bin 128
DEFAULT_PERCENTILE = 99.99
RANGES_SCHEMA = 1


class CalibMethod(str, enum.Enum):
    """How a tensor's amax is chosen from its record."""

    MAX = "max"
    PERCENTILE = "percentile"
    ENTROPY = "entropy"

    @classmethod
    def parse(cls, value: "str | CalibMethod") -> "CalibMethod":
        try:
            return cls(value)
        except ValueError:
            raise BadInputError(f"calibration method {value!r} is not one of "
                                f"{[m.value for m in cls]}; use entropy (TensorRT's default)") from None


class CalibrationError(DeploykitError):
    """Calibration could not produce ranges (no data, non-finite activations, ...)."""


@dataclasses.dataclass
class TensorRecord:
    """Streaming statistics of one tensor: min, max, count and a |x| histogram.

    The histogram has NUM_BINS bins over [0, top]. When a later batch exceeds `top`, adjacent bins
    are merged pairwise and `top` doubles (exact re-binning, bounded memory).
    """

    lo: float = float("inf")
    hi: float = float("-inf")
    count: int = 0
    top: float = 0.0
    hist: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(NUM_BINS, np.int64))

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float32).ravel()
        if x.size == 0:
            return
        if not np.isfinite(x).all():
            raise CalibrationError("an activation holds NaN or Inf on calibration data")
        a = np.abs(x)
        amax = float(a.max())
        self.lo, self.hi = min(self.lo, float(x.min())), max(self.hi, float(x.max()))
        self.count += int(x.size)
        if self.top == 0.0:
            if amax == 0.0:
                self.hist[0] += x.size
                return
            self.top = amax
        while amax > self.top:
            merged = self.hist.reshape(NUM_BINS // 2, 2).sum(axis=1)
            self.hist = np.concatenate([merged, np.zeros(NUM_BINS // 2, np.int64)])
            self.top *= 2.0
        idx = np.minimum((a * (NUM_BINS / self.top)).astype(np.int64), NUM_BINS - 1)
        self.hist += np.bincount(idx, minlength=NUM_BINS)

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(0.0, self.top, NUM_BINS + 1)

    @property
    def absmax(self) -> float:
        return max(abs(self.lo), abs(self.hi)) if self.count else 0.0


def amax_percentile(rec: TensorRecord, percentile: float = DEFAULT_PERCENTILE) -> float:
    """The |x| value below which `percentile` % of the recorded values fall (upper bin edge)."""
    if not 0.0 < percentile <= 100.0:
        raise BadInputError(f"percentile {percentile} is outside (0, 100]; use 99.99 (the default)")
    total = rec.hist.sum()
    if total == 0 or rec.top == 0.0:
        return 0.0
    cdf = np.cumsum(rec.hist) / total
    idx = int(np.searchsorted(cdf, percentile / 100.0))
    return float(min(rec.edges[min(idx + 1, NUM_BINS)], rec.absmax))


def amax_entropy(rec: TensorRecord, start_bin: int = NUM_QUANT_LEVELS) -> float:
    """TensorRT's entropy threshold: the amax whose 128-level quantization loses the least information.

    For every candidate i (bins kept, start_bin..2048): P = the first i bins with everything beyond
    folded into the last; Q = P merged into 128 equal groups and spread back evenly over the group's
    non-empty bins. amax = upper edge of bin i for the i minimising KL(P || Q) (the last minimum
    wins). Bin 0 is set to bin 1 first so that the zero spike of ReLU outputs does not dominate.

    The KL of every candidate is computed in closed form from prefix sums, O(128) per candidate
    instead of O(i): with T = total count, S_i = sum(h[:i]), O_i = sum(h[i:]) and m_g the mean of
    group g's non-empty bins, KL_i = (sum p log p - sum_g s_g log m_g - O_i log m_last) / T
    + log(S_i / T); it is infinite when the last kept bin is empty but outliers exist.
    """
    if rec.top == 0.0:
        return 0.0
    h = rec.hist.astype(np.float64).copy()
    h[0] = h[1]
    n, levels = h.size, NUM_QUANT_LEVELS
    H = np.concatenate([[0.0], np.cumsum(h)])                          # H[k] = sum(h[:k])
    NZ = np.concatenate([[0], np.cumsum(h > 0)])
    hlogh = np.where(h > 0, h * np.log(np.where(h > 0, h, 1.0)), 0.0)
    HL = np.concatenate([[0.0], np.cumsum(hlogh)])
    T = H[-1]
    i = np.arange(start_bin, n + 1)[:, None]                          # [k, 1] bins kept
    g = np.arange(levels + 1)[None, :]
    starts = (g * i + levels - 1) // levels                            # [k, 129] first bin of each group
    sums = H[starts[:, 1:]] - H[starts[:, :-1]]                        # [k, 128]
    cnts = NZ[starts[:, 1:]] - NZ[starts[:, :-1]]
    with np.errstate(divide="ignore", invalid="ignore"):
        logm = np.where(cnts > 0, np.log(np.where(cnts > 0, sums / np.maximum(cnts, 1), 1.0)), 0.0)
    i = i[:, 0]
    last = h[i - 1]
    out = T - H[i]                                                     # O_i
    plogp = HL[i - 1] + np.where(last + out > 0, (last + out) * np.log(np.maximum(last + out, 1e-300)), 0.0)
    plogq = (sums * logm).sum(axis=1) + np.where(last > 0, out * logm[:, -1], 0.0)
    with np.errstate(divide="ignore"):
        kl = (plogp - plogq) / T + np.log(H[i] / T)
    kl[(last == 0) & (out > 0)] = np.inf
    kl[~np.isfinite(kl)] = np.inf
    k = len(kl) - 1 - int(np.argmin(kl[::-1]))                         # the last minimum wins
    return float(min(rec.edges[int(i[k])], rec.absmax))


@dataclasses.dataclass(frozen=True)
class TensorRange:
    """The chosen range of one tensor.

    Attributes:
        amax: symmetric threshold (S8 scale = amax / 127).
        lo: asymmetric lower bound = max(observed min, -amax) (U8 activations).
        hi: asymmetric upper bound = min(observed max, amax).
        observed_min: min over the calibration data.
        observed_max: max over the calibration data.
    """

    amax: float
    lo: float
    hi: float
    observed_min: float
    observed_max: float

    @property
    def scale(self) -> float:
        """TensorRT's INT8 scale: amax / 127."""
        return self.amax / 127.0


@dataclasses.dataclass
class Ranges:
    """Ranges of every calibrated tensor, with how they were made (the readable JSON output).

    Attributes:
        method: the calibration method.
        tensors: {tensor name: TensorRange}.
        samples: calibration samples seen.
        source: a description of the data source.
        percentile: the percentile used (percentile method only).
        model_sha256: sha256 of the ONNX model the tensor names belong to.
    """

    method: CalibMethod
    tensors: dict[str, TensorRange]
    samples: int
    source: str
    percentile: Optional[float] = None
    model_sha256: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"schema_version": RANGES_SCHEMA, "method": self.method.value, "percentile": self.percentile,
                "samples": self.samples, "source": self.source, "model_sha256": self.model_sha256,
                "tensors": {k: dataclasses.asdict(v) for k, v in self.tensors.items()}}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Ranges":
        if d.get("schema_version") != RANGES_SCHEMA:
            raise BadInputError(f"ranges file has schema_version {d.get('schema_version')!r}, expected "
                                f"{RANGES_SCHEMA}; recalibrate with this deploykit")
        return cls(CalibMethod(d["method"]), {k: TensorRange(**v) for k, v in d["tensors"].items()},
                   int(d["samples"]), d.get("source", ""), d.get("percentile"), d.get("model_sha256", ""))

    def save(self, path: str | os.PathLike) -> None:
        atomic.write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Ranges":
        try:
            return cls.from_json(json.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise BadInputError(f"ranges file {path} does not exist; run a calibration first") from None


def choose_range(rec: TensorRecord, method: CalibMethod, percentile: float = DEFAULT_PERCENTILE) -> TensorRange:
    """Apply `method` to one record."""
    if method is CalibMethod.MAX:
        amax = rec.absmax
    elif method is CalibMethod.PERCENTILE:
        amax = amax_percentile(rec, percentile)
    else:
        amax = amax_entropy(rec)
    amax = max(amax, 1e-8)  # an all-zero tensor still needs a positive scale (TensorRT requires > 0)
    return TensorRange(amax=amax, lo=max(rec.lo, -amax), hi=min(rec.hi, amax),
                       observed_min=rec.lo, observed_max=rec.hi)


# -- collection -----------------------------------------------------------------------------------

def activation_names(model) -> list[str]:
    """Float activations worth a range: graph inputs and node outputs typed float32 (not initializers).

    Args:
        model: an onnx.ModelProto with shapes inferred (`onnx.shape_inference.infer_shapes`).
    """
    from onnx import TensorProto

    inits = {i.name for i in model.graph.initializer}
    types = {v.name: v.type.tensor_type.elem_type
             for v in [*model.graph.value_info, *model.graph.input, *model.graph.output]}
    const_out = {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    names: list[str] = []
    for name in [i.name for i in model.graph.input] + [o for n in model.graph.node for o in n.output]:
        if name and name not in inits and name not in const_out and types.get(name) == TensorProto.FLOAT \
                and name not in names:
            names.append(name)
    return names


class RangeCollector:
    """Runs an ONNX model with every float activation exposed as an output and records them.

    Args:
        model_path: the FP32 ONNX model (static shapes).
        threads: ONNX Runtime intra-op threads; default None (ONNX Runtime decides).
    """

    def __init__(self, model_path: str | os.PathLike, threads: Optional[int] = None) -> None:
        import onnx

        from ..probe import ActivationProbe

        model = onnx.shape_inference.infer_shapes(onnx.load(str(model_path)))
        self.probe = ActivationProbe(model, activation_names(model), threads=threads)
        self.names = self.probe.names
        self.inputs = [i.name for i in self.probe.session.get_inputs()]
        self.records: dict[str, TensorRecord] = {n: TensorRecord() for n in self.names}
        self.samples = 0

    def update(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Run one batch and add its activations to the records."""
        for name, v in self.probe.run(feeds).items():
            try:
                self.records[name].update(v)
            except CalibrationError as exc:
                raise CalibrationError(f"tensor {name!r}: {exc}; check the calibration data and the model "
                                       f"(a NaN here means the FP32 model itself overflows)") from None
        self.samples += int(next(iter(feeds.values())).shape[0])

    def collect(self, batches: Iterable[Mapping[str, np.ndarray]]) -> "RangeCollector":
        for feeds in batches:
            self.update(feeds)
        if self.samples == 0:
            raise CalibrationError("the calibration source yielded no samples; check --calib-data")
        return self

    def ranges(self, method: "CalibMethod | str", percentile: float = DEFAULT_PERCENTILE, source: str = "",
               model_sha256: str = "") -> Ranges:
        """Ranges of every recorded tensor under `method` (any method, from the same pass)."""
        m = CalibMethod.parse(method)
        tensors = {n: choose_range(r, m, percentile) for n, r in self.records.items() if r.count}
        return Ranges(m, tensors, self.samples, source, percentile if m is CalibMethod.PERCENTILE else None,
                      model_sha256)


def keep_fp32_from_ranges(ranges: Ranges, limit: float = 65504.0, margin: float = 4.0) -> list[str]:
    """Tensors whose observed magnitude comes within `margin` x of the FP16 limit (a minimal range audit).

    Used when the export lint's FP16 range audit is not available: any tensor with
    max|x| * margin > limit is flagged to stay FP32.
    """
    return sorted(n for n, r in ranges.tensors.items()
                  if max(abs(r.observed_min), abs(r.observed_max)) * margin > limit)

