"""Matching: each method's distance, CMC/mAP against slow references, CASIA-B protocol, galleries."""

import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploykit.errors import BadInputError
from deploykit.runtime import match
from deploykit.runtime.match import FaissGallery, Gallery, distance, evaluate


# -- distances against per-element loops ----------------------------------------------------------
def test_opengait_euclidean_and_cosine_per_part():
    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(3, 8, 5)), rng.normal(size=(4, 8, 5))
    euc = np.array([[np.mean([np.linalg.norm(q[i, :, p] - g[j, :, p]) for p in range(5)]) for j in range(4)]
                    for i in range(3)])
    cos = np.array([[1 - np.mean([q[i, :, p] @ g[j, :, p] / np.linalg.norm(q[i, :, p]) / np.linalg.norm(g[j, :, p])
                                  for p in range(5)]) for j in range(4)] for i in range(3)])
    np.testing.assert_allclose(distance(q, g), euc, atol=1e-10)
    np.testing.assert_allclose(distance(q, g, "euc"), euc, atol=1e-10)
    np.testing.assert_allclose(distance(q, g, "cos"), cos, atol=1e-12)
    flat = np.linalg.norm(q.reshape(3, 1, -1) - g.reshape(1, 4, -1), axis=2)
    assert not np.allclose(distance(q, g), flat)  # per part, not the flattened distance
    np.testing.assert_allclose(distance(q, g, "euclidean"), flat, atol=1e-10)


def test_rga_cosine():
    rng = np.random.default_rng(1)
    q, g = rng.normal(size=(3, 16)), rng.normal(size=(5, 16))
    ref = 1 - (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (g / np.linalg.norm(g, axis=1, keepdims=True)).T
    np.testing.assert_allclose(distance(q, g, "cosine"), ref, atol=1e-12)
    z = distance(np.zeros((1, 16)), g, "cosine")  # zero vector: F.normalize's eps, distance 1
    np.testing.assert_allclose(z, 1.0)


def test_pgfa_similarity_matches_the_upstream_formula():
    rng = np.random.default_rng(2)
    P = 3

    def feats(n):
        return {"global": rng.normal(size=(n, 6)), "parts": rng.normal(size=(n, P, 10)),
                "visibility": rng.integers(0, 2, (n, P)).astype(float)}

    q, g = feats(2), feats(5)
    sim = match.pgfa_similarity(q, g)
    for i in range(2):  # shared_region_evaluate.evaluate, one query at a time
        q2 = q["global"][i] / np.linalg.norm(q["global"][i])
        g2 = g["global"] / np.linalg.norm(g["global"], axis=1, keepdims=True)
        s2 = (g2 @ q2 + 1) / 2
        overlap = g["visibility"] * q["visibility"][i]
        qn = q["parts"][i] / np.linalg.norm(q["parts"][i], axis=1, keepdims=True)
        gn = g["parts"] / np.linalg.norm(g["parts"], axis=2, keepdims=True)
        s = ((gn * qn).sum(2) + 1) / 2 * overlap
        np.testing.assert_allclose(sim[i], (s.sum(1) + s2) / (overlap.sum(1) + 1), atol=1e-12)
    with pytest.raises(BadInputError, match="exactly"):
        distance(q, {"global": g["global"]}, "pgfa")


# -- evaluate against an obviously correct reference ---------------------------------------------
def slow_evaluate(dist, qid, gid, qc, gc, ap="standard", junk=()):
    nq, ng = len(dist), len(dist[0])
    cmc = [0.0] * ng
    aps = []
    for i in range(nq):
        ranked = sorted(range(ng), key=lambda j: (dist[i][j], j))
        same_id_same_cam = [qc is not None and gid[j] == qid[i] and gc[j] == qc[i] for j in range(ng)]
        ranked = [j for j in ranked if not same_id_same_cam[j] and gid[j] not in junk]
        hits = [gid[j] == qid[i] for j in ranked]
        if not any(hits):
            continue
        first = hits.index(True)
        for r in range(first, ng):
            cmc[r] += 1
        found, total = 0, 0.0
        for rank, hit in enumerate(hits, start=1):
            if hit:
                found += 1
                prec = found / rank
                if ap == "standard":
                    total += prec
                else:
                    old = (found - 1) / (rank - 1) if rank > 1 else 1.0
                    total += (old + prec) / 2
        aps.append(total / sum(hits))
    if not aps:
        return None, None, 0
    return [c / len(aps) for c in cmc], sum(aps) / len(aps), len(aps)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nq=st.integers(1, 8), ng=st.integers(1, 25), nid=st.integers(1, 5), ncam=st.integers(1, 3),
       levels=st.integers(1, 6), seed=st.integers(0, 2**31 - 1), ap=st.sampled_from(["standard", "trapezoid"]),
       use_cams=st.booleans(), junk=st.booleans())
