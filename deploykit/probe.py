"""Every float activation of an ONNX model, from ONNX Runtime on CPU, graph optimisation off.

The one runner behind calibration's range collection (`calib.ranges.RangeCollector`) and the FP16
range audit (`export.lint.fp16.audit_fp16`): both need each tensor the graph names, as written
(a fused or folded graph would hide some), over a set of feeds; each keeps its own statistics.
Needs onnx and onnxruntime, not torch.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np


class ActivationProbe:
    """A session that returns the named tensors of `model` for a feed.

    Args:
        model: an onnx.ModelProto with shapes inferred (not changed; a copy gets the extra outputs).
        names: tensors to return (graph inputs among them are returned from the feeds).
        elem_types: ONNX element type of names that have no value_info (they get an untyped
            output); a name with neither is dropped (see `names` after construction).
        prefer_untyped: give every name in `elem_types` an untyped output even where a value_info
            exists (the FP16 audit: it trusts ONNX Runtime's shapes over a possibly stale value_info).
        threads: ONNX Runtime intra-op threads; default None (ONNX Runtime decides).
    """

    def __init__(self, model, names: Sequence[str], elem_types: Optional[Mapping[str, int]] = None,
                 prefer_untyped: bool = False, threads: Optional[int] = None) -> None:
        import onnx
        import onnxruntime as ort
        from onnx import helper

        out = onnx.ModelProto()
        out.CopyFrom(model)
        have = {o.name for o in out.graph.output}
        inputs = {i.name for i in out.graph.input}
        vis = {v.name: v for v in out.graph.value_info}
        types = dict(elem_types or {})
        kept: list[str] = []
        for name in names:
            if name in kept:
                continue
            if name in have or name in inputs:
                pass
            elif name in vis and not (prefer_untyped and name in types):
                out.graph.output.append(vis[name])
            elif name in types:
                out.graph.output.append(helper.make_tensor_value_info(name, types[name], None))
            else:
                continue  # no type to declare it with: not probed
            kept.append(name)
        self.names = kept
        self.inputs = inputs
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = int(threads)
        self.session = ort.InferenceSession(out.SerializeToString(), opts, providers=["CPUExecutionProvider"])

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """`{name: value}` for every probed tensor: graph inputs from `feeds`, the rest computed."""
        run_names = [n for n in self.names if n not in feeds]
        values = dict(zip(run_names, self.session.run(run_names, dict(feeds))))
        return {n: (feeds[n] if n in feeds else values[n]) for n in self.names}
