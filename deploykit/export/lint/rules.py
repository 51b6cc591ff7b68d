"""Static TensorRT rules: operator support, the table's attribute/dtype restrictions, opsets,
dynamic dims, INT64 narrowing and unsupported dtypes.

Restriction checks are chosen by the restriction text the operator table states for the target
version (e.g. "axes must be an initializer" for Slice on 8.5-10.1, but not on 11.1), so the table
file stays the single source. A restriction the lint cannot check is reported as info.
"""

from __future__ import annotations

from typing import Callable, Iterator, Optional

from .graph import GraphView
from .optable import OPSETS, OpTable
from .report import Finding

FOLD_HINT = "fold it first: deploykit patch IN.onnx OUT.onnx --patch cleanup"
_8X = ("8.5", "8.6")


def _axes_input(view: GraphView, node, idx: int, need: str) -> Optional[str]:
    """`need`: "initializer" (weights) or "constant" (anything computable at build time)."""
    if len(node.input) <= idx or not node.input[idx]:
        return None  # attribute form (older opsets) or default axes
    name = node.input[idx]
    if view.is_initializer(name) or (need == "constant" and view.is_build_time_constant(name)):
        return None
    what = "computed from other tensors" if view.is_build_time_constant(name) else "known only at run time"
    return f"input {idx} ({name}) must be {'an initializer' if need == 'initializer' else 'a constant'} but is {what}"


def _unit_dilations(view, node) -> Optional[str]:
    d = view.attr(node, "dilations")
    return None if not d or all(x == 1 for x in d) else f"dilations {list(d)} are not all ones"


def _pool_rank(view, node) -> Optional[str]:
    # The parser expands 1-D pooling (rank 3) to 2-D itself (onnx-tensorrt poolingHelper, "Expand spatial
    # dims from 1D to 2D"), so ranks 3, 4 and 5 import.
    r = view.rank(node.input[0])
    return None if r in (None, 3, 4, 5) else f"input rank {r}: only 1-D (expanded), 2-D or 3-D pooling imports"


def _no_indices(view, node) -> Optional[str]:
    return "the Indices output is used" if len(node.output) > 1 and view.used(node.output[1]) else None


def _topk_sorted(view, node) -> Optional[str]:
    return None if view.attr(node, "sorted", 1) == 1 else "sorted=0"


def _topk_k_small(view, node) -> Optional[str]:
    k = view.value(node.input[1]) if len(node.input) > 1 else None
    return None if k is None or int(k.ravel()[0]) < 3840 else f"K = {int(k.ravel()[0])} >= 3840"


def _dropout(view, node) -> Optional[str]:
    if len(node.input) < 3 or not node.input[2]:
        return None
    v = view.value(node.input[2])
    return None if v is not None and not bool(v.ravel()[0]) else "training_mode is not a constant False"


def _zero_point(idx: int) -> Callable:
    def check(view, node) -> Optional[str]:
        if len(node.input) <= idx or not node.input[idx]:
            return None
        v = view.value(node.input[idx])
        return None if v is not None and not v.any() else "zero point is not a constant zero (asymmetric)"
    return check


def _rank_is(n: int) -> Callable:
    def check(view, node) -> Optional[str]:
        r = view.rank(node.input[0])
        return None if r in (None, n) else f"input rank {r}, needs {n}"
    return check


def _resize(view, node) -> Optional[str]:
    modes = {"coordinate_transformation_mode": ("half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn",
                                                "asymmetric", "align_corners"),
             "mode": ("nearest", "linear"),
             "nearest_mode": ("floor", "ceil", "round_prefer_floor", "round_prefer_ceil")}
    defaults = {"coordinate_transformation_mode": "half_pixel", "mode": "nearest", "nearest_mode": "round_prefer_floor"}
    for attr, allowed in modes.items():
        v = view.attr(node, attr, defaults[attr])
        v = v.decode() if isinstance(v, bytes) else v
        if v not in allowed:
            return f"{attr}={v!r} (supported: {', '.join(allowed)})"
    if view.attr(node, "antialias", 0):
        return "antialias=1"
    return None


def _static_input(view, node) -> Optional[str]:
    return None if view.static_shape(node.input[0]) is not None else "input shape is not static"


def _constant_attrs(view, node) -> Optional[str]:
    bad = [a.name for a in node.attribute if a.name in ("sparse_value", "value_string", "value_strings")]
    return f"attribute {bad[0]}" if bad else None


