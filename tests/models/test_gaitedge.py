"""GaitEdge's hand-written pieces: RoIAlign (torch and ONNX), GaitAlign's ratio path, morphology.

Tolerances:
- RoIAlign tensor code vs the float32 loop transcription of torchvision's kernel below, and ONNX
  Runtime's RoiAlign vs the same loop: max abs <= 2e-6 on outputs of magnitude ~1-4. Only the
  summation order differs (measured <= 3.6e-7 for the tensor code, 0 for ONNX Runtime); a wrong
  clamp, grid size or out-of-range rule moves outputs by 1e-2 or more.
- The exported GaitEdge against PyTorch: the model-zoo gates, cosine >= 0.99999 and max abs <=
  1e-4 x max|reference|, for each of two ratio settings; and the change that the ratio edit makes
  must be the same in both (max abs of the difference of the changes <= 1e-2 x the change).
- Morphology against a naive window max/min: exact (both pick the same float).
"""

import io

import numpy as np
import pytest
import torch

from deploykit import models
from deploykit.export import OnnxFromModel
from deploykit.models.factory import reference_model
from deploykit.models.gait.gaitedge import GaitAlign, dilate, edge_and_interior, erode, person_clips
from deploykit.models.layers.roi_align import roi_align, roi_align_reference
from deploykit.runtime import Engine
from deploykit.verify import compare

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

F32 = np.float32
ROI_ATOL = 2e-6


# ----------------------------------------------------------------------------------------------
# A slow, literal transcription of torchvision's roi_align_forward_kernel_impl (float32 scalars).
def _bilinear(img, h, w, y, x):
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return F32(0)
    y, x = max(y, F32(0)), max(x, F32(0))
    y_low, x_low = int(y), int(x)
    if y_low >= h - 1:
        y_high = y_low = h - 1
        y = F32(y_low)
    else:
        y_high = y_low + 1
    if x_low >= w - 1:
        x_high = x_low = w - 1
        x = F32(x_low)
    else:
        x_high = x_low + 1
    ly, lx = F32(y - F32(y_low)), F32(x - F32(x_low))
    hy, hx = F32(1) - ly, F32(1) - lx
    return F32(hy * hx * img[y_low, x_low] + hy * lx * img[y_low, x_high]
               + ly * hx * img[y_high, x_low] + ly * lx * img[y_high, x_high])


def roi_align_loop(feats, boxes, batch_idx, out, scale=1.0, sampling_ratio=-1, aligned=False):
    _, c, h, w = feats.shape
    ph_n, pw_n = out
    res = np.zeros((len(boxes), c, ph_n, pw_n), F32)
    offset, scale = F32(0.5 if aligned else 0.0), F32(scale)
    for k, (box, b) in enumerate(zip(boxes.astype(F32), batch_idx)):
        x1, y1, x2, y2 = (F32(v * scale - offset) for v in box)
        roi_w, roi_h = F32(x2 - x1), F32(y2 - y1)
        if not aligned:
            roi_w, roi_h = max(roi_w, F32(1)), max(roi_h, F32(1))
        bin_h, bin_w = F32(roi_h / F32(ph_n)), F32(roi_w / F32(pw_n))
        grid_h = sampling_ratio if sampling_ratio > 0 else int(np.ceil(F32(roi_h / F32(ph_n))))
        grid_w = sampling_ratio if sampling_ratio > 0 else int(np.ceil(F32(roi_w / F32(pw_n))))
        count = F32(max(grid_h * grid_w, 1))
        for ch in range(c):
            img = feats[b, ch]
            for ph in range(ph_n):
                for pw in range(pw_n):
                    acc = F32(0)
                    for iy in range(grid_h):
                        y = F32(F32(y1 + F32(ph) * bin_h) + F32(F32(F32(iy + 0.5) * bin_h) / F32(grid_h)))
                        for ix in range(grid_w):
                            x = F32(F32(x1 + F32(pw) * bin_w) + F32(F32(F32(ix + 0.5) * bin_w) / F32(grid_w)))
                            acc = F32(acc + _bilinear(img, h, w, y, x))
                    res[k, ch, ph, pw] = acc / count
    return res


H, W = 13, 11


def _adversarial_boxes(rng):
    """Boxes partly or wholly outside the map, tiny, negative, large (grids up to ~10), on integer
    coordinates, and sized just above a multiple of the output (sample spacing just over 0.5 px)."""
    boxes = []
    for kind in rng.integers(0, 4, 40):
        x1, y1 = rng.uniform(-8, W + 4), rng.uniform(-8, H + 4)
        bw, bh = {0: rng.uniform(-2, 1.2, 2), 1: rng.uniform(0, 40, 2)}.get(int(kind), rng.uniform(0, 15, 2))
        boxes.append([x1, y1, x1 + bw, y1 + bh])
    boxes += [[0, 0, W, H], [-1, -1, W + 1, H + 1], [2, 3, 2, 3], [-5, -5, -2, -2], [W, H, W + 3, H + 3],
              [0.3, 0.2, 0.3 + 4 * 1.001, 0.2 + 5 * 2.001], [-0.7, 1.1, -0.7 + 7 * 1.0001, 1.1 + 3 * 1.0001]]
    return np.array(boxes, F32)


