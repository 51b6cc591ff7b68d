"""RoIAlign (Mask R-CNN) with torchvision's semantics, in plain tensor code, exported as ONNX `RoiAlign`.

There is no torchvision on our machines, so this is written here. Semantics (torchvision's C++/CUDA
kernel, `avg` pooling):

- a box `(x1, y1, x2, y2)` is scaled by `spatial_scale`; with `aligned=True` 0.5 is subtracted
  (pixel centres), with `aligned=False` (GaitAlign's setting) the box size is clamped to >= 1;
- each of the `ph x pw` output bins averages a `gh x gw` grid of bilinear samples, with
  `gh = sampling_ratio` if > 0, else adaptive `ceil(roi_h / ph)` (and the same for `w`);
- a sample outside `[-1, H] x [-1, W]` contributes 0 but still counts in the average; inside, y/x
  below 0 snap to 0 and a sample at or beyond the last row/column uses that row/column alone.

How the tensor code works: a bilinear sample's weights are a product of a row weight and a column
weight, and so is the in-range test, so the whole bin average is separable:
`out[k, c] = A_y[k] @ F[b_k, c] @ A_x[k]^T / (gh * gw)`, where `A_y[k, i, r]` sums the row weights
on row `r` of the samples of bin `i`. `A_y` is built without any data-dependent loop: for a fixed
`sampling_ratio` every sample is enumerated (the grid is static); in adaptive mode only samples
near row `r` can weigh on it and, because `ceil` makes the sample spacing > 0.5 px whenever a bin
has 2+ samples, at most 4 of them lie within 1 px of `r`: six candidates around the fractional
sample index of `r` (clamped into the bin) cover them with a margin for rounding. Memory is
`O(k * (ph*H + pw*W) * 6)` whatever the box sizes. Only the summation order differs from
torchvision's loop (~1e-7 relative).

ONNX export: under `torch.onnx.export` (the TorchScript exporter, `dynamo=False`) the call goes
through an autograd.Function whose `symbolic` emits one ONNX `RoiAlign` node taking the boxes and
batch indices as graph values. A RoIAlign written with Python loops or `.item()` over the sample
grid would trace into constants and cut the box computation (and GaitAlign's `ratios` input) out
of the graph. The tensor code here has no data-dependent shapes or control flow, so it would also
trace correctly (about 240 plain ops for GaitAlign's sizes; ORT matched it exactly in a check),
which is a fallback for targets without RoiAlign; the single standard node is the default.
Attributes: `mode="avg"`, `output_height/width`, `spatial_scale`, `sampling_ratio` (torchvision's
`-1` = adaptive becomes ONNX `0`), and from opset 16 `coordinate_transformation_mode`
`"output_half_pixel"` (aligned=False) or `"half_pixel"` (aligned=True). Opsets 10-15 have no such
attribute and behave as output_half_pixel, so aligned=True needs opset 16.

ONNX Runtime (CPU, 1.31) versus torchvision, measured against a float32 loop transcription of
torchvision's kernel on adversarial boxes (tests/models/test_gaitedge.py: boxes partly or wholly
outside the map, tiny, negative, large, on integer coordinates, just over a multiple of the output
size): ORT's `avg` kernel is the same Caffe2/torchvision code (same `max(size, 1)` clamp under
output_half_pixel, same `ceil(size / pooled)` grid, same zero for samples outside
`[-1, H] x [-1, W]` that still count, same edge snapping) and matched the loop bit for bit in
every case but one: with `half_pixel` (aligned=True), adaptive grid and a box of size <= -pooled,
the grid is negative and ORT fails with "Integer overflow" where torchvision returns 0. The
export therefore feeds RoiAlign `(x1, y1, max(x2, x1), max(y2, y1))` in that mode: a size of
exactly 0 gives grid 0 and output 0 in both, and no positive size changes, so the two agree
everywhere. Not offered: ORT's `max` mode takes the max of the four weighted corners, which is
neither torchvision's nor the spec's. TensorRT imports RoiAlign through its `ROIAlign_TRT`
plugin (`trt_onnx_ops.psv`: FP32/FP16 on 8.5-11.1).
"""

from __future__ import annotations

import warnings
from typing import Sequence, Union

import torch
import torch.nn as nn

# Adaptive mode: sample-index offsets tried around the fractional index of each row (see above).
_CANDIDATES = torch.arange(-2, 4)


