"""Task-level agreement between a reference and an engine: what a user of the outputs would see.

Embeddings (gait, re-ID): samples come in pairs (an input and a slightly perturbed copy of it,
the "same identity"); the originals form a gallery, the copies the queries. Rank-1 agreement is
the share of queries whose nearest gallery item is the same under both; the mAP difference is
engine mAP minus reference mAP with the model's own metric.

Pose: joints decoded from both outputs with the model's decoder; per-joint pixel error in input
pixels and PCK agreement (share of joints within one heatmap pixel, i.e. `stride` input pixels, of
the reference's decode). On seeded random weights heatmaps are nearly flat and their argmax is
fragile: a tiny numeric difference can move a joint by many pixels, so these figures are
meaningful on real checkpoints and only indicative on random weights.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np


def _embedding_output(manifest: Mapping) -> tuple[str, str]:
    """(output name, metric) used for matching."""
    post = manifest.get("postprocess", {})
    outputs = [o["name"] for o in manifest["outputs"]]
    metric = post.get("metric", "cosine")
    if metric in ("pgfa", "pgfa_visibility_weighted"):  # needs visibility: match on the global branch
        return ("global_feat" if "global_feat" in outputs else outputs[0]), "cosine"
    names = post.get("outputs") or outputs
    return names[-1] if names[-1] in outputs else outputs[0], metric


def embedding_agreement(manifest: Mapping, ref: Sequence[Mapping[str, np.ndarray]],
                        eng: Sequence[Mapping[str, np.ndarray]]) -> dict:
    """Rank-1 agreement and mAP difference on a gallery built from paired samples.

    Args:
        manifest: the engine's manifest (outputs, postprocess metric).
        ref, eng: per sample `{output: array [1, ...]}`; samples 2i and 2i+1 are a pair.
    """
    from ..runtime.match import distance, evaluate

    name, metric = _embedding_output(manifest)
    pairs = len(ref) // 2
    if pairs < 2:
        return {"skipped": "needs at least 4 samples (2 pairs) to rank a gallery"}

    def split(outs):
        x = np.concatenate([o[name] for o in outs[: 2 * pairs]], 0).astype(np.float64)
        return x[1::2], x[0::2]  # queries (copies), gallery (originals)

    ids = np.arange(pairs)
    res = {}
    for label, outs in (("reference", ref), ("engine", eng)):
        q, g = split(outs)
        d = distance(q, g, metric)
        res[label] = {"top1": np.argmin(d, axis=1),
                      "mAP": float(evaluate(d, ids, ids, np.zeros(pairs), np.ones(pairs))["mAP"])}
    agree = float(np.mean(res["reference"]["top1"] == res["engine"]["top1"]))
    return {"output": name, "metric": metric, "pairs": pairs, "rank1_agreement": agree,
            "mAP_reference": res["reference"]["mAP"], "mAP_engine": res["engine"]["mAP"],
            "mAP_difference": res["engine"]["mAP"] - res["reference"]["mAP"]}


def _decode(manifest: Mapping, outs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, float]:
    """Joints in input pixels [N, K, 2] and the stride (input px per heatmap px)."""
    from ..runtime.pose.decode import decode_heatmaps, decode_prtr

    post = manifest.get("postprocess", {})
    size = manifest["inputs"][0]["shape"][2:4]
    if post.get("kind") == "keypoint_queries":
        coords, _ = decode_prtr(outs["logits"], outs["coords"], size)
        return coords, float(post.get("stride", 4))
    hm = outs[manifest["outputs"][0]["name"]]
    method = {"hrnet": "quarter", "alphapose": "quarter"}.get(post.get("decoder"), post.get("decoder", "quarter"))
    coords, _ = decode_heatmaps(hm, method, channels=post.get("channels"))
    stride = float(post.get("stride", size[0] / hm.shape[2]))
    return coords * stride, stride


def keypoint_agreement(manifest: Mapping, ref: Sequence[Mapping[str, np.ndarray]],
                       eng: Sequence[Mapping[str, np.ndarray]]) -> dict:
    """Per-joint pixel error (input pixels) and PCK agreement within one heatmap pixel."""
    errs = []
    stride = 4.0
    for r, e in zip(ref, eng):
        cr, stride = _decode(manifest, r)
        ce, _ = _decode(manifest, e)
        errs.append(np.linalg.norm(cr - ce, axis=-1).ravel())
    err = np.concatenate(errs)
    return {"joints": int(err.size), "mean_px": float(err.mean()), "max_px": float(err.max()),
            "pck_agreement": float(np.mean(err <= stride)), "pck_threshold_px": stride,
            "note": "input pixels; on random weights heatmaps are flat and argmax is fragile"}


def task_agreement(manifest: Mapping, ref: Sequence[Mapping[str, np.ndarray]],
                   eng: Sequence[Mapping[str, np.ndarray]]) -> dict:
    """The task metrics for the model's family (embedding or keypoint agreement)."""
    family = manifest["model"]["family"]
    if family in ("gait", "reid"):
        return embedding_agreement(manifest, ref, eng)
    return keypoint_agreement(manifest, ref, eng)
