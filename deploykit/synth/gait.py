"""Synthetic walkers with identities: gait clips whose answer (who walks) is known.

An identity fixes the body (head size, shoulder and hip rows, leg length, torso and limb widths),
the stride period, leg and arm swing, knee bend and forward lean. Each sequence of an identity
varies the start phase, walking speed (a few percent of the period), mask noise, and its condition:
"nm" (normal), "bg" (a carried bag) or "cl" (a coat: a wider, longer torso), and its view (36-144
degrees, as CASIA-B; 90 = side view). The figure is drawn by
`synth.draw.draw_walker` on CASIA-B's 240x320 canvas and goes through the runtime's OpenGait
pretreatment, so the clips are exactly what a gait engine is fed. numpy + OpenCV, no torch.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

import numpy as np

from ..errors import BadInputError
from ..runtime.gait import cut_and_scale, pretreat_frame
from .draw import CANVAS_HW, cv2, draw_walker

CONDITIONS = ("nm", "bg", "cl")
VIEWS = (36, 54, 72, 90, 108, 126, 144)  # CASIA-B's views without the near-frontal/back ones


@dataclasses.dataclass(frozen=True)
class WalkerIdentity:
    """What stays fixed across one identity's sequences (fractions of the figure's height)."""

    head: float
    shoulder: float
    hip: float
    leg: float
    torso_w: float
    leg_w: float
    arm_w: float
    period: float      # frames per stride
    swing: float       # leg swing amplitude (radians)
    arm_swing: float
    knee: float
    lean: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> "WalkerIdentity":
        u = rng.uniform
        return cls(head=u(0.055, 0.085), shoulder=u(0.17, 0.23), hip=u(0.48, 0.56), leg=u(0.42, 0.50),
                   torso_w=u(0.08, 0.14), leg_w=u(0.045, 0.08), arm_w=u(0.025, 0.05), period=u(20, 34),
                   swing=u(0.3, 0.6), arm_swing=u(0.1, 0.4), knee=u(0.3, 0.9), lean=u(-0.12, 0.12))


def walker_frames(ident: WalkerIdentity, rng: np.random.Generator, frames: int, cond: str = "nm",
                  view: float = 90.0) -> list[np.ndarray]:
    """One sequence of `ident`: `frames` raw uint8 [240, 320] masks (0/255) under condition `cond`, seen
    from `view` degrees (90 = side view; walking-direction motion shrinks by sin(view), the body
    widens towards frontal views, and views above 90 are mirrored)."""
    profile = abs(math.sin(math.radians(view)))  # 1 side view, 0 frontal
    H, W = CANVAS_HW
    height = rng.uniform(120, 200)  # removed by the pretreatment (height 64), kept for realism
    x0, dx = rng.uniform(0.3, 0.7) * W, rng.uniform(-2.0, 2.0)
    period = ident.period * rng.uniform(0.94, 1.06)  # walking speed
    phase, noise_p = rng.uniform(0, 2 * math.pi), rng.uniform(0.0005, 0.004)
    torso_w = ident.torso_w * (rng.uniform(1.3, 1.6) if cond == "cl" else rng.uniform(0.95, 1.05))
    torso_w *= profile + (1 - profile) * 1.6  # a body is wider seen from the front than from the side
    bag = (rng.uniform(0.06, 0.1), rng.uniform(0.08, 0.14), rng.choice([-1.0, 1.0])) if cond == "bg" else None
    out = []
    for t in range(frames):
        m = np.zeros((H, W), np.uint8)
        ang = ident.swing * math.sin(2 * math.pi * t / period + phase)
        cx, foot = x0 + dx * t, H - 10 - rng.uniform(0, 2)
        draw_walker(m, cx, foot, height, ang, torso_w * height, ident.leg_w * height, ident.arm_w * height,
                    head=ident.head, shoulder=ident.shoulder, hip=ident.hip, leg=ident.leg, knee=ident.knee,
                    arm_swing=ident.arm_swing, lean=ident.lean, depth=profile,
                    spread=(1 - profile) * ident.torso_w * height * 0.8)
        top = foot - height
        if cond == "cl":  # the coat's skirt over the thighs
            cv2().ellipse(m, (int(cx), int(top + height * (ident.hip + 0.06))),
                              (int(torso_w * height), int(height * 0.12)), 0, 0, 360, 255, -1)
        if bag is not None:  # a bag hanging at one hip
            bw, bh, side = bag
            cv2().ellipse(m, (int(cx + side * (torso_w + bw * 0.6) * height), int(top + height * ident.hip)),
                              (int(bw * height), int(bh * height)), 0, 0, 360, 255, -1)
        # mask noise inside the figure's box only: noise far away would stretch the pretreatment's row crop
        r0, r1 = max(0, int(top) - 2), min(H, int(foot) + 3)
        c0, c1 = max(0, int(cx - 0.4 * height)), min(W, int(cx + 0.4 * height))
        box = m[r0:r1, c0:c1]
        flip = rng.random(box.shape) < noise_p * 3
        box[flip] = 255 - box[flip]
        out.append(np.ascontiguousarray(m[:, ::-1]) if view > 90 else m)
    return out


def _pretreat(raw: Sequence[np.ndarray], frames: int, size: tuple[int, int]) -> np.ndarray:
    """Raw masks -> [frames, h, w] float32 in [0, 1] through the runtime's OpenGait pretreatment."""
    h, w = size
    kept = [f for f in (pretreat_frame(np.asarray(r).astype(np.uint8), h)[0] for r in raw) if f is not None]
    if not kept:
        raise BadInputError("walkers: a rendered sequence lost every frame in the pretreatment; this is a bug in "
                            "deploykit.synth.gait, report the seed")
    kept = [kept[i % len(kept)] for i in range(frames)]  # dropped frames: repeat in order
    return cut_and_scale(np.stack(kept), (h - w) // 2, 255.0)  # [frames, h, w]


def walkers(num_ids: int, seqs_per_id: int, frames: int, seed: int, size: tuple[int, int] = (64, 44),
            conditions: Sequence[str] = CONDITIONS, views: Sequence[float] = VIEWS, first_id: int = 0,
            identities: Optional[Sequence[WalkerIdentity]] = None):
    """Silhouette clips of `num_ids` synthetic walkers, `seqs_per_id` sequences each.

    Identities are drawn from `seed`, so another seed gives other walkers (held-out sets use
    another seed). Sequence k of an identity has condition `conditions[k % len(conditions)]`; its
    view is drawn from `views`.

    Args:
        num_ids: identities (>= 1); seqs_per_id: sequences per identity (>= 1); frames: frames per
            clip (>= 1).
        seed: the generator seed; the same arguments give the same bytes.
        size: (h, w) of a frame after the pretreatment and cutting; default (64, 44) (OpenGait
            CASIA-B); (128, 88) for GLN.
        conditions: the cycle of conditions; default ("nm", "bg", "cl").
        views: the views to draw from (degrees, 90 = side view); default `VIEWS` (36 to 144 in
            steps of 18, as CASIA-B); (90,) gives side views only.
        first_id: the id of the first identity (ids are first_id .. first_id + num_ids - 1); default 0.
        identities: the identities to render instead of drawing them (len == num_ids); default None.

    Returns:
        sils float32 `[num_ids * seqs_per_id, frames, h, w]` in [0, 1], ids int64 `[n]`, conds
        `[n]` str array ("nm"/"bg"/"cl"), views int64 `[n]` (degrees).
    """
    if min(int(num_ids), int(seqs_per_id), int(frames)) < 1:
        raise BadInputError(f"walkers: num_ids {num_ids}, seqs_per_id {seqs_per_id}, frames {frames}; each must be "
                            f">= 1")
    bad = [c for c in conditions if c not in CONDITIONS]
    if bad or not conditions:
        raise BadInputError(f"walkers: conditions {list(conditions)}; use a non-empty list of {list(CONDITIONS)}")
    rng = np.random.default_rng([int(seed), 0x6a17])
    idents = list(identities) if identities is not None else [WalkerIdentity.draw(rng) for _ in range(int(num_ids))]
    if len(idents) != int(num_ids):
        raise BadInputError(f"walkers: {len(idents)} identities given for num_ids {num_ids}; give one per id")
    if not views:
        raise BadInputError("walkers: views is empty; give at least one view in degrees (90 = side view)")
    sils, ids, conds, vs = [], [], [], []
    for i, ident in enumerate(idents):
        for k in range(int(seqs_per_id)):
            cond = conditions[k % len(conditions)]
            # one view: no draw, so the stream (and the bytes) equal a side-view-only generator's
            view = float(views[int(rng.integers(len(views)))] if len(views) > 1 else views[0])
            sils.append(_pretreat(walker_frames(ident, rng, int(frames), cond, view), int(frames), size))
            ids.append(first_id + i)
            conds.append(cond)
            vs.append(view)
    return (np.stack(sils).astype(np.float32), np.asarray(ids, np.int64), np.asarray(conds),
            np.asarray(vs, np.int64))
