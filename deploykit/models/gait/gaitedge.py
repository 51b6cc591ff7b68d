"""GaitEdge: Beyond Plain End-to-end Gait Recognition for Better Practicality (Liang, Fan, Yu et al.;
ECCV 2022, arXiv:2203.03972).

Upstream: ShiqiYu/OpenGait@0efafd4 `opengait/modeling/models/gaitedge.py`, `GaitAlign` in
`opengait/modeling/modules.py`, U-Net in `backbones/u_net.py`; config
`configs/gaitedge/phase2_gaitedge.yaml` (CASIA-B*: GaitGL small layout, edge and align on, kernel 3).
Licence: MIT (code).

Pipeline (eval): RGB -> U-Net -> sigmoid; the binary silhouette gives an edge band (dilation XOR
erosion, 3x3 all-ones, kornia's geodesic border) and an interior (erosion); the synthesis keeps the
network's mask on the band and the silhouette inside it; GaitAlign crops the result around the
silhouette with a box that restores the person's aspect ratio (`ratios`), resamples it to 64x44 with
RoIAlign, and GaitGL embeds the clip. Only this edge + align variant exists here: upstream's
`phase2_e2e.yaml` (edge off) cannot even be built upstream (KeyError on `kernel_size`).
Morphology is written as max pooling (kornia is not a dependency); RoIAlign is our own
(`layers/roi_align.py`), exported as ONNX RoiAlign so the boxes stay data-dependent in the graph.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ...constants import IMAGENET_MEAN, IMAGENET_STD
from ...manifest import TensorSpec
from ...records import SilhouettePreprocess
from ..backbones.unet import UNet
from ..layers.roi_align import RoIAlign
from ..registry import InputTemplate, ModelSpec, register_model
from . import common
from .gaitgl import GaitGL

IMG = 128  # CASIA-B* frames are person crops resized to 128 x 128


def dilate(x: torch.Tensor, k: int) -> torch.Tensor:
    """Grey dilation by a flat k x k square, pixels outside the image ignored (kornia, geodesic).

    The window of output pixel i is input[i - k//2 : i - k//2 + k] on both axes (kornia's origin
    k//2), so even k pads one more pixel before than after.

    Args:
        x: [n, c, h, w] float32.
        k: window size >= 1.

    Returns:
        [n, c, h, w] float32, the window maximum.
    """
    before, after = k // 2, k - 1 - k // 2
    if before == after:
        return F.max_pool2d(x, k, stride=1, padding=before)  # max pool ignores its padding
    return F.max_pool2d(F.pad(x, (before, after, before, after), value=float("-inf")), k, stride=1)


def erode(x: torch.Tensor, k: int) -> torch.Tensor:
    """Grey erosion by a flat k x k square (window minimum), geodesic border: `-dilate(-x)`.

    Args and shapes as `dilate`.
    """
    return -dilate(-x, k)


def edge_and_interior(sils: torch.Tensor, k: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """GaitEdge's masks: edge = (dilation > 0.5) XOR (erosion > 0.5), interior = erosion > 0.5.

    Args:
        sils: [m, 1, h, w] float32 silhouettes in [0, 1].
        k: structuring element size; default 3.

    Returns:
        (edge, interior), each [m, 1, h, w] bool.
    """
    dilated = dilate(sils, k) > 0.5
    eroded = erode(sils, k) > 0.5
    return dilated ^ eroded, eroded


class GaitAlign(nn.Module):
    """Crop and resample each frame around its silhouette, restoring the person's aspect ratio.

    Box (per frame, upstream's arithmetic): rows whose mask sum >= eps span [h_top, h_bot); the
    horizontal centre is the number of columns whose cumulative mass is below half the total; the
    map is zero-padded by W/2 left and right; the box is `height * w / h` wide plus, when the
    person is narrower than the output (H * ratio < W), `p2 = (W - H * ratio) / 2 / (ratio * H / w)`
    on each side, clamped to the padded map. RoIAlign (aligned=False, adaptive sampling) then
    resamples it to H x W. All tensor ops: it traces with the boxes data-dependent.

    The box is exact only while it fits the padded map: a person spanning the full 128 rows with
    ratio below ~0.51 (88/172) needs a box wider than 172 px, which clamps to [0, 172] and then no
    longer depends on the ratio (upstream behaves the same; this is its arithmetic, kept as is).

    Args:
        H: output height; default 64.
        W: output width; default 44.
        eps: least mask sum of a row that counts as occupied; default 1.
    """

    def __init__(self, H: int = 64, W: int = 44, eps: float = 1.0) -> None:
        super().__init__()
        self.H, self.W, self.eps = H, W, eps
        self.pad = int(W / 2)
        self.roi_align = RoIAlign((H, W), spatial_scale=1.0, sampling_ratio=-1, aligned=False)

    def boxes(self, binary_mask: torch.Tensor, w_h_ratio: torch.Tensor) -> torch.Tensor:
        """Crop boxes in the padded map: mask [m, 1, h, w] float32, ratios [m] or [n, s] float32
        -> [m, 4] float32 (x1, y1, x2, y2)."""
        _, _, h, w = binary_mask.shape
        w_h_ratio = w_h_ratio.reshape(-1, 1)  # [m, 1]
        occupied = (binary_mask.sum(-1) >= self.eps).float().cumsum(-1)  # [m, 1, h]
        h_top = (occupied == 0).float().sum(-1)  # [m, 1] rows before the first occupied one
        h_bot = (occupied != occupied.max(-1, keepdim=True)[0]).float().sum(-1) + 1.0  # [m, 1]
        w_sum = binary_mask.sum(-2)  # [m, 1, w]
        w_half = w_sum.sum(-1, keepdim=True) / 2.0  # [m, 1, 1]
        w_center = (w_sum.cumsum(-1) < w_half).float().sum(-1)  # [m, 1]
        p1 = ((self.W - self.H * w_h_ratio) / 2.0).clamp(min=0)  # [m, 1] output px per side
        p2 = p1 / (w_h_ratio * self.H / w)  # [m, 1] the same in input px
        width = (h_bot - h_top) * w / h  # [m, 1]
        w_center = w_center + self.pad
        w_left = (w_center - width / 2 - p2).clamp(min=0.0, max=w + 2 * self.pad)
        w_right = (w_center + width / 2 + p2).clamp(min=0.0, max=w + 2 * self.pad)
        return torch.cat([w_left, h_top, w_right, h_bot], dim=-1)  # [m, 4]

    def forward(self, feature_map: torch.Tensor, binary_mask: torch.Tensor, w_h_ratio: torch.Tensor) -> torch.Tensor:
        """feature_map [m, 1, h, w] float32, binary_mask [m, 1, h, w] float32, w_h_ratio [m] (or [n, s])
        float32 -> aligned crops [m, 1, H, W] float32."""
        boxes = self.boxes(binary_mask, w_h_ratio)
        m, c, h, _ = feature_map.shape
        # ZeroPad2d as a concat: torch 2.13 exports F.pad with an unfolded chain computing its pads.
        zeros = feature_map.new_zeros(m, c, h, self.pad)
        padded = torch.cat([zeros, feature_map, zeros], dim=-1)  # [m, c, h, w + 2 * pad]
        index = torch.arange(feature_map.size(0), device=feature_map.device)
        return self.roi_align(padded, boxes, index)


class GaitEdge(GaitGL):
    """GaitEdge: U-Net segmentation + edge/interior synthesis + GaitAlign + GaitGL.

    State dict: GaitGL's keys, then `Backbone.*` (the U-Net), as upstream.

    Args:
        channels: GaitGL widths; default [32, 64, 128].
        class_num: classes of the training-only Head1; default 74 (CASIA-B*).
        dataset_name: picks the GaitGL layout; default "CASIA-B*" (small layout).
        kernel_size: morphology window; default 3.
    """

    def __init__(self, channels: Sequence[int] = (32, 64, 128), class_num: int = 74,
                 dataset_name: str = "CASIA-B*", kernel_size: int = 3) -> None:
        super().__init__(channels, class_num, dataset_name)
        if int(kernel_size) < 1:
            raise ValueError(f"GaitEdge: kernel_size {kernel_size} must be >= 1 (upstream uses 3)")
        self.Backbone = UNet(in_channels=3, freeze_half=True)
        self.gait_align = GaitAlign()
        self.kernel_size = int(kernel_size)

    def forward(self, ratios: torch.Tensor, rgbs: torch.Tensor, sils: torch.Tensor) -> torch.Tensor:
        """ratios [n, s] float32 (person box w/h), rgbs [n, s, 3, 128, 128] float32 (normalised),
        sils [n, s, 128, 128] float32 in [0, 1] -> embeddings [n, 128, 64] float32."""
        n, s, c, h, w = rgbs.shape
        rgbs = rgbs.reshape(n * s, c, h, w)
        sils = sils.reshape(n * s, 1, h, w)
        logits = torch.sigmoid(self.Backbone(rgbs))  # [n*s, 1, h, w]
        edge, interior = edge_and_interior(sils, self.kernel_size)
        synthesis = edge * logits + interior * sils  # [n*s, 1, h, w]
        crops = self.gait_align(synthesis, sils, ratios)  # [n*s, 1, 64, 44]
        # Static sizes: the tracer cannot see through the RoiAlign node's output shape.
        crops = crops.reshape(n, s, self.gait_align.H, self.gait_align.W)
        return super().forward(crops)  # [n, 128, 64]


def person_clips(rng: np.random.Generator, n: int, s: int, size: int = IMG) -> tuple[np.ndarray, np.ndarray]:
    """Seeded walking-person silhouettes as CASIA-B* stores them, with matching box ratios.

    Each frame draws a stick-figure person (head disc, torso, arms and legs as capsules, limbs
    swinging with a gait phase) in units of body height, takes its tight box with a small random
    margin (a detector's), and resizes that box to size x size, so the person fills the frame,
    stretched sideways, at a size and offset that vary per frame. The ratio is that box's width /
    height. (The stretch is what GaitAlign's arithmetic undoes: its box `height + 2 * p2` is exactly
    the aspect-restoring one for such crops.)

    Returns:
        sils [n, s, size, size] float32 in {0, 1}, ratios [n, s] float32.
    """
    m = n * s
    phase = (rng.uniform(0, 2 * np.pi, (n, 1)) + np.arange(s)[None, :] * 2 * np.pi / 25).reshape(m)
    stride = np.repeat(rng.uniform(0.34, 0.46, n), s)  # feet apart at full stride, x height
    swing = np.sin(phase)  # +1: right foot forward (walking towards +x)
    feet = (-stride / 2 * swing, stride / 2 * swing)
    one = np.ones(m)
    # Capsules (x0, y0, x1, y1, radius) in body-height units, x centred on the body axis.
    segs = [
        (0 * one, 0.065 * one, 0 * one, 0.065 * one, 0.065 * one),  # head
        (0 * one, 0.16 * one, 0 * one, 0.52 * one, 0.09 * one),  # torso
        (-0.02 * one, 0.19 * one, 0.3 * stride * swing, 0.45 * one, 0.035 * one),  # arms, opposite to legs
        (0.02 * one, 0.19 * one, -0.3 * stride * swing, 0.45 * one, 0.035 * one),
        (-0.03 * one, 0.52 * one, feet[0], 0.95 * one, 0.045 * one),  # legs
        (0.03 * one, 0.52 * one, feet[1], 0.95 * one, 0.045 * one),
        (feet[0], 0.975 * one, feet[0] + 0.1, 0.975 * one, 0.025 * one),  # feet, toes forward
        (feet[1], 0.975 * one, feet[1] + 0.1, 0.975 * one, 0.025 * one),
    ]
    x_lo = np.min([np.minimum(a, c) - r for a, _, c, _, r in segs], axis=0)
    x_hi = np.max([np.maximum(a, c) + r for a, _, c, _, r in segs], axis=0)
    margin = rng.uniform(0.0, 0.06, (4, m))  # left, top, right, bottom, x height
    left, right = x_lo - margin[0], x_hi + margin[2]
    top, bottom = -margin[1], 1.0 + margin[3]
    ratios = (right - left) / (bottom - top)
    centres = (np.arange(size) + 0.5) / size
    ys = top[:, None, None] + centres[None, :, None] * (bottom - top)[:, None, None]  # [m, size, 1]
    xs = left[:, None, None] + centres[None, None, :] * (right - left)[:, None, None]  # [m, 1, size]
    mask = np.zeros((m, size, size), bool)
    for x0, y0, x1, y1, r in segs:
        x0, y0, x1, y1, r = (v[:, None, None] for v in (x0, y0, x1, y1, r))
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / np.maximum(dx * dx + dy * dy, 1e-12), 0, 1)
        mask |= (xs - x0 - t * dx) ** 2 + (ys - y0 - t * dy) ** 2 <= r * r
    return mask.reshape(n, s, size, size).astype(np.float32), ratios.reshape(n, s).astype(np.float32)


def sample_inputs(rng: np.random.Generator, specs: Sequence[TensorSpec]) -> dict[str, np.ndarray]:
    """Seeded realistic GaitEdge inputs: person silhouettes, their box ratios, normalised RGB frames
    (noise, with a per-sequence clothing colour on the person)."""
    n, s, h, w = next(t for t in specs if t.name == "sils").shape
    sils, ratios = person_clips(rng, n, s, h)
    pixels = rng.uniform(0, 255, (n, s, 3, h, w))
    colour = rng.uniform(0, 255, (n, 1, 3, 1, 1))
    pixels = np.where(sils[:, :, None] > 0, 0.6 * colour + 0.4 * pixels, pixels)
    mean, std = np.array(IMAGENET_MEAN).reshape(3, 1, 1), np.array(IMAGENET_STD).reshape(3, 1, 1)
    rgbs = (pixels - 255 * mean) / (255 * std)  # BaseRgbTransform
    return {"ratios": ratios, "rgbs": rgbs.astype(np.float32), "sils": sils}


RATIOS = InputTemplate("ratios", ("batch", "frames"), "float32",
                       "[n, s] width / height of each frame's person box before it was resized to 128x128",
                       low=0.3, high=0.6)
RGBS = InputTemplate("rgbs", ("batch", "frames", 3, IMG, IMG), "float32",
                     "[n, s, 3, 128, 128] RGB person crops, (pixel - 255*mean) / (255*std) with ImageNet "
                     "mean/std (BaseRgbTransform)", low=-2.0, high=2.5)
SILS = InputTemplate("sils", ("batch", "frames", IMG, IMG), "float32",
                     "[n, s, 128, 128] binary silhouettes of the same crops, /255 (BaseSilTransform)")


@register_model(ModelSpec(
    name="gaitedge", family="gait", upstream_keys="gaitedge.json",
    inputs=(RATIOS, RGBS, SILS), outputs=(common.EMBEDDINGS,),
    upstream=f"{common.OPENGAIT} opengait/modeling/models/gaitedge.py",
    paper="GaitEdge, ECCV 2022, arXiv:2203.03972", licence=common.OPENGAIT_LICENCE,
    default_frames=common.DEFAULT_FRAMES, min_frames=1,
    preprocess=SilhouettePreprocess(
        IMG, cutting=0, divisor=255.0, sampler="all_ordered", frames_limit=512, kind="gaitedge",
        extra={"ratios": "person box width / height, untransformed",
               "rgbs": {"color": "RGB", "layout": "NCHW", "scale": 1.0 / 255, "mean": list(IMAGENET_MEAN),
                        "std": list(IMAGENET_STD)},
               "sils": {"divisor": 255.0, "cutting": 0}}).to_json(),
    postprocess=common.POSTPROCESS, sample_fn=sample_inputs,
    default_config={"channels": [32, 64, 128], "class_num": 74, "dataset_name": "CASIA-B*", "kernel_size": 3}))
def gaitedge(**config) -> GaitEdge:
    return GaitEdge(**config)