def test_evaluate_equals_the_slow_reference(nq, ng, nid, ncam, levels, seed, ap, use_cams, junk):
    rng = np.random.default_rng(seed)
    dist = rng.integers(0, levels, (nq, ng)).astype(float)  # few levels -> many ties
    qid, gid = rng.integers(0, nid, nq), rng.integers(0, nid, ng)
    qc, gc = (rng.integers(0, ncam, nq), rng.integers(0, ncam, ng)) if use_cams else (None, None)
    junk_ids = [0] if junk else ()
    ref = slow_evaluate(dist, qid, gid, qc, gc, ap, junk_ids)
    if ref[2] == 0:
        with pytest.raises(BadInputError, match="no query has a true match"):
            evaluate(dist, qid, gid, qc, gc, ap=ap, junk_ids=junk_ids)
        return
    got = evaluate(dist, qid, gid, qc, gc, ap=ap, junk_ids=junk_ids)
    np.testing.assert_allclose(got["cmc"], ref[0], atol=1e-12)
    assert got["mAP"] == pytest.approx(ref[1], abs=1e-12)
    assert got["num_valid_queries"] == ref[2]


def test_evaluate_simple_case_and_errors():
    dist = np.array([[0.1, 0.2, 0.3, 0.4]])
    res = evaluate(dist, [1], [2, 1, 1, 3], [0], [1, 1, 0, 1])  # gallery 2 (id 1, cam 0) is excluded
    np.testing.assert_allclose(res["cmc"], [0, 1, 1, 1])
    assert res["mAP"] == pytest.approx(0.5)
    res5 = evaluate(dist, [1], [2, 1, 1, 3], max_rank=2)
    np.testing.assert_allclose(res5["cmc"], [0, 1])
    assert res5["mAP"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    with pytest.raises(BadInputError, match="both"):
        evaluate(dist, [1], [2, 1, 1, 3], [0], None)
    with pytest.raises(BadInputError, match=r"expected \[4\]"):
        evaluate(dist, [1], [2, 1, 1])
    with pytest.raises(BadInputError, match="NaN"):
        evaluate(np.full((1, 4), np.nan), [1], [2, 1, 1, 3])


# -- CASIA-B protocol ----------------------------------------------------------------------------
def casia_like(rng, ids=6, views=("000", "090", "180")):
    emb, lab, typ, view = [], [], [], []
    centres = rng.normal(size=(ids, 16, 4)) * 3
    for i in range(ids):
        for t in ["nm-01", "nm-02", "nm-03", "nm-04", "nm-05", "nm-06", "bg-01", "bg-02", "cl-01", "cl-02"]:
            for v in views:
                noise = 0.5 if t.startswith("nm") else (2.0 if t.startswith("bg") else 4.0)
                emb.append(centres[i] + rng.normal(size=(16, 4)) * noise)
                lab.append(f"{i:03d}")
                typ.append(t)
                view.append(v)
    return np.array(emb), np.array(lab), np.array(typ), np.array(view)


def test_casia_b_single_view_protocol_matches_upstream_loops():
    rng = np.random.default_rng(3)
    emb, lab, typ, view = casia_like(rng)
    res = match.evaluate_casia_b(emb, lab, typ, view)
    views = sorted(set(view))
    for cond, probe in {"NM": ["nm-05", "nm-06"], "BG": ["bg-01", "bg-02"], "CL": ["cl-01", "cl-02"]}.items():
        acc = np.zeros((3, 3))
        for a, pv in enumerate(views):
            pm = np.isin(typ, probe) & (view == pv)
            for b, gv in enumerate(views):
                gm = np.isin(typ, ["nm-01", "nm-02", "nm-03", "nm-04"]) & (view == gv)
                d = distance(emb[pm], emb[gm])
                acc[a, b] = np.round(np.mean(lab[pm] == lab[gm][np.argmin(d, 1)]) * 100, 2)
        np.testing.assert_allclose(res[cond]["acc"], acc)
        per_view = (acc.sum(1) - np.diag(acc)) / 2  # identical-view cells excluded
        np.testing.assert_allclose(res[cond]["per_view"], per_view)
        assert res[cond]["mean"] == pytest.approx(per_view.mean())
    assert res["NM"]["mean"] >= res["CL"]["mean"]


def test_casia_b_cross_view_gallery():
    rng = np.random.default_rng(4)
    emb, lab, typ, view = casia_like(rng)
    res = match.evaluate_casia_b(emb, lab, typ, view, cross_view_gallery=True)
    assert set(res) == {"NM", "BG", "CL"} and res["NM"]["rank1"].shape == (3,)
    # transcription of OpenGait compute_ACC_mAP (rank 1): gallery nm-02/bg-02/cl-02, same-id same-view excluded
    gm = np.isin(typ, ["nm-02", "bg-02", "cl-02"])
    for cond, probe in {"NM": "nm-01", "BG": "bg-01", "CL": "cl-01"}.items():
        for a, pv in enumerate(sorted(set(view))):
            pm = (typ == probe) & (view == pv)
            d = distance(emb[pm], emb[gm])
            acc, aps = [], []
            for i, qi in enumerate(np.flatnonzero(pm)):
                keep = (view[gm] != view[qi]) | (lab[gm] != lab[qi])
                order = np.argsort(d[i][keep], kind="stable")
                hit = lab[gm][keep][order] == lab[qi]
                acc.append(hit[0])
                pos = np.flatnonzero(hit) + 1
                aps.append(np.mean(np.arange(1, len(pos) + 1) / pos))
            assert res[cond]["rank1"][a] == pytest.approx(np.round(np.mean(acc) * 100, 2))
            assert res[cond]["mAP"][a] == pytest.approx(np.round(np.mean(aps) * 100, 2))
        assert res[cond]["num_probes"] == 18


# -- galleries -----------------------------------------------------------------------------------
def brute_topk(d, k):
    order = np.lexsort((np.broadcast_to(np.arange(d.shape[1]), d.shape), d), axis=1)[:, :k]
    return order, np.take_along_axis(d, order, 1)


def test_gallery_search_is_the_exact_top_k_with_ties():
    rng = np.random.default_rng(5)
    g = Gallery("euclidean_per_part_mean")
    emb = rng.integers(0, 3, (300, 4, 2)).astype(np.float32)  # many identical rows -> ties
    g.add(emb[:120], ids=np.arange(120) % 7, cams=np.zeros(120, int))
    g.add(emb[120:], ids=np.arange(120, 300) % 7, cams=np.ones(180, int))
    g.CHUNK = 64  # exercise the chunked merge
    q = rng.integers(0, 3, (9, 4, 2)).astype(np.float32)
    res = g.search(q, k=25)
    idx, dist = brute_topk(distance(q, emb), 25)
    np.testing.assert_array_equal(res.indices, idx)
    np.testing.assert_allclose(res.distances, dist)
    np.testing.assert_array_equal(res.ids, (idx % 7))
    assert res.to_json()[0][0].keys() == {"index", "distance", "id", "cam"}
    assert g.search(q, k=1000).indices.shape == (9, 300)


def test_gallery_persists_atomically_and_round_trips(tmp_path):
    rng = np.random.default_rng(6)
    g = Gallery("cosine")
    g.add(rng.normal(size=(10, 8)), ids=[f"p{i % 3}" for i in range(10)])
    path = g.save(tmp_path / "g.npz")
    h = Gallery.load(path)
    assert h.metric == "cosine" and len(h) == 10 and h.cams is None
    np.testing.assert_array_equal(h.ids, g.ids)
    q = rng.normal(size=(2, 8))
    np.testing.assert_array_equal(h.search(q, 3).indices, g.search(q, 3).indices)
    assert [p.name for p in tmp_path.iterdir()] == ["g.npz"]  # no temp file left
    before = path.read_bytes()

    class Boom(Exception):
        pass

    def explode(*a, **k):
        raise Boom()

    orig = np.savez
    np.savez = explode
    try:
        with pytest.raises(Boom):
            g.save(path)
    finally:
        np.savez = orig
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["g.npz"]
    mixed = Gallery("cosine")
    mixed.add(rng.normal(size=(2, 8)), ids=[1, 2])
    with pytest.raises(BadInputError, match="ints but strs"):  # 1 and "1" are never merged
        mixed.add(rng.normal(size=(1, 8)), ids=["1"])
    with pytest.raises(BadInputError, match="mix ints and strings"):
        Gallery("cosine").add(rng.normal(size=(2, 8)), ids=[1, "1"])
    with pytest.raises(BadInputError, match="not a deploykit gallery"):
        (tmp_path / "bad.npz").write_bytes(b"nope")
        Gallery.load(tmp_path / "bad.npz")


def test_gallery_evaluate_and_pgfa_fields(tmp_path):
    rng = np.random.default_rng(7)
    n, P = 20, 3
    feats = {"global": rng.normal(size=(n, 6)), "parts": rng.normal(size=(n, P, 10)),
             "visibility": rng.integers(0, 2, (n, P)).astype(float)}
    g = Gallery("pgfa")
    g.add(feats, ids=np.arange(n) % 5, cams=np.arange(n) % 2)
    q = {k: v[:4] for k, v in feats.items()}
    res = g.evaluate(q, np.arange(4) % 5, query_cams=np.ones(4, int) * 2)
    assert res["cmc"][0] == 1.0  # each query is in the gallery (other camera)
    h = Gallery.load(g.save(tmp_path / "p.npz"))
    np.testing.assert_allclose(h.distances(q), g.distances(q))
    with pytest.raises(BadInputError, match="query_cams"):
        g.evaluate(q, np.arange(4))
    with pytest.raises(BadInputError, match="empty"):
        Gallery("pgfa").search(q)


# -- FAISS ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("metric, shape", [("cosine", (256,)), ("euclidean_per_part_mean", (32, 8)),
                                           ("cosine_per_part_mean", (32, 8))])
