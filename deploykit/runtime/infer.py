"""`deploykit infer`: files in, JSON out, for any engine artifact. No torch.

Pose engines take images (+ person boxes) and give keypoints in image pixels; gait engines take
silhouette sequence folders (or `.npy` arrays `[T, H, W]`) and give embeddings; re-ID engines take
person crops and give embeddings. Engines have static shapes, so inputs are run in chunks of the
engine's batch size (the last chunk padded by repetition and trimmed).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from ..errors import BadInputError
from .engine import Engine

# COCO skeleton (joint index pairs) for overlays.
COCO_SKELETON = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
                 (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6))


def _batched(engine: Engine, name: str, x: np.ndarray,
             constant: Optional[Mapping[str, np.ndarray]] = None) -> list[dict[str, np.ndarray]]:
    """Run `x` ([N, ...], N any) through an engine of static batch B; returns per-item outputs.

    `constant` feeds the engine's other inputs unchanged for every chunk.
    """
    b = engine.inputs[0].shape[0]
    items: list[dict[str, np.ndarray]] = []
    for start in range(0, len(x), b):
        chunk = x[start:start + b]
        real = len(chunk)
        if real < b:  # static batch: pad by repeating the last item, drop the padding after
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], b - real, 0)], 0)
        out = engine.infer({name: np.ascontiguousarray(chunk, dtype=np.float32), **(constant or {})})
        items += [{k: v[i] for k, v in out.items()} for i in range(real)]
    return items


def _read_boxes(boxes: Optional[str | os.PathLike], image: Path, shape: Sequence[int]) -> np.ndarray:
    """Boxes [N, 4] (x1, y1, x2, y2) for `image` from a JSON file; the whole image when absent."""
    h, w = shape[:2]
    if boxes is None:
        return np.array([[0.0, 0.0, w - 1.0, h - 1.0]])
    try:
        data = json.loads(Path(boxes).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInputError(f"--boxes {boxes}: cannot read it as JSON ({exc}); give "
                            f'{{"image.jpg": [[x1, y1, x2, y2], ...]}} or one list for a single image') from None
    if isinstance(data, dict):
        data = data.get(image.name, data.get(str(image)))
        if data is None:
            raise BadInputError(f"--boxes {boxes} has no entry for {image.name}; key the boxes by file name")
    arr = np.asarray(data, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 4 or len(arr) == 0:
        raise BadInputError(f"--boxes for {image.name} has shape {list(arr.shape)}; expected [N, 4] or [N, 5] "
                            f"(x1, y1, x2, y2[, score]) with N >= 1")
    return arr[:, :4]


def infer_pose(engine: Engine, inputs: Sequence[str], boxes=None, visualize=None) -> list[dict]:
    from .imageops import load_image
    from .pose import TopDownConfig, crop_persons, decode_outputs

    cfg = TopDownConfig.from_manifest(engine.manifest)
    results = []
    for path in map(Path, inputs):
        image = load_image(path)
        bx = _read_boxes(boxes, path, image.shape)
        crops = crop_persons(image, bx, cfg)
        outs = _batched(engine, engine.inputs[0].name, crops.inputs)
        stacked = {k: np.stack([o[k] for o in outs]) for k in outs[0]}
        kps, scores = decode_outputs(stacked, crops)
        results.append({"input": str(path), "people": [
            {"box": b.tolist(), "keypoints": k.round(2).tolist(), "scores": s.round(4).tolist()}
            for b, k, s in zip(bx, kps, scores)]})
        if visualize:
            draw_skeleton(image, kps, scores, Path(visualize) / f"{path.stem}.pose.png")
    return results


def draw_skeleton(image: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, out: Path,
                  min_score: float = 0.05) -> None:
    """Write a PNG of `image` (BGR uint8) with each person's COCO skeleton drawn over it (atomically)."""
    import cv2

    from .. import atomic

    canvas = image.copy()
    for kp, sc in zip(keypoints, scores):
        for a, b in COCO_SKELETON:
            if a < len(kp) and b < len(kp) and sc[a] > min_score and sc[b] > min_score:
                cv2.line(canvas, tuple(int(v) for v in kp[a]), tuple(int(v) for v in kp[b]), (0, 255, 255), 2)
        for (x, y), s in zip(kp, sc):
            if s > min_score:
                cv2.circle(canvas, (int(x), int(y)), 3, (0, 0, 255), -1)
    ok, buf = cv2.imencode(".png", canvas)
    if not ok:
        raise BadInputError(f"cannot encode the overlay for {out}")
    atomic.write_bytes(out, buf.tobytes())


