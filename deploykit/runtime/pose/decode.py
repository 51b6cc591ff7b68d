"""Pose decoding: heatmaps -> joints (quarter offset, DARK, old AlphaPose), flip test, PRTR matching.

All coordinates are (x, y) in heatmap pixels (PRTR: input pixels); map them to the image with
`Crops.to_image`. Conventions follow upstream exactly (see each function), including where the old
and current AlphaPose differ.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ...constants import COCO_FLIP_PAIRS
from ...errors import BadInputError
from ...records import ALIASES, Decoder
from .. import _checks
from .transforms import Crops

METHODS = tuple(m.value for m in Decoder if m is not Decoder.PRTR)  # heatmap decoders ("prtr" is decode_prtr)


def _heatmaps(heatmaps: Any, where: str) -> np.ndarray:
    hm = _checks.array(heatmaps, "heatmaps", ndim=4, where=where)
    if hm.shape[2] == 0 or hm.shape[3] == 0:
        raise BadInputError(f"{where}: heatmaps has shape {list(hm.shape)}; a heatmap needs height and width >= 1")
    return hm.astype(np.float64, copy=False)


def get_max_preds(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upstream `get_max_preds`: argmax (x = idx % W, y = idx // W) and the max; (0, 0) where max <= 0."""
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, h * w)
    idx = flat.argmax(axis=2)
    maxvals = np.take_along_axis(flat, idx[..., None], axis=2)[..., 0]
    coords = np.stack([idx % w, idx // w], axis=-1).astype(np.float64)
    coords *= (maxvals > 0)[..., None]
    return coords, maxvals


def _gather(hm: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    n, k, h, w = hm.shape
    ni, ki = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")
    return hm[ni, ki, np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)]


def _quarter(hm: np.ndarray, coords: np.ndarray, low: int) -> np.ndarray:
    """`coords += sign(gradient) * 0.25` where `low < p < size - 1` on both axes."""
    h, w = hm.shape[2:]
    px = np.floor(coords[..., 0] + 0.5).astype(np.int64)
    py = np.floor(coords[..., 1] + 0.5).astype(np.int64)
    inside = (px > low) & (px < w - 1) & (py > low) & (py < h - 1)
    dx = _gather(hm, py, px + 1) - _gather(hm, py, px - 1)
    dy = _gather(hm, py + 1, px) - _gather(hm, py - 1, px)
    step = np.stack([np.sign(dx), np.sign(dy)], axis=-1) * 0.25
    return coords + step * inside[..., None]


def _blur(hm: np.ndarray, kernel: int) -> np.ndarray:
    """DarkPose `gaussian_blur`: zero-pad by (k-1)/2, cv2.GaussianBlur(k, sigma from k), crop, rescale
    each map to its old max.

    The padded maps are stacked into one tall image and blurred in one call: each map keeps its own
    zero border, which is all the kernel reaches from inside the crop, so maps never mix and every
    value equals DarkPose's per-map blur.
    """
    import cv2

    border = (kernel - 1) // 2
    n, k, h, w = hm.shape
    ph, pw = h + 2 * border, w + 2 * border
    pad = np.zeros((n * k, ph, pw))
    pad[:, border:border + h, border:border + w] = hm.reshape(n * k, h, w)
    tall = cv2.GaussianBlur(pad.reshape(n * k * ph, pw), (kernel, kernel), 0)
    out = tall.reshape(n * k, ph, pw)[:, border:border + h, border:border + w].reshape(n, k, h, w)
    origin_max = hm.reshape(n, k, -1).max(axis=2)
    bmax = out.reshape(n, k, -1).max(axis=2)
    factor = np.where(bmax != 0, origin_max / np.where(bmax != 0, bmax, 1.0), 1.0)
    return out * factor[..., None, None]


def _dark(hm: np.ndarray, coords: np.ndarray, kernel: int, guard: bool) -> np.ndarray:
    """DarkPose `taylor` on log(blurred heatmap) at the argmax, where `1 < p < size - 2`."""
    h, w = hm.shape[2:]
    logm = np.log(np.maximum(_blur(hm, kernel), 1e-10))
    px = coords[..., 0].astype(np.int64)
    py = coords[..., 1].astype(np.int64)
    inside = (px > 1) & (px < w - 2) & (py > 1) & (py < h - 2)

    def at(dy: int, dx: int) -> np.ndarray:
        return _gather(logm, py + dy, px + dx)

    c = at(0, 0)
    dx = 0.5 * (at(0, 1) - at(0, -1))
    dy = 0.5 * (at(1, 0) - at(-1, 0))
    dxx = 0.25 * (at(0, 2) - 2 * c + at(0, -2))
    dxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
    dyy = 0.25 * (at(2, 0) - 2 * c + at(-2, 0))
    det = dxx * dyy - dxy ** 2
    ok = inside & (det != 0)
    safe = np.where(det != 0, det, 1.0)
    off = np.stack([-(dyy * dx - dxy * dy) / safe, -(dxx * dy - dxy * dx) / safe], axis=-1)
    if guard:  # only a real maximum, and only a step that stays in the argmax's neighbourhood
        ok &= (dxx < 0) & (det > 0) & (np.abs(off) <= 1.0).all(axis=-1)
    ok &= np.isfinite(off).all(axis=-1)
    return coords + np.where(ok[..., None], off, 0.0)


def decode_heatmaps(heatmaps: Any, method: str = "quarter", *, channels: Optional[int] = None,
                    dark_kernel: int = 11, dark_guard: bool = True,
                    v0_offset: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Joint coordinates and scores from heatmaps.

    Args:
        heatmaps: `[N, K, H, W]` float heatmaps (finite).
        method: "quarter" (HRNet `get_final_preds` with POST_PROCESS, current AlphaPose
            `heatmap_to_coord_simple`: argmax, then a quarter pixel toward the higher neighbour
            where `1 < x < W-1` and `1 < y < H-1`); "dark" (DarkPose: Gaussian blur of
            `dark_kernel`, log, second-order Taylor step at the argmax where `1 < p < size-2`);
            "alphapose_v0" (old AlphaPose `getPrediction`: quarter offset where `0 < p < size-1`,
            then `+v0_offset` on every joint); "argmax". "hrnet" and "alphapose" are aliases of
            "quarter".
        channels: decode only the first `channels` maps (old FastPose: 17 of 33).
        dark_kernel: odd blur kernel of DARK (DarkPose configs: 11 for 64x48 heatmaps).
        dark_guard: take the DARK step only where the Hessian is negative definite and the step
            stays within 1 px (always true on a clean peak); False is DarkPose's plain `det != 0`.
        v0_offset: the old AlphaPose's constant shift (0.2).

    Returns:
        coords float64 `[N, K, 2]` (x, y) in heatmap pixels, scores float64 `[N, K]` (the heatmap
        max; joints with max <= 0 sit at (0, 0) as upstream).
    """
    where = "decode_heatmaps"
    m = _checks.choice(ALIASES[Decoder].get(str(method).lower(), method), "method", METHODS, where)
    hm = _heatmaps(heatmaps, where)
    if channels is not None:
        if not 0 < int(channels) <= hm.shape[1]:
            raise BadInputError(f"{where}: channels={channels} but the heatmaps have {hm.shape[1]}")
        hm = hm[:, : int(channels)]
    if hm.shape[0] == 0 or hm.shape[1] == 0:
        return np.zeros(hm.shape[:2] + (2,)), np.zeros(hm.shape[:2])
    coords, maxvals = get_max_preds(hm)
    if m == "quarter":
        coords = _quarter(hm, coords, low=1)
    elif m == "alphapose_v0":
        coords = _quarter(hm, coords, low=0) + float(v0_offset)
    elif m == "dark":
        k = int(dark_kernel)
        if k < 1 or k % 2 == 0:
            raise BadInputError(f"{where}: dark_kernel must be a positive odd int, got {dark_kernel}")
        coords = _dark(hm, coords, k, dark_guard)
    return coords, maxvals


# -- flip test -----------------------------------------------------------------------------------
def flip_images(images: Any) -> np.ndarray:
    """Mirror an `[N, C, H, W]` batch left-right (the flip-test input)."""
    x = _checks.array(images, "images", ndim=4, where="flip_images")
    return np.ascontiguousarray(x[..., ::-1])


def flip_back(heatmaps_flipped: Any, flip_pairs: Sequence[Sequence[int]] = COCO_FLIP_PAIRS,
              shift: bool = True) -> np.ndarray:
    """Heatmaps of a mirrored input back to the original frame.

    Mirror in x, swap left/right joints (HRNet `flip_back`, AlphaPose `flip_heatmap`), and with
    `shift` move the result one pixel right (`out[..., 1:] = out[..., :-1]`, HRNet SHIFT_HEATMAP and
    AlphaPose `shift=True`): the mirrored heatmap grid is off by one pixel.
    """
    where = "flip_back"
    hm = _heatmaps(heatmaps_flipped, where)
    pairs = _checks.pairs(flip_pairs, hm.shape[1], where)
    out = hm[..., ::-1].copy()
    for a, b in pairs:
        out[:, [a, b]] = out[:, [b, a]]
    if shift and out.shape[3] > 1:
        out[..., 1:] = out[..., :-1].copy()
    return out


def flip_average(heatmaps: Any, heatmaps_flipped: Any, flip_pairs: Sequence[Sequence[int]] = COCO_FLIP_PAIRS,
                 shift: bool = True) -> np.ndarray:
    """Flip test: `(heatmaps + flip_back(heatmaps_flipped)) / 2`.

    Use `shift=True` for HRNet and the current AlphaPose (`--flip`), `shift=False` for the old
    AlphaPose non-fast `InferenNet` (`flip(shuffleLR(.))`, no shift).
    """
    where = "flip_average"
    hm = _heatmaps(heatmaps, where)
    back = flip_back(heatmaps_flipped, flip_pairs, shift)
    if back.shape != hm.shape:
        raise BadInputError(f"{where}: heatmaps {list(hm.shape)} and flipped heatmaps {list(back.shape)} differ")
    return (hm + back) * 0.5


# -- PRTR ----------------------------------------------------------------------------------------
def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def decode_prtr(logits: Any, coords: Any, input_size: Sequence[int], *, include_bg_logit: bool = False,
                flipped: bool = False, flip_pairs: Sequence[Sequence[int]] = COCO_FLIP_PAIRS
                ) -> tuple[np.ndarray, np.ndarray]:
    """PRTR `get_final_preds_match`: joint classes matched to queries by the Hungarian algorithm.

    Args:
        logits: `[N, Q, J+1]` class logits (the last class is background).
        coords: `[N, Q, 2]` sigmoid (x, y) in [0, 1] of the crop.
        input_size: network input (height, width); the coordinates are scaled to it.
        include_bg_logit: softmax over all J+1 classes then drop background (TEST.INCLUDE_BG_LOGIT);
            default False: drop the background logit, then softmax over the J joints.
        flipped: these outputs come from the mirrored input: x -> 1 - x (`fliplr_joints(width=1,
            pixel_align=False)`) and left/right joints swapped.
        flip_pairs: joint pairs for `flipped`.

    Returns:
        coords float64 `[N, J, 2]` (x, y) in input pixels (map with `Crops.to_image(c,
        from_size=input_size)`), scores float64 `[N, J]` (the matched class probability).
        Flip test: average the coords and scores of the plain and `flipped=True` decodes.
    """
    from scipy.optimize import linear_sum_assignment

    where = "decode_prtr"
    lg = _checks.array(logits, "logits", ndim=3, dtype=np.float64, where=where)
    pc = _checks.array(coords, "coords", ndim=3, dtype=np.float64, where=where)
    h, w = _checks.size_hw(input_size, "input_size", where)
    n, q, c = lg.shape
    if pc.shape != (n, q, 2):
        raise BadInputError(f"{where}: coords has shape {list(pc.shape)}; expected [{n}, {q}, 2] to match logits")
    j = c - 1
    if j < 1:
        raise BadInputError(f"{where}: logits has {c} classes; expected joints + 1 background (18 for COCO)")
    if q < j:
        raise BadInputError(f"{where}: {q} queries cannot be matched one-to-one to {j} joints")
    prob = _softmax(lg, -1)[..., :-1] if include_bg_logit else _softmax(lg[..., :-1], -1)
    pairs = _checks.pairs(flip_pairs, j, where) if flipped else []
    out = np.zeros((n, j, 2))
    scores = np.zeros((n, j))
    for b in range(n):
        rows, cols = linear_sum_assignment(-prob[b].T)  # cost [J, Q]; rows come back sorted 0..J-1
        query = np.empty(j, np.int64)
        query[rows] = cols
        s = prob[b, query, np.arange(j)]
        raw = pc[b, query].copy()
        if flipped:
            raw[:, 0] = 1.0 - raw[:, 0]
            for a, bb in pairs:
                raw[[a, bb]] = raw[[bb, a]]
                s[[a, bb]] = s[[bb, a]]
        out[b] = raw * np.array([w, h], np.float64)
        scores[b] = s
    return out, scores


# -- one call: engine outputs -> image keypoints --------------------------------------------------
def _output(outputs: Mapping[str, Any], names: Sequence[str], where: str) -> np.ndarray:
    for n in names:
        if n in outputs:
            return outputs[n]
    if len(outputs) == 1 and len(names) == 1:
        return next(iter(outputs.values()))
    raise BadInputError(f"{where}: outputs {sorted(outputs)} lack {names[0]!r}")


def decode_outputs(outputs: Mapping[str, Any], crops: Crops, flipped_outputs: Optional[Mapping[str, Any]] = None,
                   method: Optional[str] = None) -> tuple[np.ndarray, np.ndarray]:
    """A pose engine's outputs for `crops` -> keypoints in image pixels, with optional flip test.

    Heatmap models (`heatmaps` output): the first `config.channels` maps, flip-averaged with
    `flipped_outputs` (the engine run on `flip_images(crops.inputs)`) using the config's pairs and
    shift, decoded with `method` (default the config's decoder) and mapped through the crop.
    PRTR (`logits`, `coords`): Hungarian-matched per image, the flipped decode averaged in, mapped
    through the crop.

    Returns:
        keypoints float64 `[N, K, 2]` (x, y) in image pixels, scores float64 `[N, K]`.
    """
    where = "decode_outputs"
    cfg = crops.config
    if cfg.decoder == "prtr":
        logits = _output(outputs, ("logits", "pred_logits"), where)
        coords = _output(outputs, ("coords", "pred_coords"), where)
        xy, s = decode_prtr(logits, coords, cfg.input_size)
        if flipped_outputs is not None:
            xy2, s2 = decode_prtr(_output(flipped_outputs, ("logits", "pred_logits"), where),
                                  _output(flipped_outputs, ("coords", "pred_coords"), where), cfg.input_size,
                                  flipped=True, flip_pairs=cfg.flip_pairs)
            xy, s = (xy + xy2) / 2, (s + s2) / 2
        return crops.to_image(xy, from_size=cfg.input_size), s
    hm = _heatmaps(_output(outputs, ("heatmaps",), where), where)
    if hm.shape[0] != len(crops):
        raise BadInputError(f"{where}: {hm.shape[0]} heatmaps for {len(crops)} crops")
    if cfg.channels:
        hm = hm[:, : cfg.channels]
    if flipped_outputs is not None:
        hf = _heatmaps(_output(flipped_outputs, ("heatmaps",), where), where)
        hm = flip_average(hm, hf[:, : hm.shape[1]], cfg.flip_pairs, cfg.flip_shift)
    xy, s = decode_heatmaps(hm, method or cfg.decoder)
    return crops.to_image(xy, from_size=hm.shape[2:]), s