def _axis_weights(start: torch.Tensor, size: torch.Tensor, pooled: int, length: int,
                  sampling_ratio: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Interpolation matrix of one axis, summed over the samples of each bin.

    Args:
        start: [k] float32, scaled box start on this axis.
        size: [k] float32, box size on this axis (already clamped when aligned=False).
        pooled: output bins on this axis.
        length: feature-map size on this axis.
        sampling_ratio: samples per bin on this axis if > 0, else adaptive.

    Returns:
        weights [k, pooled, length] float32 and the grid size [k] float32 (samples per bin;
        <= 0 only for degenerate aligned=True boxes, whose output is 0).
    """
    k = start.shape[0]
    bin_size = size / pooled  # [k]
    if sampling_ratio > 0:
        grid = torch.full_like(size, float(sampling_ratio))
    else:
        grid = torch.ceil(size / pooled)  # torchvision: ceil(roi_size / pooled)
    safe_grid = grid.clamp(min=1.0)
    bins = torch.arange(pooled, dtype=start.dtype, device=start.device)
    rows = torch.arange(length, dtype=start.dtype, device=start.device)
    bin_start = start[:, None] + bins[None, :] * bin_size[:, None]  # [k, pooled]
    if sampling_ratio > 0:
        idx = torch.arange(sampling_ratio, dtype=start.dtype, device=start.device)
        idx = idx.view(1, 1, 1, -1).expand(k, pooled, 1, -1)  # [k, pooled, 1, D]: all samples
    else:
        step = bin_size / safe_grid  # [k] sample spacing
        step = torch.where(step > 0, step, torch.ones_like(step))  # degenerate boxes: any finite value
        frac = (rows[None, None, :] - bin_start[:, :, None]) / step[:, None, None] - 0.5  # [k, pooled, L]
        centre = torch.minimum(torch.floor(frac).clamp(min=0.0), safe_grid[:, None, None] - 1)
        idx = centre[..., None] + _CANDIDATES.to(start)  # [k, pooled, L, D]
    valid = (idx >= 0) & (idx < grid[:, None, None, None])
    # torchvision: y = roi_start + ph * bin_size + (iy + .5f) * bin_size / roi_bin_grid
    pos = bin_start[:, :, None, None] + (idx + 0.5) * bin_size[:, None, None, None] / safe_grid[:, None, None, None]
    valid = valid & (pos >= -1.0) & (pos <= float(length))  # outside [-1, L]: contributes 0
    pos = pos.clamp(min=0.0)
    low = torch.floor(pos)
    last = low >= length - 1
    low = torch.where(last, torch.full_like(low, length - 1), low)
    pos = torch.where(last, low, pos)
    high = torch.where(last, low, low + 1)
    frac_hi = pos - low
    frac_lo = 1.0 - frac_hi
    r = rows.view(1, 1, -1, 1)
    w = frac_lo * (r == low) + frac_hi * (r == high)  # [k, pooled, L, D]
    return (w * valid).sum(-1), grid


def roi_align_reference(features: torch.Tensor, boxes: torch.Tensor, batch_indices: torch.Tensor,
                        output_size: tuple[int, int], spatial_scale: float = 1.0, sampling_ratio: int = -1,
                        aligned: bool = False) -> torch.Tensor:
    """RoIAlign in plain tensor code (eager PyTorch; see the module docstring for the semantics).

    Args:
        features: [n, c, h, w] float32.
        boxes: [k, 4] float32, (x1, y1, x2, y2) in input pixels before `spatial_scale`.
        batch_indices: [k] int64, the image of each box.
        output_size: (ph, pw).
        spatial_scale: box scale; default 1.0.
        sampling_ratio: samples per bin and axis; <= 0 (default -1) is adaptive.
        aligned: shift boxes by -0.5 px (pixel centres); default False.

    Returns:
        [k, c, ph, pw] float32.
    """
    ph, pw = output_size
    _, _, h, w = features.shape
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (boxes[:, i] * spatial_scale - offset for i in range(4))
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:  # torchvision: force malformed boxes to 1 x 1
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    wy, gy = _axis_weights(y1, roi_h, ph, h, sampling_ratio)  # [k, ph, h]
    wx, gx = _axis_weights(x1, roi_w, pw, w, sampling_ratio)  # [k, pw, w]
    count = (gy * gx).clamp(min=1.0)  # torchvision: max(grid_h * grid_w, 1)
    feats = features.index_select(0, batch_indices.long())  # [k, c, h, w]
    out = wy[:, None] @ feats @ wx[:, None].transpose(-1, -2)  # [k, c, ph, pw]
    return out / count[:, None, None, None]


def _clamp_negative_sizes(g, boxes):
    """ONNX graph: (x1, y1, max(x2, x1), max(y2, y1)), so no box has a negative size.

    torchvision (and this module) output 0 for a box whose adaptive grid is <= 0; ONNX Runtime does
    too for a grid of 0 but fails ("Integer overflow") on a negative one (aligned=True, adaptive,
    size <= -pooled). A size of exactly 0 gives grid 0 and output 0 in both, so this is exact.
    """
    def const(v):
        return g.op("Constant", value_t=torch.tensor(v, dtype=torch.int64))

    start = g.op("Slice", boxes, const([0]), const([2]), const([1]))  # [k, 2] (x1, y1)
    end = g.op("Slice", boxes, const([2]), const([4]), const([1]))  # [k, 2] (x2, y2)
    return g.op("Concat", start, g.op("Max", end, start), axis_i=1)


class _RoiAlignOnnx(torch.autograd.Function):
    """Runs the tensor code eagerly; exports as one ONNX RoiAlign node (TorchScript exporter)."""

    @staticmethod
    def forward(ctx, features, boxes, batch_indices, output_size, spatial_scale, sampling_ratio, aligned):
        with warnings.catch_warnings():  # traced shape ints; `symbolic` replaces this code in the graph
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            return roi_align_reference(features, boxes, batch_indices, output_size, spatial_scale,
                                       sampling_ratio, aligned)

    @staticmethod
    def symbolic(g, features, boxes, batch_indices, output_size, spatial_scale, sampling_ratio, aligned):
        opset = int(getattr(g, "opset", 0) or 0)
        if opset and opset < 10:
            raise RuntimeError(f"RoIAlign exports as ONNX RoiAlign, which needs opset >= 10 (got {opset}); "
                               f"use --opset 16 or later")
        attrs = {}
        if opset >= 16:
            attrs["coordinate_transformation_mode_s"] = "half_pixel" if aligned else "output_half_pixel"
        elif aligned:
            raise RuntimeError(f"RoIAlign(aligned=True) needs ONNX opset >= 16 for coordinate_transformation_mode "
                               f"(got {opset}); use --opset 16 or later")
        if aligned and sampling_ratio <= 0:
            boxes = _clamp_negative_sizes(g, boxes)
        idx = g.op("Cast", batch_indices, to_i=7)  # RoiAlign wants int64 batch indices
        return g.op("RoiAlign", features, boxes, idx, mode_s="avg", output_height_i=int(output_size[0]),
                    output_width_i=int(output_size[1]), sampling_ratio_i=max(int(sampling_ratio), 0),
                    spatial_scale_f=float(spatial_scale), **attrs)


def roi_align(features: torch.Tensor, boxes: torch.Tensor, batch_indices: torch.Tensor,
              output_size: tuple[int, int], spatial_scale: float = 1.0, sampling_ratio: int = -1,
              aligned: bool = False) -> torch.Tensor:
    """RoIAlign: tensor code in eager mode, an ONNX `RoiAlign` node under `torch.onnx.export`.

    Args and returns as `roi_align_reference`: features [n, c, h, w] float32, boxes [k, 4] float32
    (x1, y1, x2, y2), batch_indices [k] int64 -> [k, c, ph, pw] float32.
    """
    if torch.onnx.is_in_onnx_export():
        return _RoiAlignOnnx.apply(features, boxes, batch_indices, tuple(output_size), float(spatial_scale),
                                   int(sampling_ratio), bool(aligned))
    return roi_align_reference(features, boxes, batch_indices, output_size, spatial_scale, sampling_ratio, aligned)


class RoIAlign(nn.Module):
    """torchvision.ops.RoIAlign's constructor, with boxes and batch indices given apart (as ONNX does).

    Args:
        output_size: (ph, pw), or one int for a square output.
        spatial_scale: box scale; default 1.0.
        sampling_ratio: samples per bin and axis; <= 0 (default -1) is adaptive, ceil(roi / out).
        aligned: pixel-centre boxes (-0.5 px); default False.
    """

    def __init__(self, output_size: Union[int, Sequence[int]], spatial_scale: float = 1.0,
                 sampling_ratio: int = -1, aligned: bool = False) -> None:
        super().__init__()
        size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"RoIAlign: output_size {output_size!r} must be one or two positive ints")
        self.output_size = (int(size[0]), int(size[1]))
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = int(sampling_ratio)
        self.aligned = bool(aligned)

    def forward(self, features: torch.Tensor, boxes: torch.Tensor, batch_indices: torch.Tensor) -> torch.Tensor:
        """features [n, c, h, w] float32, boxes [k, 4] float32 (x1, y1, x2, y2), batch_indices [k] int64
        -> [k, c, ph, pw] float32."""
        return roi_align(features, boxes, batch_indices, self.output_size, self.spatial_scale,
                         self.sampling_ratio, self.aligned)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
                f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}")