def _lstm(view, node) -> Optional[str]:
    if view.attr(node, "input_forget", 0) != 0:
        return "input_forget=1"
    return "layout=1" if view.attr(node, "layout", 0) != 0 else None


def _scatter_reduction(view, node) -> Optional[str]:
    r = view.attr(node, "reduction", "none")
    r = r.decode() if isinstance(r, bytes) else r
    return None if r == "none" else f"reduction={r!r}"


def _first_output_only(view, node) -> Optional[str]:
    used = [o for o in node.output[1:] if view.used(o)]
    return f"output {used[0]} is used" if used else None


def _instnorm_85(view, node) -> Optional[str]:
    if any(not view.is_initializer(i) for i in node.input[1:3]):
        return "scale/B are not initializers"
    r = view.rank(node.input[0])
    return None if r is None or 3 <= r <= 5 else f"input rank {r} is outside 3..5"


def _einsum_86(view, node) -> Optional[str]:
    eq = view.attr(node, "equation", b"")
    eq = eq.decode() if isinstance(eq, bytes) else eq
    return "the equation uses an ellipsis" if "..." in eq else None


# (phrase in the table's restriction text, check). A check returns what is wrong, or None.
TEXT_CHECKS: list[tuple[str, Callable]] = [
    ("axes must be an initializer", lambda v, n: _axes_input(v, n, 3 if n.op_type in ("Slice", "Pad") else 1,
                                                             "initializer")),
    ("axes must be a constant tensor", lambda v, n: _axes_input(v, n, 1, "initializer")),
    ("axes must be resolvable to a constant", lambda v, n: _axes_input(v, n, 1, "constant")),
    ("axis must be an initializer", lambda v, n: _axes_input(v, n, 1, "initializer")),
    ("axis must be a build-time constant", lambda v, n: _axes_input(v, n, 1, "constant")),
    ("depth must be a build-time constant", lambda v, n: _axes_input(v, n, 1, "constant")),
    ("K input must be an initializer", lambda v, n: _axes_input(v, n, 1, "initializer")),
    ("dilations must be empty or all ones", _unit_dilations),
    ("2D or 3D", _pool_rank),
    ("Indices output tensor unsupported", _no_indices),
    ("sorted must be 1", _topk_sorted),
    ("K input must be less than 3840", _topk_k_small),
    ("is_training must be an initializer", _dropout),
    ("x_zero_point must be zero", _zero_point(2)),
    ("y_zero_point must be 0", _zero_point(2)),
    ("Input must be 4D", _rank_is(4)),
    ("Supported resize modes", _resize),
    ("input must have static dimensions", _static_input),
    ("Dynamic input shapes are unsupported", _static_input),
    ("value_string", _constant_attrs),
    ("input_forget attribute must be 0", _lstm),
    ("reduction", _scatter_reduction),
    ("Only the first output Y is supported", _first_output_only),
    ("Scales scale and biases B must be initializers", _instnorm_85),
    ("Ellipsis and diagonal operations are not supported", _einsum_86),
]
# Facts from the parser source, not the table (tensorrt_facts.md section 1, onnx-tensorrt@10.1-GA).
SOURCE_CHECKS: dict[str, tuple[str, Callable]] = {
    "DepthToSpace": ("4-D NCHW input only (parser source)", _rank_is(4)),
    "SpaceToDepth": ("4-D NCHW input only (parser source)", _rank_is(4)),
    "Split": ("split sizes must be build-time constants (parser source)",
              lambda v, n: _axes_input(v, n, 1, "constant")),
}
# The data tensor whose dtype the table's type list constrains: input 0 unless listed here.
_DATA_TENSOR = {"Where": ("input", 1), "Constant": ("output", 0), "ConstantOfShape": ("output", 0),
                "RandomNormal": ("output", 0), "RandomUniform": ("output", 0), "Shape": None, "Size": None}
_NEWER_TYPES = {"BF16", "FP8", "FP4", "INT4"}  # not in the 8.x parsers


def check_opset(view: GraphView, column: str) -> Iterator[Finding]:
    lo, hi = OPSETS[column]
    if not lo <= view.opset <= hi:
        yield Finding("error", "opset", f"the model uses opset {view.opset}; the TensorRT {column} parser reads "
                                        f"opsets {lo}..{hi}.",
                      hint=f"re-export with --opset {min(max(view.opset, lo), hi)}")


