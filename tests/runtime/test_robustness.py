"""Hypothesis: odd shapes, empty inputs, NaN/Inf and constant images give a clear BadInputError or a sane
result from every pre/post-processing entry point, never an exception from deep inside numpy/OpenCV."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from deploykit.errors import BadInputError
from deploykit.runtime import gait, match, pose, reid
from deploykit.runtime.imageops import pil_resize

# DEPLOYKIT_FUZZ_EXAMPLES=1000 for a deeper run; the suite keeps 40 per test so it stays fast
SETTINGS = settings(max_examples=int(os.environ.get("DEPLOYKIT_FUZZ_EXAMPLES", "40")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
DTYPES = st.sampled_from([np.float32, np.float64, np.uint8, np.int64, np.bool_])


def any_array(min_dims=0, max_dims=5, max_side=6, dtypes=DTYPES, special=True):
    """Arrays of any small shape (including empty) and dtype; floats may hold NaN, Inf or one constant."""
    def elements(dt):
        if np.dtype(dt).kind == "f":
            return st.floats(-1e6, 1e6, width=32) | (st.sampled_from([np.nan, np.inf, -np.inf]) if special
                                                     else st.floats(-1e6, 1e6, width=32))
        return None
    return dtypes.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=min_dims, max_dims=max_dims,
                                                                     min_side=0, max_side=max_side),
                                                elements=elements(dt)))


def constant_or_any(**kw):
    """Either a constant array (a flat image/heatmap) or an arbitrary one (rank in [min_dims, max_dims])."""
    const = st.tuples(hnp.array_shapes(min_dims=kw.get("min_dims", 0), max_dims=kw.get("max_dims", 5), min_side=0,
                                       max_side=kw.get("max_side", 6)),
                      st.sampled_from([0.0, 1.0, -1.0, 255.0, np.nan])).map(lambda t: np.full(t[0], t[1]))
    return const | any_array(**kw)


def clear_or_sane(fn, *args, **kwargs):
    """Run fn; a BadInputError must carry a message; anything else propagates and fails the test."""
    try:
        return fn(*args, **kwargs)
    except BadInputError as exc:
        assert str(exc).strip()
        return None


def finite(*arrays):
    for a in arrays:
        assert np.isfinite(np.asarray(a, np.float64)).all()


# -- pose ----------------------------------------------------------------------------------------
@SETTINGS
@given(hm=constant_or_any(min_dims=0, max_dims=5) | constant_or_any(min_dims=4, max_dims=4),
       method=st.sampled_from(["quarter", "dark", "alphapose_v0", "argmax"]))
def test_decode_heatmaps(hm, method):
    out = clear_or_sane(pose.decode_heatmaps, hm, method)
    if out is not None:
        coords, scores = out
        assert coords.shape == hm.shape[:2] + (2,) and scores.shape == hm.shape[:2]
        finite(coords, scores)
        if coords.size:
            assert (coords[..., 0] >= -1.5).all() and (coords[..., 0] <= hm.shape[3] + 0.5).all()
            assert (coords[..., 1] >= -1.5).all() and (coords[..., 1] <= hm.shape[2] + 0.5).all()


@SETTINGS
@given(hm=constant_or_any(min_dims=4, max_dims=4), hm2=constant_or_any(min_dims=4, max_dims=4),
       shift=st.booleans())
def test_flip(hm, hm2, shift):
    pairs = [(0, 1)] if hm.ndim == 4 and hm.shape[1] >= 2 else []
    out = clear_or_sane(pose.flip_average, hm, hm2, pairs, shift)
    if out is not None:
        assert out.shape == hm.shape
        finite(out)


@SETTINGS
@given(logits=constant_or_any(max_dims=4) | constant_or_any(min_dims=3, max_dims=3),
       coords=constant_or_any(max_dims=4) | constant_or_any(min_dims=3, max_dims=3), flipped=st.booleans())
def test_decode_prtr(logits, coords, flipped):
    out = clear_or_sane(pose.decode_prtr, logits, coords, (384, 288), flipped=flipped, flip_pairs=[])
    if out is not None:
        xy, s = out
        finite(xy, s)
        assert ((s >= 0) & (s <= 1)).all()


@SETTINGS
@given(boxes=any_array(max_dims=3), box_scores=any_array(max_dims=2), kps=any_array(max_dims=4),
       kps_scores=any_array(max_dims=3), variant=st.sampled_from(["master", "pytorch"]))
def test_pose_nms_arbitrary(boxes, box_scores, kps, kps_scores, variant):
    res = clear_or_sane(pose.pose_nms, boxes, box_scores, kps, kps_scores, variant=variant)
    if res is not None:
        finite(res.keypoints, res.keypoint_scores, res.proposal_scores)


@SETTINGS
@given(n=st.integers(0, 6), k=st.integers(0, 20), seed=st.integers(0, 2**31 - 1),
       const=st.sampled_from([None, 0.0, 0.3, 1.0]))
def test_pose_nms_well_formed(n, k, seed, const):
    rng = np.random.default_rng(seed)
    kps = rng.uniform(0, 50, (n, k, 2)) if const is None else np.full((n, k, 2), 10.0)
    scores = rng.uniform(0, 1, (n, k)) if const is None else np.full((n, k), const)
    x1y1 = rng.uniform(0, 50, (n, 2))
    boxes = np.concatenate([x1y1, x1y1 + rng.uniform(0, 30, (n, 2))], axis=1)
    res = clear_or_sane(pose.pose_nms, boxes, rng.uniform(0, 1, n), kps, scores)
    assert res is not None
    finite(res.keypoints, res.keypoint_scores, res.proposal_scores)
    assert res.keypoints.shape[1:] == (k, 2) and len(res) <= n
    merged = np.concatenate(res.merged) if res.merged else np.zeros(0, int)
    assert len(set(merged.tolist())) == merged.size  # each detection is merged into one pose at most


@SETTINGS
@given(image=(constant_or_any(min_dims=0, max_dims=4, max_side=12)
              | constant_or_any(min_dims=3, max_dims=3, max_side=12)),
       boxes=any_array(max_dims=3, max_side=5) | any_array(min_dims=2, max_dims=2, max_side=5),
       preset=st.sampled_from(["hrnet", "alphapose", "alphapose_v0", "prtr_resnet"]))
def test_crop_persons(image, boxes, preset):
    cfg = pose.TopDownConfig.preset(preset, input_size=(16, 12))
    crops = clear_or_sane(pose.crop_persons, image, boxes, cfg)
    if crops is not None:
        assert crops.inputs.shape[1:] == (3, 16, 12) and crops.inputs.dtype == np.float32
        if np.isfinite(np.asarray(image, np.float64)).all():
            finite(crops.inputs)
        back = clear_or_sane(crops.to_image, np.zeros((len(crops), 2, 2)))
        if back is not None:
            finite(back)


@SETTINGS
@given(h=st.integers(1, 40), w=st.integers(1, 40), value=st.sampled_from([0, 128, 255]),
       box=st.tuples(st.floats(-50, 80), st.floats(-50, 80), st.floats(0, 100), st.floats(0, 100)))
def test_crop_constant_images_give_constant_crops(h, w, value, box):
    image = np.full((h, w, 3), value, np.uint8)
    x1, y1, bw, bh = box
    cfg = pose.TopDownConfig.preset("hrnet", input_size=(16, 12))
    crops = clear_or_sane(pose.crop_persons, image, [[x1, y1, x1 + bw, y1 + bh]], cfg)
    if crops is not None:
        finite(crops.inputs)
        inside = crops.inputs[0] * np.array(cfg.std)[:, None, None] + np.array(cfg.mean)[:, None, None]
        # the value, the zero border, or a bilinear blend of the two at the image edge
        assert (inside > -1e-5).all() and (inside < value / 255 + 1e-5).all()


# -- gait ----------------------------------------------------------------------------------------
@SETTINGS
@given(frames=(constant_or_any(min_dims=0, max_dims=4, max_side=40)
               | constant_or_any(min_dims=3, max_dims=3, max_side=40)),
       size=st.sampled_from([64, 16, 2]))
def test_pretreat_silhouettes(frames, size):
    pt = clear_or_sane(gait.pretreat_silhouettes, frames, size)
    if pt is not None:
        assert pt.frames.shape[1:] == (size, size) and pt.frames.dtype == np.uint8
        assert len(pt.kept) + len(pt.dropped) == len(frames)


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), t=st.integers(1, 4), h=st.integers(1, 120), w=st.integers(1, 120))
def test_pretreat_random_masks(seed, t, h, w):
    rng = np.random.default_rng(seed)
    masks = (rng.uniform(size=(t, h, w)) > rng.uniform()).astype(np.uint8) * 255
    pt = gait.pretreat_silhouettes(masks)
    assert pt.frames.shape[1:] == (64, 64)
    if len(pt):
        clip = gait.cut_and_scale(pt.frames)
        assert clip.shape[1:] == (64, 44) and 0 <= clip.min() and clip.max() <= 1


@SETTINGS
@given(frames=constant_or_any(max_dims=4), cutting=st.one_of(st.none(), st.integers(-3, 40)))
def test_cut_and_scale(frames, cutting):
    out = clear_or_sane(gait.cut_and_scale, frames, cutting)
    if out is not None:
        assert out.dtype == np.float32


@SETTINGS
@given(n=st.integers(-3, 50), length=st.integers(-3, 50), policy=st.sampled_from(["first", "uniform", "x"]))
def test_fit_frames(n, length, policy):
    idx = clear_or_sane(gait.fit_frames, n, length, policy)
    if idx is not None:
        assert idx.shape == (length,) and (idx >= 0).all() and (idx < n).all()
        assert (np.diff(idx[: min(n, length)]) > 0).all()  # ordered


# -- re-ID ---------------------------------------------------------------------------------------
@SETTINGS
@given(image=constant_or_any(max_dims=4, max_side=20) | constant_or_any(min_dims=3, max_dims=3, max_side=20),
       preset=st.sampled_from(["rga", "pgfa"]))
def test_preprocess_reid(image, preset):
    out = clear_or_sane(reid.preprocess_reid, image, reid.ReidConfig.preset(preset))
    if out is not None:
        assert out.shape[1:] == ((3, 256, 128) if preset == "rga" else (3, 384, 128))
        finite(out)


@SETTINGS
@given(image=any_array(min_dims=2, max_dims=3, max_side=30, dtypes=st.just(np.uint8)),
       oh=st.integers(-1, 40), ow=st.integers(-1, 40), rs=st.sampled_from(["bilinear", "bicubic", "lanczos"]))
def test_pil_resize(image, oh, ow, rs):
    out = clear_or_sane(pil_resize, image, (oh, ow), rs)
    if out is not None:
        assert out.shape[:2] == (oh, ow) and out.dtype == np.uint8
        if image.size and (image == image.flat[0]).all():
            assert (out == image.flat[0]).all()  # a constant image stays constant


@SETTINGS
@given(people=st.one_of(st.none(), constant_or_any(max_dims=4)), h=st.integers(-2, 60), w=st.integers(-2, 60),
       parts=st.integers(-1, 7))
def test_pgfa_inputs(people, h, w, parts):
    hm = clear_or_sane(reid.pgfa_heatmaps, people, (h, w))
    if hm is not None:
        assert hm.shape == (18, 24, 8)
        finite(hm)
        assert (hm >= 0).all() and (hm <= 1).all()
    vis = clear_or_sane(reid.pgfa_part_visibility, people, h, parts)
    if vis is not None:
        assert vis.shape == (parts,) and set(np.unique(vis)) <= {0.0, 1.0}


# -- matching ------------------------------------------------------------------------------------
@SETTINGS
@given(q=constant_or_any(max_dims=4) | constant_or_any(min_dims=3, max_dims=3),
       g=constant_or_any(max_dims=4) | constant_or_any(min_dims=3, max_dims=3),
       metric=st.sampled_from(["euclidean_per_part_mean", "cosine_per_part_mean", "cosine", "euclidean", "bogus"]))
def test_distance(q, g, metric):
    d = clear_or_sane(match.distance, q, g, metric)
    if d is not None:
        assert d.shape == (q.shape[0], g.shape[0])
        finite(d)


@SETTINGS
@given(dist=constant_or_any(max_dims=3) | constant_or_any(min_dims=2, max_dims=2),
       qid=any_array(max_dims=2) | any_array(min_dims=1, max_dims=1),
       gid=any_array(max_dims=2) | any_array(min_dims=1, max_dims=1))
def test_evaluate(dist, qid, gid):
    res = clear_or_sane(match.evaluate, dist, qid, gid)
    if res is not None:
        # every counted query has a true match within the gallery: the full-length CMC ends at 1
        assert res["cmc"][-1] == pytest.approx(1.0) and (np.diff(res["cmc"]) >= 0).all()
        assert 0 < res["mAP"] <= res["cmc"][-1] + 1e-12
        assert res["num_valid_queries"] + sum(res["skipped"].values()) == res["num_queries"] == dist.shape[0]


@SETTINGS
@given(emb=constant_or_any(max_dims=4), ids=any_array(max_dims=2), q=constant_or_any(max_dims=4),
       k=st.integers(-1, 5))
def test_gallery(emb, ids, q, k):
    g = match.Gallery("euclidean_per_part_mean")
    if clear_or_sane(g.add, emb, ids) is None and len(g) == 0:
        return
    res = clear_or_sane(g.search, q, k)
    if res is not None:
        finite(res.distances)
        assert res.indices.shape == (q.shape[0], min(k, len(g)))


def test_every_runtime_error_is_a_bad_input_error():
    """The catch-all check of this file relies on BadInputError being the runtime's only error type."""
    assert issubclass(BadInputError, ValueError)
    with pytest.raises(BadInputError):
        pose.decode_heatmaps(np.zeros((1, 1, 0, 3)))
