"""Postprocessing records: heatmap / keypoint-query decoding with pose NMS (pose), embedding matching (gait, re-ID)."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Sequence, Union

from ..constants import COCO_FLIP_PAIRS
from ..errors import BadInputError
from .base import Decoder, Metric, _bool, _extra, _get, _hw, _pairs, _pos_float, _pos_int, _Record, frozen_extra, member


@dataclasses.dataclass(frozen=True)
class PoseNMS(_Record):
    """AlphaPose's parametric pose NMS (`pPose_nms.py`); the defaults are upstream's constants.

    delta1, mu, delta2, gamma, score_thresh (scoreThreds), match_thresh (matchThreds), alpha,
    area_thresh (areaThres), plus the distances upstream hard-codes: the 1 px score term, the PCK
    cap 7 and the merge cap 15. `output_shift_px` is added to the merged keypoints: -0.3 in the old
    AlphaPose (pytorch branch), 0 in the current one; None lets `pose_nms`'s variant decide.
    """

    delta1: float = 1.0
    mu: float = 1.7
    delta2: float = 2.65
    gamma: float = 22.48
    score_thresh: float = 0.3
    match_thresh: float = 5
    alpha: float = 0.1
    area_thresh: float = 0.0
    score_dist_px: float = 1.0
    pck_ref_cap: float = 7.0
    merge_ref_cap: float = 15.0
    output_shift_px: Optional[float] = None
    kind: str = "alphapose_parametric"

    @classmethod
    def from_json(cls, d: Any, where: str = "postprocess.pose_nms") -> "PoseNMS":
        if not isinstance(d, Mapping):
            raise BadInputError(f"manifest {where}={d!r} must be an object")
        names = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(d) - names)
        if extra or d.get("kind", "alphapose_parametric") != "alphapose_parametric":
            raise BadInputError(f"manifest {where} has {extra or d.get('kind')!r}, which this deploykit does not "
                                f"know; upgrade deploykit or re-export the model")
        kw = {}
        for k, v in d.items():
            if k == "kind" or (k == "output_shift_px" and v is None):
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
                raise BadInputError(f"manifest {where}.{k}={v!r} must be a number")
            if k != "output_shift_px" and v < 0:
                raise BadInputError(f"manifest {where}.{k}={v!r} must be >= 0")
            kw[k] = float(v)
        return cls(**kw)


@dataclasses.dataclass(frozen=True)
class HeatmapPostprocess(_Record):
    """How a pose engine's output becomes keypoints.

    Attributes:
        decoder: Decoder (PRTR: keypoint queries, `kind` "keypoint_queries").
        heatmap_hw: heatmap (height, width); None for PRTR.
        stride: input pixels per heatmap pixel (4); None for PRTR (and schema 1 records without it:
            input size / heatmap size then).
        channels: output channels that are joints (the first `channels`); None = all.
        flip_pairs: left/right joint pairs swapped by the flip test.
        flip_shift: the flipped heatmap is shifted 1 px right before averaging; None where there is no
            heatmap to shift (PRTR).
        flip_test: upstream evaluates with the flip test.
        pose_nms: the NMS the runtime runs (FastPose), None for none (HRNet, PRTR).
    """

    decoder: Decoder
    heatmap_hw: Optional[tuple[int, int]] = None
    stride: Optional[int] = None
    channels: Optional[int] = None
    flip_pairs: tuple[tuple[int, int], ...] = COCO_FLIP_PAIRS
    flip_shift: Optional[bool] = True
    flip_test: bool = False
    pose_nms: Optional[PoseNMS] = None
    extra: Mapping[str, Any] = dataclasses.field(default_factory=frozen_extra)
    kind: str = "heatmap"

    _KNOWN = ("kind", "decoder", "heatmap_hw", "stride", "channels", "flip_pairs", "flip_shift", "flip_test",
              "pose_nms", "nms_output_shift_px")

    @classmethod
    def from_json(cls, d: Mapping[str, Any], where: str = "postprocess",
                  strict: bool = False) -> "HeatmapPostprocess":
        kind = d.get("kind", "heatmap")
        queries = kind == "keypoint_queries"
        hw = d.get("heatmap_hw")
        nms = d.get("pose_nms")
        if nms and "output_shift_px" not in nms and not strict:
            # schema 1 kept the shift beside the NMS record, and wrote it wherever there was one
            nms = {**nms, "output_shift_px": d.get("nms_output_shift_px", 0.0)}
        channels = d.get("channels")
        return cls(member(Decoder, _get(d, "decoder", where, True, None), f"{where}.decoder"),
                   None if not hw else _hw(hw, f"{where}.heatmap_hw"),
                   None if queries or ("stride" not in d and not strict)
                   else _pos_int(_get(d, "stride", where, strict, None), f"{where}.stride"),
                   None if channels is None else _pos_int(channels, f"{where}.channels"),
                   _pairs(_get(d, "flip_pairs", where, strict, COCO_FLIP_PAIRS), f"{where}.flip_pairs"),
                   None if queries and "flip_shift" not in d else
                   _bool(_get(d, "flip_shift", where, strict, True), f"{where}.flip_shift"),
                   _bool(d.get("flip_test", False), f"{where}.flip_test"),
                   PoseNMS.from_json(nms, f"{where}.pose_nms") if nms else None,
                   _extra(d, cls._KNOWN), kind)


@dataclasses.dataclass(frozen=True)
class EmbeddingPostprocess(_Record):
    """How embeddings are compared.

    Attributes:
        metric: Metric (the registry name in `runtime.match`).
        output: the engine output to match on; "a+b" matches on several together (PGFA's global
            and part features).
        outputs: every output that holds an embedding (upstream evaluates some on more than one).
    """

    metric: Metric
    output: str
    outputs: Optional[tuple[str, ...]] = None
    extra: Mapping[str, Any] = dataclasses.field(default_factory=frozen_extra)
    kind: str = "embedding"

    _KNOWN = ("kind", "metric", "output", "outputs")

    @classmethod
    def from_json(cls, d: Mapping[str, Any], where: str = "postprocess", strict: bool = False,
                  engine_outputs: Sequence[str] = ()) -> "EmbeddingPostprocess":
        metric = member(Metric, _get(d, "metric", where, True, None), f"{where}.metric")
        listed = d.get("outputs")
        if listed is not None and (not isinstance(listed, (list, tuple)) or not all(isinstance(n, str) for n in listed)):
            raise BadInputError(f"manifest {where}.outputs={listed!r} must be a list of output names")
        output = _get(d, "output", where, strict, lambda: _v1_output(metric, listed or [], engine_outputs))
        if not isinstance(output, str) or not output:
            raise BadInputError(f"manifest {where}.output={output!r} must name an engine output")
        if engine_outputs and not all(n in engine_outputs for n in output.split("+")):
            raise BadInputError(f"manifest {where}.output={output!r} is not among the engine outputs "
                                f"{list(engine_outputs)}; re-export the model")
        return cls(metric, output, None if listed is None else tuple(listed), _extra(d, cls._KNOWN))


def _v1_output(metric: Metric, listed: Sequence[str], engine_outputs: Sequence[str]) -> str:
    """Schema 1 named no output: PGFA matched on all its outputs, others on the last listed, else
    `embeddings` / `feat` / the first engine output."""
    listed = [n for n in listed if n in engine_outputs] if engine_outputs else list(listed)
    if metric is Metric.PGFA:
        return "+".join(listed or engine_outputs)
    if listed:
        return listed[-1]
    return next((n for n in ("embeddings", "feat") if n in engine_outputs), engine_outputs[0] if engine_outputs else "")


Postprocess = Union[HeatmapPostprocess, EmbeddingPostprocess]


def postprocess_of(manifest: Mapping[str, Any]) -> Optional[Postprocess]:
    """The typed `postprocess` record of a manifest (or a dict holding it); None when it records none."""
    from .pre import strict_for

    d = manifest.get("postprocess")
    if isinstance(d, _Record) or d is None or d == {}:
        return d or None
    if not isinstance(d, Mapping):
        raise BadInputError(f"manifest postprocess={d!r} must be an object; re-export the model")
    strict = strict_for(manifest)
    kind = d.get("kind", "heatmap" if "decoder" in d else "embedding" if "metric" in d else None)
    if kind in ("heatmap", "keypoint_queries"):
        return HeatmapPostprocess.from_json(d, strict=strict)
    if kind == "embedding":
        names = [o["name"] for o in manifest.get("outputs", []) if isinstance(o, Mapping) and "name" in o]
        return EmbeddingPostprocess.from_json(d, strict=strict, engine_outputs=names)
    raise BadInputError(f"manifest postprocess.kind={kind!r} is not one of ['heatmap', 'keypoint_queries', "
                        f"'embedding']; upgrade deploykit or re-export the model")