def test_faiss_gallery_returns_the_exact_top_k_on_100k_x_256(metric, shape):
    pytest.importorskip("faiss", reason="faiss-cpu is not installed (pip install 'deploykit[faiss]')")
    rng = np.random.default_rng(8)
    n, k = 100_000, 10
    centres = rng.normal(size=(2000, *shape)).astype(np.float32)
    emb = centres[rng.integers(0, 2000, n)] + 0.3 * rng.normal(size=(n, *shape)).astype(np.float32)
    queries = centres[:50] + 0.3 * rng.normal(size=(50, *shape)).astype(np.float32)
    t0 = time.perf_counter()
    fg = FaissGallery(metric)
    fg.add(emb, ids=np.arange(n))
    res = fg.search(queries, k=k)
    t_faiss = time.perf_counter() - t0
    exact = Gallery(metric)
    exact.add(emb, ids=np.arange(n))
    t0 = time.perf_counter()
    ref = exact.search(queries, k=k)
    t_exact = time.perf_counter() - t0
    print(f"{metric}: faiss build+search {t_faiss:.2f}s, exact numpy search {t_exact:.2f}s")
    np.testing.assert_array_equal(res.indices, ref.indices)
    np.testing.assert_allclose(res.distances, ref.distances, rtol=1e-9, atol=1e-9)


