"""The pre/post steps of the Triton ensembles, as plain numpy functions of a manifest (no Triton, no torch).

Each family has a pre stage (client tensors -> the engine's input) and a post stage (the engine's
outputs -> the answer); the ensemble runs pre -> the engine's Python-backend model -> post. Every
stage calls the same `deploykit.runtime` code as `deploykit infer`, so the served answer is the
in-process one:

* pose: IMAGE `[H, W, 3]` uint8 BGR + BOXES `[N, 5]` (x1, y1, x2, y2, score) -> `clean_boxes`,
  `crop_persons` -> engine -> `pose.pipeline.finish` (heatmap decoding, pose NMS as the manifest
  records it) -> KEYPOINTS `[M, K, 2]`, KEYPOINT_SCORES `[M, K]`, BOXES_OUT `[M, 4]`,
  BOX_SCORES `[M]`, SCORES `[M]` (float64, rounded as `deploykit infer` writes them).
* re-ID: IMAGE + BOXES -> `box_crops`, `preprocess_reid` -> engine -> EMBEDDINGS `[N, D]` float32,
  the manifest's embedding output flattened and L2-normalised (what the cosine metric compares).
* gait: SILHOUETTES `[T, H, W]` uint8 -> `windowed_frames` (OpenGait pretreatment, engine-sized
  windows) -> engine -> each engine output averaged over the windows (`deploykit infer`'s combine).

A stage's tensors are `(name, numpy dtype, dims)`; -1 is a variable dimension. Stages run
unbatched (Triton `max_batch_size: 0`): one request is one image or one sequence.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .. import manifest as mf
from ..errors import BadInputError

ENGINE_INPUT = "ENGINE_INPUT"
Tensor = tuple[str, str, list[int]]


def _engine_in(manifest: Mapping[str, Any]) -> mf.TensorSpec:
    ins = mf.inputs_of(manifest)
    if len(ins) != 1:
        raise BadInputError(f"{manifest['model']['name']}: the ensemble feeds one input; this engine takes "
                            f"{[s.name for s in ins]} (serve it with its own Python-backend model)")
    return ins[0]


def _engine_outs(manifest: Mapping[str, Any]) -> list[Tensor]:
    return [(s.name, s.dtype, [-1, *s.shape[1:]]) for s in mf.outputs_of(manifest)]


def _max_batch(manifest: Mapping[str, Any]) -> int:
    dyn = manifest.get("dynamic_batch")
    if not dyn:
        raise BadInputError(f"{manifest['model']['name']}: an ensemble needs a dynamic batch axis (one request "
                            f"gives any number of crops or windows); re-export with --dynamic-batch MAX")
    return int(dyn["max"])


def _fits(n: int, manifest: Mapping[str, Any], what: str) -> None:
    if n == 0:
        raise BadInputError(f"no {what} to run: send at least one box inside the image")
    if n > _max_batch(manifest):
        raise BadInputError(f"{n} {what} exceed the engine's dynamic batch max {_max_batch(manifest)}; send at "
                            f"most that many per request, or re-export with a larger --dynamic-batch")


def _rows(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    from ..runtime.pose.detections import clean_boxes

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise BadInputError(f"IMAGE must be [H, W, 3] uint8 BGR; got {list(image.shape)} {image.dtype}")
    b = np.asarray(boxes, np.float64)
    if b.ndim != 2 or b.shape[1] != 5:
        raise BadInputError(f"BOXES must be [N, 5] (x1, y1, x2, y2, score); got {list(b.shape)}")
    return clean_boxes(b, image.shape, "request")


class PosePre:
    def __init__(self, manifest: Mapping[str, Any]) -> None:
        from ..runtime.pose import TopDownConfig

        self.manifest, self.cfg, self.spec = manifest, TopDownConfig.from_manifest(manifest), _engine_in(manifest)
        self.inputs: list[Tensor] = [("IMAGE", "uint8", [-1, -1, 3]), ("BOXES", "float64", [-1, 5])]
        self.outputs: list[Tensor] = [(ENGINE_INPUT, self.spec.dtype, [-1, *self.spec.shape[1:]]),
                                      ("GEOMETRY", "float64", [-1, 4]), ("ROWS", "float64", [-1, 5])]

    def __call__(self, IMAGE: np.ndarray, BOXES: np.ndarray) -> dict[str, np.ndarray]:
        from ..runtime.pose import crop_persons
        from ..runtime.pose.pipeline import crop_geometry

        rows = _rows(IMAGE, BOXES)
        _fits(len(rows), self.manifest, "boxes")
        crops = crop_persons(IMAGE, rows[:, :4], self.cfg)
        return {ENGINE_INPUT: crops.inputs, "GEOMETRY": crop_geometry(crops), "ROWS": rows}


class PosePost:
    def __init__(self, manifest: Mapping[str, Any]) -> None:
        from ..runtime.pose import TopDownConfig
        from ..runtime.pose.pipeline import resolve_nms

        self.cfg, self.nms = TopDownConfig.from_manifest(manifest), resolve_nms(manifest, "auto")
        self.inputs = _engine_outs(manifest) + [("GEOMETRY", "float64", [-1, 4]), ("ROWS", "float64", [-1, 5])]
        self.outputs: list[Tensor] = [("KEYPOINTS", "float64", [-1, -1, 2]), ("KEYPOINT_SCORES", "float64", [-1, -1]),
                                      ("BOXES_OUT", "float64", [-1, 4]), ("BOX_SCORES", "float64", [-1]),
                                      ("SCORES", "float64", [-1])]

    def __call__(self, GEOMETRY: np.ndarray, ROWS: np.ndarray, **engine_out: np.ndarray) -> dict[str, np.ndarray]:
        from ..runtime.pose.pipeline import crops_from_geometry, finish

        people = finish(engine_out, crops_from_geometry(GEOMETRY, ROWS, self.cfg), ROWS, self.nms)
        k = int(np.shape(people[0]["keypoints"])[0]) if people else 0

        def col(key: str, shape: tuple) -> np.ndarray:
            return np.asarray([p[key] for p in people], np.float64).reshape(len(people), *shape)

        return {"KEYPOINTS": col("keypoints", (k, 2)), "KEYPOINT_SCORES": col("scores", (k,)),
                "BOXES_OUT": col("box", (4,)), "BOX_SCORES": col("box_score", ()), "SCORES": col("score", ())}


class ReidPre:
    def __init__(self, manifest: Mapping[str, Any]) -> None:
        from ..runtime.reid import ReidConfig

        self.manifest, self.cfg, self.spec = manifest, ReidConfig.from_manifest(manifest), _engine_in(manifest)
        self.inputs: list[Tensor] = [("IMAGE", "uint8", [-1, -1, 3]), ("BOXES", "float64", [-1, 5])]
        self.outputs: list[Tensor] = [(ENGINE_INPUT, self.spec.dtype, [-1, *self.spec.shape[1:]])]

    def __call__(self, IMAGE: np.ndarray, BOXES: np.ndarray) -> dict[str, np.ndarray]:
        from ..runtime.reid import box_crops, preprocess_reid

        rows = _rows(IMAGE, BOXES)
        _fits(len(rows), self.manifest, "boxes")
        return {ENGINE_INPUT: preprocess_reid(box_crops(IMAGE, rows), self.cfg)}


class ReidPost:
    def __init__(self, manifest: Mapping[str, Any]) -> None:
        from ..records import EmbeddingPostprocess, postprocess_of

        post = postprocess_of(manifest)
        if not isinstance(post, EmbeddingPostprocess) or "+" in post.output:
            raise BadInputError(f"{manifest['model']['name']}: the re-ID ensemble needs one embedding output in "
                                f"the manifest's postprocess record")
        self.output = post.output
        self.inputs = _engine_outs(manifest)
        self.outputs: list[Tensor] = [("EMBEDDINGS", "float32", [-1, -1])]

    def __call__(self, **engine_out: np.ndarray) -> dict[str, np.ndarray]:
        from ..runtime.match.metrics import l2n

        x = engine_out[self.output]
        return {"EMBEDDINGS": l2n(x.reshape(len(x), -1), 1).astype(np.float32)}


class GaitPre:
    def __init__(self, manifest: Mapping[str, Any]) -> None:
        self.manifest, self.spec = manifest, _engine_in(manifest)
        self.inputs: list[Tensor] = [("SILHOUETTES", "uint8", [-1, -1, -1])]
        self.outputs: list[Tensor] = [(ENGINE_INPUT, self.spec.dtype, [-1, *self.spec.shape[1:]]),
                                      ("WINDOWS", "int64", [-1, 2])]

    def __call__(self, SILHOUETTES: np.ndarray) -> dict[str, np.ndarray]:
        from ..runtime.gait_windows import windowed_frames

        if SILHOUETTES.ndim != 3:
            raise BadInputError(f"SILHOUETTES must be [T, H, W] uint8; got {list(SILHOUETTES.shape)}")
        win = windowed_frames(SILHOUETTES, self.manifest.get("preprocess"), self.spec.shape[1], name="request")
        _fits(len(win.clips), self.manifest, "windows")
        return {ENGINE_INPUT: win.clips.astype(self.spec.dtype, copy=False),
                "WINDOWS": np.asarray(win.windows, np.int64)}


class GaitPost:
    def __init__(self, manifest: Mapping[str, Any]) -> None:
        self.inputs = _engine_outs(manifest)
        self.outputs: list[Tensor] = [(n, d, dims[1:]) for n, d, dims in self.inputs]

    def __call__(self, **engine_out: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v.mean(0) for k, v in engine_out.items()}  # infer_gait's "mean over windows"


STAGES = {"pose": (PosePre, PosePost), "reid": (ReidPre, ReidPost), "gait": (GaitPre, GaitPost)}


def stages_for(manifest: Mapping[str, Any]) -> tuple[Any, Any]:
    """(pre, post) stage objects of the engine's family. Raises BadInputError where no ensemble applies."""
    family = (manifest.get("model") or {}).get("family")
    if family not in STAGES:
        raise BadInputError(f"no ensemble for family {family!r} (known: {sorted(STAGES)})")
    _max_batch(manifest)
    pre, post = STAGES[family]
    return pre(manifest), post(manifest)
