"""Task-level agreement between the FP32 reference and an engine, judged by the gates table.

Embeddings (gait, re-ID), over the held-out samples (leave one out: each sample queries the rest):

- `nn_agreement`: share of samples whose nearest neighbour is the same sample for both.
- with labels (identity per sample): rank-1 and mAP of each, and their differences (gated);
- without labels (today's synthetic data): pseudo-identities from FP32, i.e. a query's relevant
  items are its `PSEUDO_K` nearest neighbours under FP32; `pseudo_mAP` is the engine's mAP against
  them (FP32 scores 1 by construction). Reported, not gated: NN agreement is the gated figure.

Pose: joints decoded with the model's decoder from both outputs, judged only on reference joints
that are peaked (`gates.PEAK_MIN_STD` / `PEAK_MIN_PROB`). When fewer than `gates.PEAKED_SHARE` of
them are (random weights), the task gate is reported as not applicable, never as passed.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np

from ..records import EmbeddingPostprocess, HeatmapPostprocess, Metric, postprocess_of
from . import gates as G


def _embedding_output(manifest: Mapping) -> tuple[str, str]:
    """(output name, metric) used for matching: the manifest's typed embedding record."""
    post = postprocess_of(manifest)
    outputs = [o["name"] for o in manifest["outputs"]]
    if not isinstance(post, EmbeddingPostprocess):
        return outputs[-1], "cosine"
    if post.metric is Metric.PGFA:  # needs visibility: match on the global branch
        return ("global_feat" if "global_feat" in outputs else outputs[0]), "cosine"
    return (post.output if post.output in outputs else outputs[0]), post.metric.value


def _loo(dist: np.ndarray) -> np.ndarray:
    d = dist.astype(np.float64).copy()
    np.fill_diagonal(d, np.inf)
    return d


def _map(dist: np.ndarray, relevant: np.ndarray) -> float:
    """Mean AP of ranking each row of `dist` (diagonal excluded) against a boolean relevance matrix."""
    aps = []
    for i in range(dist.shape[0]):
        order = [j for j in np.argsort(dist[i], kind="stable") if j != i]
        hits = relevant[i, order]
        if hits.any():
            prec = np.cumsum(hits) / (np.arange(len(hits)) + 1)
            aps.append(float((prec * hits).sum() / hits.sum()))
    return float(np.mean(aps)) if aps else float("nan")


def embedding_agreement(manifest: Mapping, refs: Mapping[str, np.ndarray], outs: Mapping[str, np.ndarray],
                        gates: G.Gates, labels: Optional[np.ndarray] = None) -> dict:
    """Figures and checks for embeddings; `refs`/`outs` are `{output: [N, ...]}` over the held-out set."""
    from ..runtime.match import distance

    name, metric = _embedding_output(manifest)
    n = refs[name].shape[0]
    if n < 3:
        return {"applicable": False, "why": f"needs at least 3 held-out samples to rank neighbours, got {n}"}
    dr = _loo(distance(refs[name].astype(np.float64), refs[name].astype(np.float64), metric))
    de = _loo(distance(outs[name].astype(np.float64), outs[name].astype(np.float64), metric))
    nn_r, nn_e = dr.argmin(1), de.argmin(1)
    fig = {"output": name, "metric": metric, "samples": n, "nn_agreement": float(np.mean(nn_r == nn_e))}
    checks = {t.figure: t for t in gates.embedding}
    res = [checks["nn_agreement"].judge(fig["nn_agreement"])] if "nn_agreement" in checks else []
    if labels is None:
        k = min(G.PSEUDO_K, n - 2)
        rel = np.zeros((n, n), bool)
        rel[np.arange(n)[:, None], np.argsort(dr, axis=1, kind="stable")[:, :k]] = True
        fig.update(labels="none: pseudo-identities = FP32's own nearest neighbours", pseudo_k=k,
                   pseudo_mAP=_map(de, rel))
        return {"applicable": True, **fig, "checks": res}
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, False)
    queries = int(same.any(1).sum())
    for who, d, nn in (("reference", dr, nn_r), ("engine", de, nn_e)):
        fig[f"rank1_{who}"] = float(np.mean(same[np.arange(n), nn][same.any(1)])) if queries else float("nan")
        fig[f"mAP_{who}"] = _map(d, same)
    fig.update(labels="given", queries=queries, rank1_difference=abs(fig["rank1_engine"] - fig["rank1_reference"]),
               mAP_difference=abs(fig["mAP_engine"] - fig["mAP_reference"]))
    for key in ("rank1_difference", "mAP_difference"):
        if key in checks:
            t = checks[key]
            res.append(G.Threshold(t.figure, t.op, G.difference_limit(t, queries), t.why).judge(fig[key]))
    return {"applicable": True, **fig, "checks": res}