CASES = [((5, 4), -1, False, 1.0), ((5, 4), -1, True, 1.0), ((3, 7), -1, False, 0.5), ((3, 7), -1, True, 0.5),
         ((5, 4), 2, False, 1.0), ((3, 7), 2, True, 1.0), ((1, 1), -1, False, 1.0), ((1, 1), -1, True, 1.0)]


@pytest.fixture(scope="module")
def roi_data():
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((2, 2, H, W)).astype(F32)
    boxes = _adversarial_boxes(rng)
    idx = rng.integers(0, 2, len(boxes)).astype(np.int64)
    refs = {case: roi_align_loop(feats, boxes, idx, *case) for case in CASES}
    return feats, boxes, idx, refs


@pytest.mark.parametrize("case", CASES, ids=str)
def test_roi_align_matches_loop_reference(roi_data, case):
    feats, boxes, idx, refs = roi_data
    got = roi_align_reference(torch.from_numpy(feats), torch.from_numpy(boxes), torch.from_numpy(idx), *case)
    np.testing.assert_allclose(got.numpy(), refs[case], rtol=0, atol=ROI_ATOL)


class _RoiModule(torch.nn.Module):
    def __init__(self, case):
        super().__init__()
        self.case = case

    def forward(self, feats, boxes, idx):
        return roi_align(feats, boxes, idx, *self.case)


@pytest.mark.parametrize("opset", [16, 17])
def test_onnx_roi_align_matches_loop_reference(roi_data, opset):
    """ONNX Runtime's RoiAlign, fed data-dependent boxes, agrees with torchvision's semantics."""
    feats, boxes, idx, refs = roi_data
    args = (torch.from_numpy(feats), torch.from_numpy(boxes), torch.from_numpy(idx))
    for case in CASES:
        buf = io.BytesIO()
        torch.onnx.export(_RoiModule(case), args, buf, dynamo=False, opset_version=opset,
                          input_names=["feats", "boxes", "idx"], output_names=["out"])
        graph = onnx.load_from_string(buf.getvalue()).graph
        assert "RoiAlign" in {n.op_type for n in graph.node}
        assert [i.name for i in graph.input] == ["feats", "boxes", "idx"]
        sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"feats": feats, "boxes": boxes, "idx": idx})[0]
        np.testing.assert_allclose(got, refs[case], rtol=0, atol=ROI_ATOL, err_msg=str(case))


def test_roi_align_is_differentiable():
    feats = torch.rand(1, 1, 8, 8, requires_grad=True)
    out = roi_align(feats, torch.tensor([[1.0, 1.5, 6.0, 7.0]]), torch.tensor([0]), (3, 3))
    out.sum().backward()
    assert feats.grad is not None and feats.grad.abs().sum() > 0


# ----------------------------------------------------------------------------------------------
def _gates(ref, got, what):
    for gate in (compare.cosine(min=0.99999), compare.max_abs(rel=1e-4)):
        res = gate(ref, got)
        assert res, f"{what}: {res}"


def test_gaitalign_onnx_follows_ratios():
    """GaitAlign alone: crops in ONNX Runtime follow the ratios exactly as in PyTorch."""
    rng = np.random.default_rng(1)
    sils, _ = person_clips(rng, 1, 6)
    mask = torch.from_numpy(sils.reshape(6, 1, 128, 128))
    fmap = mask * torch.rand(6, 1, 128, 128, generator=torch.Generator().manual_seed(0))
    ratios = torch.full((6,), 0.5)
    buf = io.BytesIO()
    torch.onnx.export(GaitAlign(), (fmap, mask, ratios), buf, dynamo=False, opset_version=17,
                      input_names=["fmap", "mask", "ratios"], output_names=["crops"])
    graph = onnx.load_from_string(buf.getvalue()).graph
    assert "ratios" in [i.name for i in graph.input] and "RoiAlign" in {n.op_type for n in graph.node}
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    outs = []
    for r in (0.5, 0.62):
        feeds = {"fmap": fmap.numpy(), "mask": mask.numpy(), "ratios": np.full(6, r, F32)}
        ref = GaitAlign()(fmap, mask, torch.from_numpy(feeds["ratios"])).numpy()
        got = sess.run(None, feeds)[0]
        _gates(ref, got, f"GaitAlign crops, ratio {r}")
        outs.append(got)
    assert np.abs(outs[0] - outs[1]).max() > 0.1, "the ratio change did not move the crops"


