"""The patch driver: the one place that runs passes, cleans up, sorts, infers shapes and records.

    >>> model, applied = apply_patches(onnx.load("gaitgl.onnx"))          # the default set
    >>> model, applied = apply_patches(model, ["focal-fold", "cleanup"])   # exactly these
    >>> [a.to_json() for a in applied]   # what the manifest's "patches" holds

Patches only edit the graph; after each pass that matched, the driver removes dead nodes and
tensors (`graph.cleanup()`), sorts the nodes (`toposort()`) and re-runs ONNX shape inference, so
the next pass matches against a clean graph with shapes. The result passes `onnx.checker`.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Optional

import onnx
import onnx_graphsurgeon as gs

from ...errors import DeploykitError
from ._graph import quiet_gs
from .registry import Patch, resolve


class PatchError(DeploykitError):
    """A graph patch failed, or left a graph that does not pass the ONNX checker."""


@dataclasses.dataclass(frozen=True)
class AppliedPatch:
    """A patch that changed the graph, and where.

    Attributes:
        name: the patch name.
        matches: how many occurrences it rewrote.
        where: a short description of each occurrence (op and node name).
    """

    name: str
    matches: int
    where: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"name": self.name, "matches": self.matches}


def _infer(model: onnx.ModelProto, what: str) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as exc:  # shape inference raises bare Exceptions of several kinds
        raise PatchError(f"ONNX shape inference failed {what}: {str(exc).splitlines()[0]}; "
                         f"run `deploykit check` on the input graph") from exc


def _export(graph: gs.Graph, template: onnx.ModelProto) -> onnx.ModelProto:
    model = gs.export_onnx(graph, do_type_check=False)
    model.ir_version = template.ir_version  # gs may write a newer IR than ONNX Runtime reads
    model.producer_name = template.producer_name
    model.producer_version = template.producer_version
    del model.metadata_props[:]
    model.metadata_props.extend(template.metadata_props)
    return model


def _import(model: onnx.ModelProto, what: str) -> gs.Graph:
    fresh = onnx.ModelProto()
    fresh.CopyFrom(model)
    del fresh.graph.value_info[:]  # re-derived after every pass: stale entries would shadow new shapes
    return gs.import_onnx(_infer(fresh, what))


def _io_changed(before: onnx.ModelProto, after: onnx.ModelProto) -> bool:
    """True when the graph inputs/outputs differ in name, dtype, rank or a known dim (a symbolic
    dim that shape inference has since made concrete is not a change)."""
    def sig(values):
        return [(v.name, v.type.tensor_type.elem_type, [d.dim_value or None for d in v.type.tensor_type.shape.dim])
                for v in values]

    for old, new in ((before.graph.input, after.graph.input), (before.graph.output, after.graph.output)):
        a, b = sig(old), sig(new)
        if [x[:2] for x in a] != [x[:2] for x in b] or any(
                len(da) != len(db) or any(x is not None and x != y for x, y in zip(da, db))
                for (_, _, da), (_, _, db) in zip(a, b)):
            return True
    return False


def apply_patches(model: onnx.ModelProto, selected: Optional[Iterable[str]] = None
                  ) -> tuple[onnx.ModelProto, list[AppliedPatch]]:
    """Run the selected patches, in pipeline order, on a copy of `model`.

    Args:
        model: the ONNX model (not modified).
        selected: patch names; None means the default set, an empty list means no patch (the
            graph is still cleaned of dead nodes, sorted and shape-inferred).

    Returns:
        (patched model, the patches that matched at least once, in the order they ran).

    Raises:
        BadInputError: an unknown patch name.
        PatchError: a pass failed or the result fails `onnx.checker`.
    """
    patches: list[Patch] = resolve(selected)
    graph = _import(model, "on the input graph")
    applied: list[AppliedPatch] = []
    for patch in patches:
        with quiet_gs():
            matches = patch.match(graph)
            where = tuple(m.describe() for m in matches)
            for m in matches:
                try:
                    patch.rewrite(graph, m)
                except DeploykitError:
                    raise
                except Exception as exc:
                    raise PatchError(f"graph patch {patch.name!r} failed at {m.describe()}: {exc}; run without "
                                     f"it (--patch to choose others) and report the graph") from exc
        if matches:
            graph.cleanup(remove_unused_graph_inputs=False).toposort()
            graph = _import(_export(graph, model), f"after patch {patch.name!r}")
            applied.append(AppliedPatch(patch.name, len(matches), where))
    graph.cleanup(remove_unused_graph_inputs=False).toposort()
    out = _infer(_export(graph, model), "on the patched graph")
    if _io_changed(model, out):
        raise PatchError(f"graph patches {[a.name for a in applied]} changed the graph inputs/outputs "
                         f"(names, dtypes or shapes); this is a bug in a patch: rerun with fewer --patch")
    try:
        onnx.checker.check_model(out, full_check=True)
    except Exception as exc:
        names = ", ".join(a.name for a in applied) or "none"
        raise PatchError(f"the patched graph fails onnx.checker (patches applied: {names}): "
                         f"{str(exc).splitlines()[0]}; drop the last patch with --patch and report it") from exc
    return out, applied