def _decode(manifest: Mapping, outs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, float]:
    """Joints in input pixels [N, K, 2], peakedness [N, K] (std above median, or probability) and stride."""
    from ..runtime.pose.decode import decode_heatmaps, decode_prtr

    post = postprocess_of(manifest)
    post = post if isinstance(post, HeatmapPostprocess) else None
    size = manifest["inputs"][0]["shape"][2:4]
    if post is not None and post.kind == "keypoint_queries":
        coords, scores = decode_prtr(outs["logits"], outs["coords"], size)
        return coords, np.asarray(scores).reshape(coords.shape[:2]), 4.0
    hm = outs[manifest["outputs"][0]["name"]]
    method = post.decoder.value if post is not None else "quarter"
    coords, _ = decode_heatmaps(hm, method, channels=post.channels if post is not None else None)
    k = coords.shape[1]
    flat = np.asarray(hm, np.float64)[:, :k].reshape(hm.shape[0], k, -1)
    peak = (flat.max(-1) - np.median(flat, -1)) / (flat.std(-1) + 1e-12)
    stride = float(post.stride if post is not None and post.stride else size[0] / hm.shape[2])
    return coords * stride, peak, stride


def keypoint_agreement(manifest: Mapping, ref: Sequence[Mapping[str, np.ndarray]],
                       eng: Sequence[Mapping[str, np.ndarray]], gates: G.Gates) -> dict:
    """PCK@0.05 agreement and joint error (heatmap pixels) on peaked reference joints."""
    errs, peaks = [], []
    stride = 4.0
    queries = getattr(postprocess_of(manifest), "kind", None) == "keypoint_queries"
    for r, e in zip(ref, eng):
        cr, pk, stride = _decode(manifest, r)
        ce, _, _ = _decode(manifest, e)
        errs.append(np.linalg.norm(cr - ce, axis=-1).ravel())
        peaks.append(pk.ravel())
    err, peak = np.concatenate(errs), np.concatenate(peaks)
    peaked = peak >= (G.PEAK_MIN_PROB if queries else G.PEAK_MIN_STD)
    pck_px = 0.05 * float(manifest["inputs"][0]["shape"][2])
    fig = {"joints": int(err.size), "peaked_share": float(peaked.mean()),
           "peaked_by": (f"winning query probability >= {G.PEAK_MIN_PROB}" if queries else
                         f"heatmap peak >= {G.PEAK_MIN_STD} std above its median"),
           "median_peak": float(np.median(peak)), "mean_px_all": float(err.mean()), "pck_px": pck_px}
    if peaked.mean() < G.PEAKED_SHARE:
        return {"applicable": False, **fig,
                "why": f"only {peaked.mean():.0%} of FP32 joints are peaked (needs {G.PEAKED_SHARE:.0%}); "
                       f"flat heatmaps (random weights) cannot judge joints"}
    e = err[peaked]
    fig.update(pck_agreement=float(np.mean(e <= pck_px)), joint_error_hm_px=float(e.mean() / stride))
    return {"applicable": True, **fig, "checks": [t.judge(fig[t.figure]) for t in gates.pose]}


def heatmap_pck(heatmaps: np.ndarray, truth: np.ndarray, input_hw: Sequence[int], thr: float = 0.5) -> float:
    """HRNet's training accuracy (`lib/core/evaluate.py accuracy`): argmax joints against the truth,
    distance / (heatmap size / 10) < thr; the share of joints within it.

    heatmaps [n, 17, hh, hw], truth [n, 17, 2] (x, y) in input pixels."""
    n, j, hh, hw = heatmaps.shape
    flat = np.asarray(heatmaps).reshape(n, j, -1).argmax(-1)
    xy = np.stack([flat % hw, flat // hw], -1).astype(np.float64)
    gt = np.asarray(truth, np.float64)[:, :j] / np.array([input_hw[1] / hw, input_hw[0] / hh])
    d = np.linalg.norm((xy - gt) / np.array([hw / 10, hh / 10]), axis=-1)
    return float((d < thr).mean())


def task_agreement(manifest: Mapping, refs: Mapping[str, np.ndarray], outs: Mapping[str, np.ndarray],
                   gates: G.Gates, labels: Optional[np.ndarray] = None,
                   keypoints: Optional[np.ndarray] = None) -> dict:
    """The task figures and checks for the model's family; `refs`/`outs` are `{output: [N, ...]}`;
    `keypoints` [N, 17, 2] true joints (pose proxies) add each side's PCK@0.5 against the truth (reported)."""
    if manifest["model"]["family"] in ("gait", "reid"):
        return embedding_agreement(manifest, refs, outs, gates, labels)
    split = lambda d: [{k: v[i:i + 1] for k, v in d.items()} for i in range(next(iter(d.values())).shape[0])]  # noqa: E731
    res = keypoint_agreement(manifest, split(refs), split(outs), gates)
    name = manifest["outputs"][0]["name"]
    if keypoints is not None and refs[name].ndim == 4:
        size = manifest["inputs"][0]["shape"][2:4]
        res.update(pck_truth_reference=heatmap_pck(refs[name], keypoints, size),
                   pck_truth_engine=heatmap_pck(outs[name], keypoints, size))
    return res