def test_gaitedge_onnx_keeps_ratios_and_follows_them(tmp_path):
    result = OnnxFromModel("gaitedge", frames=3, seed=3)(tmp_path)
    graph = onnx.load(str(result.onnx_path)).graph
    assert [i.name for i in graph.input] == ["ratios", "rgbs", "sils"]
    assert "RoiAlign" in {n.op_type for n in graph.node}
    spec = models.spec("gaitedge")
    model, _ = reference_model("gaitedge", seed=3)
    refs, gots = [], []
    with Engine.load(result.onnx_path) as engine:
        feeds = spec.sample_inputs(engine.inputs, seed=100)
        # 0.5 and 0.62 keep the boxes inside the padded map (below ~0.5 at full height they clamp to
        # it on both sides and the ratio has no effect, as upstream).
        for r in (0.5, 0.62):
            feeds["ratios"] = np.full_like(feeds["ratios"], r)
            with torch.no_grad():
                refs.append(model(*[torch.from_numpy(feeds[s.name]) for s in engine.inputs]).numpy())
            gots.append(engine.infer(feeds)["embeddings"])
            _gates(refs[-1], gots[-1], f"gaitedge embeddings, ratio {r}")
    ref_change, got_change = refs[1] - refs[0], gots[1] - gots[0]
    parity_err = max(np.abs(r - g).max() for r, g in zip(refs, gots))
    assert np.abs(got_change).max() > 100 * parity_err, "ONNX output does not follow the ratios"
    assert np.abs(got_change - ref_change).max() <= 1e-2 * np.abs(ref_change).max()


# ----------------------------------------------------------------------------------------------
def _naive_window(x, k, op):
    """Window max/min over input[i - k//2 : i - k//2 + k] per axis, pixels outside ignored."""
    n, c, h, w = x.shape
    out = np.empty_like(x)
    lo = k // 2
    for i in range(h):
        for j in range(w):
            rows = slice(max(i - lo, 0), min(i - lo + k, h))
            cols = slice(max(j - lo, 0), min(j - lo + k, w))
            out[:, :, i, j] = op(x[:, :, rows, cols], axis=(-2, -1))
    return out


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_morphology_matches_naive_window(k):
    rng = np.random.default_rng(k)
    x = rng.random((2, 1, 17, 12)).astype(F32)
    binary = (x > 0.6).astype(F32)
    for data in (x, binary):
        t = torch.from_numpy(data)
        np.testing.assert_array_equal(dilate(t, k).numpy(), _naive_window(data, k, np.max))
        np.testing.assert_array_equal(erode(t, k).numpy(), _naive_window(data, k, np.min))
    edge, interior = edge_and_interior(torch.from_numpy(binary), k)
    dil, ero = _naive_window(binary, k, np.max) > 0.5, _naive_window(binary, k, np.min) > 0.5
    np.testing.assert_array_equal(edge.numpy(), dil ^ ero)
    np.testing.assert_array_equal(interior.numpy(), ero)


def test_sample_inputs_are_people_with_matching_ratios():
    spec = models.spec("gaitedge")
    feeds = spec.sample_inputs(spec.input_specs(2, 8), seed=5)
    sils, ratios = feeds["sils"], feeds["ratios"]
    assert sils.shape == (2, 8, 128, 128) and ratios.shape == (2, 8) and feeds["rgbs"].shape == (2, 8, 3, 128, 128)
    assert set(np.unique(sils)) == {0.0, 1.0}
    fill = sils.mean(axis=(-2, -1))
    assert (fill > 0.2).all() and (fill < 0.8).all()
    assert 0.2 < ratios.min() and ratios.max() < 0.75 and ratios.std() > 0.03  # walking: the box breathes
    assert not np.array_equal(sils[0, 0], sils[0, 1])


def test_tensor_roi_align_also_traces_with_live_boxes():
    """The tensor code alone (no RoiAlign node) has no data-dependent shapes: traced, the boxes stay
    graph inputs and ONNX Runtime follows new boxes (the fallback for targets without RoiAlign)."""
    class Plain(torch.nn.Module):
        def forward(self, feats, boxes, idx):
            return roi_align_reference(feats, boxes, idx, (16, 11))

    rng = np.random.default_rng(2)
    feats = rng.random((2, 1, 32, 43)).astype(F32)
    boxes = np.array([[3, 2, 40, 30], [0, 0, 43, 32], [10.5, 4.2, 25.1, 27.9]], F32)
    idx = np.array([0, 1, 1], np.int64)
    buf = io.BytesIO()
    torch.onnx.export(Plain(), tuple(map(torch.from_numpy, (feats, boxes, idx))), buf, dynamo=False,
                      opset_version=17, input_names=["feats", "boxes", "idx"], output_names=["out"])
    assert "RoiAlign" not in {n.op_type for n in onnx.load_from_string(buf.getvalue()).graph.node}
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    for shift in (0.0, 1.7):
        moved = boxes + F32(shift)
        got = sess.run(None, {"feats": feats, "boxes": moved, "idx": idx})[0]
        np.testing.assert_allclose(got, roi_align_loop(feats, moved, idx, (16, 11)), rtol=0, atol=ROI_ATOL)