def check_nodes(view: GraphView, table: OpTable, column: str) -> Iterator[Finding]:
    unchecked: dict[str, str] = {}
    for node in view.nodes:
        op, name = node.op_type, node.name
        if node.domain not in ("", "ai.onnx"):
            yield Finding("error", "op-custom", f"{node.domain}::{op} is not an ONNX op; TensorRT needs a plugin "
                                                f"for it.", op, name, hint="export without custom-domain ops")
            continue
        mark = table.support(op, column)
        if mark != "Y":
            said = "marks it N (unsupported)" if mark == "N" else "does not list it"
            yield Finding("error", "op-unsupported", f"the ONNX-TensorRT parser table for {column} {said}.", op, name,
                          hint="rewrite it with a graph patch, or replace it in the model")
            continue
        yield from _check_dtype(view, table, column, node)
        text = table.restriction(op, column) or ""
        matched = False
        for phrase, check in TEXT_CHECKS:
            if phrase in text:
                matched = True
                problem = check(view, node)
                if problem:
                    yield Finding("error", "op-restriction", f"{problem}; the {column} parser requires: {text}.",
                                  op, name, hint=FOLD_HINT if "computed" in problem else "")
        if op in SOURCE_CHECKS:
            rule, check = SOURCE_CHECKS[op]
            problem = check(view, node)
            if problem:
                yield Finding("error", "op-restriction", f"{problem}; {rule}.", op, name,
                              hint=FOLD_HINT if "computed" in problem else "")
        if text and not matched:
            unchecked.setdefault(op, text)
    for op, text in sorted(unchecked.items()):
        yield Finding("info", "restriction-unchecked", f"the table states \"{text}\"; deploykit does not check "
                                                       f"this one.", op)


def _check_dtype(view: GraphView, table: OpTable, column: str, node) -> Iterator[Finding]:
    where = _DATA_TENSOR.get(node.op_type, ("input", 0))
    if where is None:
        return
    names = node.input if where[0] == "input" else node.output
    if len(names) <= where[1] or not names[where[1]]:
        return
    tensor = names[where[1]]
    dtype = view.dtype(tensor)
    allowed = set(table.types(node.op_type)) - (_NEWER_TYPES if column in _8X else set())
    if dtype is None or not allowed or dtype in allowed or (dtype == "DOUBLE" and "FP32" in allowed):
        return
    yield Finding("error", "op-dtype", f"{dtype} data; the {column} parser takes {', '.join(sorted(allowed))} "
                                       f"for {node.op_type}.", node.op_type, node.name, tensor,
                  hint="cast to a supported type in the model")


def check_tensors(view: GraphView, column: str, dynamic_batch: Optional[dict] = None,
                  fixed: Optional[GraphView] = None) -> Iterator[Finding]:
    """Graph-level dtype and shape facts: dynamic dims, INT64 narrowing, unsupported dtypes.

    `dynamic_batch` is the manifest's profile `{"min", "opt", "max"}`: with it a dynamic axis 0 is
    what TensorRT builds with an optimization profile (reported as info); any other dynamic dim,
    or a dynamic axis 0 without a profile, blocks a build. `fixed` is the graph with axis 0 set to
    the profile's max: data-dependent shapes are looked for there, as a symbolic batch leaves
    Reshape(-1) dims unknown to ONNX shape inference without making them data-dependent.
    """
    prof = dynamic_batch if isinstance(dynamic_batch, dict) and {"min", "opt", "max"} <= set(dynamic_batch) else None
    batched = False
    for name in view.inputs:
        shape = view.shape(name)
        bad = [i for i, d in enumerate(shape or []) if not isinstance(d, int) or d <= 0]
        if shape is not None and prof is not None and bad == [0]:
            batched = True
            yield Finding("info", "dynamic-batch", f"graph input {name} has a dynamic batch {shape}: the manifest's "
                                                   f"profile min {prof['min']} / opt {prof['opt']} / max "
                                                   f"{prof['max']} becomes TensorRT's optimization profile.",
                          tensor=name, hint="DLA takes no dynamic dims: export static for a DLA engine")
        elif shape is None or bad:
            why = ("only axis 0 may be dynamic, with the manifest's dynamic_batch profile" if prof is not None else
                   "the manifest gives no dynamic_batch profile (min/opt/max) for it")
            yield Finding("error", "dynamic-dim", f"graph input {name} has shape {shape}: {why}, and DLA takes no "
                                                  f"dynamic dims.", tensor=name,
                          hint="re-export with deploykit export (static --batch/--frames, or --dynamic-batch MAX)")
    shapes = fixed if (batched and fixed is not None) else view
    unknown = [n for n, (_, dims) in shapes.types.items() if n not in shapes.inputs and dims is not None
               and any(not isinstance(d, int) or d <= 0 for d in dims)]
    if unknown:
        yield Finding("warning", "dynamic-shape", f"{len(unknown)} tensor(s) have dims unknown before run time "
                                                  f"(data-dependent shapes), e.g. {', '.join(unknown[:3])}.",
                      tensor=unknown[0], hint="check that the model has no data-dependent shapes")
    yield from _check_int64(view, column)
    yield from _check_dtypes(view, column)