def test_faiss_gallery_persists_and_grows(tmp_path):
    pytest.importorskip("faiss", reason="faiss-cpu is not installed (pip install 'deploykit[faiss]')")
    rng = np.random.default_rng(9)
    emb = rng.normal(size=(5000, 16, 4)).astype(np.float32)
    for index in ("flat", "ivf"):
        fg = FaissGallery("euclidean_per_part_mean", index=index, nlist=16, nprobe=16)
        fg.add(emb[:3000], ids=np.arange(3000))
        q = emb[:5] + 0.01
        first = fg.search(q, 5)
        fg.add(emb[3000:], ids=np.arange(3000, 5000))  # grows after an index exists
        exact = Gallery("euclidean_per_part_mean")
        exact.add(emb, ids=np.arange(5000))
        np.testing.assert_array_equal(fg.search(q, 5).indices, exact.search(q, 5).indices)
        loaded = Gallery.load(fg.save(tmp_path / f"{index}.npz"))
        assert isinstance(loaded, FaissGallery) and loaded.index_type == index
        np.testing.assert_array_equal(loaded.search(q, 5).indices, exact.search(q, 5).indices)
        assert first.indices[:, 0].tolist() == list(range(5))


def test_pgfa_embeddings_from_engine_outputs():
    rng = np.random.default_rng(10)
    out = {"global_feat": rng.normal(size=(2, 256)).astype(np.float32),
           "part_feats": rng.normal(size=(2, 3, 2048)).astype(np.float32)}
    emb = match.pgfa_embeddings(out, [[1, 0, 1], [1, 1, 1]])
    assert emb["parts"].shape == (2, 3, 2048) and emb["visibility"].shape == (2, 3)
    g = Gallery("pgfa_visibility_weighted")  # the manifest's metric name
    g.add(emb, ids=[1, 2])
    assert g.metric == "pgfa" and g.search(emb, 1).ids[:, 0].tolist() == [1, 2]
    with pytest.raises(BadInputError, match="part_feats"):
        match.pgfa_embeddings({"global_feat": out["global_feat"]}, [[1, 1, 1]] * 2)