def infer_gait(engine: Engine, inputs: Sequence[str], **_) -> list[dict]:
    from .gait import silhouette_clip

    if len(engine.inputs) != 1:
        raise BadInputError(f"{engine.path.name}: `deploykit infer` takes silhouettes only; "
                            f"{[s.name for s in engine.inputs]} need the Python API (runtime.gait)")
    spec = engine.inputs[0]
    results = []
    for src in inputs:
        source: Any = np.load(src) if str(src).endswith(".npy") else src
        clip, info = silhouette_clip(source, engine.manifest.get("preprocess"), frames=spec.shape[1])
        emb = _batched(engine, spec.name, clip)[0]
        results.append({"input": str(src), "frames_kept": int(len(info)),
                        **{k: v.tolist() for k, v in emb.items()}})
    return results


def infer_reid(engine: Engine, inputs: Sequence[str], **_) -> list[dict]:
    from .imageops import load_image
    from .reid import ReidConfig, preprocess_reid

    cfg = ReidConfig.from_manifest(engine.manifest)
    x = preprocess_reid([load_image(p) for p in inputs], cfg)
    # PGFA's pose heatmaps: all ones without pose data, as upstream does for images without a pose file
    extra = {s.name: np.ones(s.shape, np.float32) for s in engine.inputs[1:]}
    outs = _batched(engine, engine.inputs[0].name, x, extra)
    return [{"input": str(p), **{k: v.tolist() for k, v in o.items()}} for p, o in zip(inputs, outs)]


_BY_FAMILY: dict[str, Callable[..., list[dict]]] = {"pose": infer_pose, "gait": infer_gait, "reid": infer_reid}


def infer_files(engine_path: str | os.PathLike, inputs: Sequence[str], *, boxes=None, visualize=None,
                threads: Optional[int] = None) -> dict:
    """Run an engine on files and return a JSON-ready dict `{"model", "family", "results": [...]}`."""
    if not inputs:
        raise BadInputError("no INPUT given; pass image files (pose, re-ID), silhouette folders or .npy (gait)")
    missing = [p for p in inputs if not Path(p).exists()]
    if missing:
        raise BadInputError(f"input(s) not found: {missing[:5]}; check the paths")
    with Engine.load(engine_path, threads=threads) as engine:
        family = engine.manifest["model"]["family"]
        results = _BY_FAMILY[family](engine, inputs, boxes=boxes, visualize=visualize)
        return {"model": engine.manifest["model"]["name"], "family": family, "results": results}


def embeddings_from_results(data: Mapping, output: Optional[str] = None) -> tuple[np.ndarray, list[str]]:
    """Embeddings `[N, ...]` and input names from `infer_files` JSON (gait/re-ID)."""
    if data.get("family") not in ("gait", "reid"):
        raise BadInputError(f"results of family {data.get('family')!r} hold no embeddings; use a gait or re-ID engine")
    res = data["results"]
    if not res:
        raise BadInputError("the results file holds no results")
    keys = [k for k in res[0] if k not in ("input", "frames_kept")]
    key = output or ("embeddings" if "embeddings" in keys else "feat" if "feat" in keys else keys[0])
    if key not in keys:
        raise BadInputError(f"output {output!r} is not in the results; available: {keys}")
    return np.asarray([r[key] for r in res], dtype=np.float32), [r["input"] for r in res]
