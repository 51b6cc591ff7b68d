"""`deploykit infer` result files: compact .npz by default, JSON on request, self-describing."""

import json

import numpy as np
import pytest

from deploykit.errors import BadInputError
from deploykit.runtime import results as results_io
from deploykit.runtime.match import labels_from_paths


def _result(n=4, dim=256, rng=None, family="reid"):
    rng = rng or np.random.default_rng(0)
    return {"model": "rga", "family": family, "engine": "e.onnx", "engine_sha256": "ab" * 32, "metric": "cosine",
            "embedding_output": "feat",
            "results": [{"input": f"crops/{i:04d}_c1s1_000001_01.jpg", "feat": rng.normal(size=dim).tolist(),
                         "feat_pre_bn": rng.normal(size=dim).tolist()} for i in range(n)]}


def test_npz_for_1000_crops_stays_under_2mb_per_256d_output(tmp_path):
    rng = np.random.default_rng(1)
    res = _result(1000, 256, rng)
    del res["results"][0]["feat_pre_bn"]
    for r in res["results"]:
        r.pop("feat_pre_bn", None)
    p = results_io.write(tmp_path / "emb.npz", res)
    size = p.stat().st_size
    assert size < 2 * 1024 * 1024, size  # 1000 x 256 float32 = 1.02 MB of data
    j = results_io.write(tmp_path / "emb.json", res)
    assert j.stat().st_size > 2 * size  # what the JSON default used to cost
    back = results_io.read(p)
    emb, name = back.embeddings()
    assert name == "feat" and emb.shape == (1000, 256) and emb.dtype == np.float32
    np.testing.assert_array_equal(emb, np.asarray([r["feat"] for r in res["results"]], np.float32))
    assert back.meta["engine_sha256"] == "ab" * 32 and back.meta["metric"] == "cosine"
    assert back.inputs[0] == "crops/0000_c1s1_000001_01.jpg"


def test_json_and_npz_read_back_the_same(tmp_path):
    res = _result()
    a = results_io.read(results_io.write(tmp_path / "r.npz", res))
    b = results_io.read(results_io.write(tmp_path / "r.json", res))
    assert json.loads((tmp_path / "r.json").read_text())["engine_sha256"] == "ab" * 32
    for out in ("feat", "feat_pre_bn"):
        np.testing.assert_array_equal(a.embeddings(out)[0], b.embeddings(out)[0])
    assert a.inputs == b.inputs and a.meta == b.meta
    assert a.source("feat") == {"model": "rga", "engine_sha256": "ab" * 32, "output": "feat"}
    with pytest.raises(BadInputError, match="'nope' is not in the results"):
        a.embeddings("nope")


def test_unreadable_results_are_one_line(tmp_path):
    (tmp_path / "x.npz").write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(BadInputError, match="cannot read") as e:
        results_io.read(tmp_path / "x.npz")
    assert "pickle" not in str(e.value)
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(BadInputError, match="not `deploykit infer` results"):
        results_io.read(tmp_path / "other.npz")
    with pytest.raises(BadInputError, match="hold no embeddings"):
        results_io.from_dict({"family": "pose", "results": [{"input": "a.jpg", "people": []}]}).embeddings()


def test_default_labels_understand_opengait_and_market1501():
    lab = labels_from_paths(["data/CASIA-B/075/nm-05/090/", "data/CASIA-B/075/bg-01/180",
                             "bbt/0002_c1s1_000451_03.jpg", "bbt/-1_c3s2_000101_01.jpg", "bbt/0000_c6s1_000001_01.jpg",
                             "crops/p7_c2.jpg", "seqs/001_c1"])
    assert lab.ids == ["075", "075", "0002", "-1", "0000", "p7", "001"]
    assert lab.cams == ["090", "180", "1", "3", "6", "2", "1"]
    assert lab.types[:2] == ["nm-05", "bg-01"]
    assert lab.layouts == ["opengait"] * 2 + ["market1501"] * 3 + ["name"] * 2
    custom = labels_from_paths(["a/x-9.png"], r"x-(?P<id>\d+)")
    assert custom.ids == ["9"] and custom.cams == ["0"]
    with pytest.raises(BadInputError, match="no group named 'id'"):
        labels_from_paths(["a"], r"(\d+)")
    with pytest.raises(BadInputError, match="not a valid regex"):
        labels_from_paths(["a"], r"(?P<id>")


def test_pgfa_results_build_a_visibility_weighted_gallery(tmp_path):
    from conftest import run_cli
    from deploykit.runtime.match import Gallery, distance

    rng = np.random.default_rng(3)
    n, P = 4, 3
    vis = rng.integers(0, 2, (n, P)).astype(float)
    rows = [{"input": f"crops/{i + 1:04d}_c{i % 2 + 1}s1_000001_01.jpg", "global_feat": rng.normal(size=8).tolist(),
             "part_feats": rng.normal(size=(P, 10)).tolist(), "visibility": vis[i].tolist()} for i in range(n)]
    data = {"model": "pgfa", "family": "reid", "engine_sha256": "ef" * 32, "metric": "pgfa_visibility_weighted",
            "embedding_output": "global_feat+part_feats", "results": rows}
    p = results_io.write(tmp_path / "p.npz", data)
    emb, name = results_io.read(p).embeddings()
    assert name == "global_feat+part_feats" and set(emb) == {"global", "parts", "visibility"}
    np.testing.assert_array_equal(emb["visibility"], vis)
    proc = run_cli("gallery", "add", str(tmp_path / "g.npz"), str(p))
    assert proc.returncode == 0 and "(pgfa)" in proc.stdout, proc.stderr
    g = Gallery.load(tmp_path / "g.npz")
    assert g.metric == "pgfa" and g.source["output"] == "global_feat+part_feats"
    np.testing.assert_allclose(g.distances(emb), distance(emb, emb, "pgfa"), atol=1e-6)  # float32 storage