def _check_int64(view: GraphView, column: str) -> Iterator[Finding]:
    """INT64 tensors: run-time ones are narrowed to INT32 on TensorRT 8.x; constants only if out of range."""
    int64 = sorted(n for n in view.types if view.dtype(n) == "INT64")
    runtime = [n for n in int64 if not view.is_build_time_constant(n)]
    wide = []
    for n in int64:
        v = view.value(n)
        if v is not None and v.size and (v.max() > 2**31 - 1 or v.min() < -2**31):
            wide.append(n)
    if column not in _8X:
        if int64:
            yield Finding("info", "int64", f"{len(int64)} INT64 tensor(s); TensorRT {column} supports INT64 "
                                           f"natively.", tensor=int64[0])
        return
    if runtime:
        yield Finding("warning", "int64-narrowed", f"{len(runtime)} INT64 tensor(s) computed at run time (e.g. "
                                                   f"{', '.join(runtime[:3])}): TensorRT {column} casts INT64 down "
                                                   f"to INT32, clamping values beyond +-2^31-1.", tensor=runtime[0],
                      hint="make sure the values fit INT32, or cast them to INT32 in the model")
    slicing = [n for n in wide if all(r.op_type == "Slice" and list(r.input).index(n) in (1, 2)
                                      for r in view.consumers.get(n, []))]
    for n in wide:
        if n in slicing:
            yield Finding("info", "int64-clamped", "INT64 Slice bound beyond INT32 (an open-ended slice) is clamped "
                                                   f"to +-2^31-1 by TensorRT {column}; harmless for slicing.", tensor=n)
        else:
            yield Finding("warning", "int64-narrowed", f"INT64 constant with values beyond INT32; TensorRT {column} "
                                                       f"clamps them to +-2^31-1.", tensor=n)
    rest = len(int64) - len(runtime) - len(wide)
    if rest:
        yield Finding("info", "int64", f"{rest} INT64 constant(s) (shapes, axes) within INT32 range: TensorRT "
                                       f"{column}'s narrowing to INT32 does not change them.")


def _check_dtypes(view: GraphView, column: str) -> Iterator[Finding]:
    io = set(view.inputs) | set(view.outputs)
    for name in sorted(view.types):
        dtype = view.dtype(name)
        if dtype is None or dtype in ("FP32", "FP16", "INT32", "INT64", "BOOL"):
            continue
        if dtype == "DOUBLE":
            yield Finding("warning", "dtype-narrowed", "DOUBLE is cast down to FLOAT by the parser.", tensor=name)
        elif dtype == "UINT8" and name not in io:
            yield Finding("error", "dtype-unsupported", "UINT8 is supported only as a network input or output.",
                          tensor=name, hint="cast to FP32/INT32 where the model makes it")
        elif dtype in ("INT8", "FP8", "INT4", "FP4") and not _quantized(view, name):
            yield Finding("error", "dtype-unsupported", f"{dtype} is only supported through Q/DQ quantization of a "
                                                        f"floating-point tensor.", tensor=name)
        elif dtype in _NEWER_TYPES and column in _8X:
            yield Finding("error", "dtype-unsupported", f"{dtype} is not supported by TensorRT {column}.", tensor=name)
        elif dtype not in ("UINT8", "BF16", "INT8", "FP8", "INT4", "FP4"):
            yield Finding("error", "dtype-unsupported", f"TensorRT has no {dtype} tensors.", tensor=name)


def _quantized(view: GraphView, name: str) -> bool:
    """A quantized-type tensor TensorRT takes: a Q output, a DQ input, or the zero point Q and DQ
    share (its value, which must be 0, is checked by the Q/DQ restriction rules)."""
    node = view.producer.get(name)
    readers = view.consumers.get(name, [])

    def q_or_dq_slot(r) -> bool:
        slots = [j for j, i in enumerate(r.input) if i == name]
        return r.op_type == "DequantizeLinear" or (r.op_type == "QuantizeLinear" and slots == [2])
    return (node is not None and node.op_type == "QuantizeLinear") or (
        bool(readers) and all(q_or_dq_slot(r) for r in readers))
