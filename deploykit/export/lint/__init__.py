"""`deploykit check`: will this ONNX graph build as a TensorRT engine? Answered before any GPU.

    >>> from deploykit.export.lint import check_model
    >>> report = check_model("artifacts/gaitgl.onnx", trt_version="10", fp16=True)
    >>> print(report.table()); report.exit_code          # 0 when nothing blocks a build

Sections: operator support and the table's restrictions for the chosen TensorRT version
(`rules.py`, data in deploykit/data/trt_onnx_ops.psv), dynamic dims, INT64 narrowing and dtypes;
with `dla`, DLA eligibility (`dla.py`); with `fp16`, a range audit in ONNX Runtime (`fp16.py`).
"""

from __future__ import annotations

import os
from typing import Optional

from ...errors import BadInputError, require

require("onnx", "export")

from .dla import check_dla  # noqa: E402
from .fp16 import Fp16Audit, audit_fp16  # noqa: E402
from .graph import GraphView, infer  # noqa: E402
from .optable import TRT_VERSIONS, OpTable  # noqa: E402
from .report import SEVERITIES, Finding, LintReport  # noqa: E402
from .rules import check_nodes, check_opset, check_tensors  # noqa: E402
from .samples import load_samples, seeded_sample  # noqa: E402

__all__ = ["Finding", "Fp16Audit", "LintReport", "TRT_VERSIONS", "audit_fp16", "check_model"]


def _load(model) -> tuple:
    onnx = require("onnx", "export")
    if isinstance(model, onnx.ModelProto):
        return model, "<model>", None
    from ..onnx_io import load_onnx

    proto, man = load_onnx(model, "deploykit check")
    return proto, str(model), man


def _fixed_batch(proto, prof) -> Optional[GraphView]:
    """The graph with a dynamic axis 0 set to the profile's max, shape-inferred (None without a profile)."""
    if not isinstance(prof, dict) or "max" not in prof:
        return None
    onnx = require("onnx", "export")
    fixed = onnx.ModelProto()
    fixed.CopyFrom(proto)
    for v in fixed.graph.input:
        dims = v.type.tensor_type.shape.dim
        if len(dims) and not dims[0].HasField("dim_value"):
            dims[0].dim_value = int(prof["max"])
    try:
        return GraphView(infer(fixed))
    except Exception:  # the unfixed graph inferred; fall back to its view
        return None


def check_model(model, *, trt_version: str = "10", dla: bool = False, fp16: bool = False,
                data: Optional[str | os.PathLike] = None, seed: int = 0) -> LintReport:
    """Lint an ONNX model for a TensorRT version.

    Args:
        model: an `.onnx` path (its manifest, if beside it, gives the model's sampler) or a ModelProto.
        trt_version: "8.5", "8.6", "10" or "11"; default "10" (JetPack 6.1/6.2 ship 10.3).
        dla: also report which layers would leave a Jetson DLA core for the GPU; default False.
        fp16: also run the FP16 range audit in ONNX Runtime; default False.
        data: folder of audit samples (see `samples.py`); default one seeded random sample.
        seed: seed of the random sample; default 0.

    Raises:
        BadInputError: unreadable model, unknown version, or unusable --data.
    """
    if trt_version not in TRT_VERSIONS:
        raise BadInputError(f"--trt-version {trt_version!r} is not one of {', '.join(TRT_VERSIONS)}")
    column = TRT_VERSIONS[trt_version]
    proto, name, manifest = _load(model)
    try:
        inferred = infer(proto)
    except Exception as exc:
        raise BadInputError(f"deploykit check: ONNX shape inference fails on {name} "
                            f"({str(exc).splitlines()[0]}); is it a valid model?") from None
    view = GraphView(inferred)
    prof = (manifest or {}).get("dynamic_batch")
    findings = [*check_opset(view, column), *check_nodes(view, OpTable.load(), column),
                *check_tensors(view, column, prof, _fixed_batch(proto, prof))]
    summary, details = {"nodes": len(view.nodes), "opset": view.opset}, {}
    if dla:
        dla_findings, dla_summary, details["dla_gpu_layers"] = check_dla(view, column)
        findings += dla_findings
        summary.update(dla_summary)
    if fp16:
        samples = load_samples(proto, str(data)) if data is not None else [seeded_sample(proto, manifest, seed)]
        audit = audit_fp16(inferred, samples)
        findings += audit.findings
        summary.update(audit.summary())
        details["fp16_ranges"] = [r.to_json() for r in audit.ranges]
    elif data is not None:
        raise BadInputError("--data is only used by the FP16 audit; add --fp16")
    findings.sort(key=lambda f: SEVERITIES.index(f.severity))  # stable: keeps graph order within a severity
    return LintReport(name, trt_version, column, findings, summary, details)
