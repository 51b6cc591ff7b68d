"""Gallery robustness matrix (issue 11): each bad case exits with its code and one `error:` line.

Results files are written with `runtime.results` directly (no engine needed); every case runs the
CLI in a subprocess as a user would.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import run_cli
from deploykit.runtime import results as results_io
from deploykit.runtime.match import Gallery


def results(path, n=4, dim=16, seed=0, model="rga", sha="ab" * 32, output="feat", ids=None, nan=False,
            family="reid", prefix="crops"):
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, dim))
    if nan:
        emb[1, 3] = np.nan
    ids = ids or [f"{i % 2 + 1:04d}" for i in range(n)]
    rows = [{"input": f"{prefix}/{pid}_c{i % 3 + 1}s1_{seed:03d}{i:03d}_01.jpg", output: emb[i].tolist()}
            for i, pid in enumerate(ids)]
    data = {"model": model, "family": family, "engine_sha256": sha, "metric": "cosine", "embedding_output": output,
            "results": rows}
    if str(path).endswith(".json"):
        path.write_text(json.dumps(data))  # JSON by hand: NaN allowed, as a buggy writer would
        return path
    return results_io.write(path, data)


def one_line_error(proc, code, *fragments):
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


@pytest.fixture
def gal(tmp_path):
    g = tmp_path / "g.npz"
    proc = run_cli("gallery", "add", str(g), str(results(tmp_path / "a.npz")))
    assert proc.returncode == 0, proc.stderr
    return g


def test_two_concurrent_adds_keep_both(tmp_path):
    g = tmp_path / "g.npz"
    files = [results(tmp_path / f"r{i}.npz", n=200, seed=i) for i in range(2)]
    cmd = [sys.executable, "-m", "deploykit.cli", "gallery", "add", str(g)]
    procs = [subprocess.Popen(cmd + [str(f)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for f in files]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    loaded = Gallery.load(g)
    assert len(loaded) == 400 and len(set(loaded.paths.tolist())) == 400


def test_nan_row_in_results_is_refused(tmp_path):
    one_line_error(run_cli("gallery", "add", str(tmp_path / "g.npz"), str(results(tmp_path / "n.json", nan=True))),
                   2, "NaN")
    assert not (tmp_path / "g.npz").exists()


def test_nan_row_in_a_gallery_file_is_refused(tmp_path, gal):
    with np.load(gal) as z:
        data = {k: z[k] for k in z.files}
    data["emb"][0, 0] = np.nan
    np.savez(gal, **data)
    one_line_error(run_cli("gallery", "search", str(gal), str(results(tmp_path / "q.npz"))), 2, "NaN", "rebuild")


def test_int_ids_and_string_ids_are_not_merged(tmp_path):
    g = Gallery("cosine", source={"model": "rga", "output": "feat"})
    g.add(np.ones((2, 16)), ids=[1, 2], cams=["1", "2"])
    g.save(tmp_path / "g.npz")
    one_line_error(run_cli("gallery", "add", str(tmp_path / "g.npz"), str(results(tmp_path / "a.npz"))), 2,
                   "ints but strs")


def test_other_metric_on_an_existing_gallery_is_refused(tmp_path, gal):
    one_line_error(run_cli("gallery", "add", str(gal), str(results(tmp_path / "b.npz", seed=1)), "--metric",
                           "euclidean"), 2, "uses metric 'cosine'")
    assert len(Gallery.load(gal)) == 4


def test_search_with_another_metric_is_refused(tmp_path, gal):
    one_line_error(run_cli("gallery", "search", str(gal), str(tmp_path / "a.npz"), "--metric", "euc"), 2,
                   "uses metric 'cosine'")


def test_adding_the_same_results_twice_is_deduplicated_with_a_warning(tmp_path, gal):
    proc = run_cli("gallery", "add", str(gal), str(tmp_path / "a.npz"))
    assert proc.returncode == 0 and "warning: skipped 4 of 4" in proc.stderr
    assert len(Gallery.load(gal)) == 4


def test_evaluate_says_how_many_queries_counted_and_why_others_were_skipped(tmp_path, gal):
    q = results(tmp_path / "q.npz", n=3, seed=5, ids=["0001", "0002", "0009"])  # 0009 is not in the gallery
    proc = run_cli("gallery", "evaluate", str(gal), str(q))
    assert proc.returncode == 0, proc.stderr
    assert "queries: 2 of 3 counted, 1 skipped (1 no true match left in the gallery)" in proc.stderr
    r = json.loads(proc.stdout)
    assert r["num_queries"] == 3 and r["num_valid_queries"] == 2


def test_evaluate_json_to_stdout_and_file(tmp_path, gal):
    proc = run_cli("gallery", "evaluate", str(gal), str(tmp_path / "a.npz"), "--json", str(tmp_path / "r.json"))
    assert proc.returncode == 0 and json.loads((tmp_path / "r.json").read_text())["num_queries"] == 4
    assert not (tmp_path / "-").exists()


def test_random_bytes_gallery_is_one_line_without_pickle_advice(tmp_path):
    (tmp_path / "g.npz").write_bytes(np.random.default_rng(0).bytes(4096))
    msg = one_line_error(run_cli("gallery", "search", str(tmp_path / "g.npz"), str(results(tmp_path / "a.npz"))),
                         2, "not a deploykit gallery")
    assert "pickle" not in msg


def test_an_npz_that_is_not_a_gallery(tmp_path):
    np.savez(tmp_path / "g.npz", x=np.zeros(3))
    one_line_error(run_cli("gallery", "search", str(tmp_path / "g.npz"), str(results(tmp_path / "a.npz"))), 2,
                   "no gallery metadata")


def test_a_gallery_from_a_newer_deploykit(tmp_path, gal):
    with np.load(gal) as z:
        data = {k: z[k] for k in z.files}
    meta = json.loads(str(data["meta"]))
    data["meta"] = np.array(json.dumps({**meta, "version": 99}))
    np.savez(gal, **data)
    one_line_error(run_cli("gallery", "search", str(gal), str(tmp_path / "a.npz")), 2, "upgrade deploykit")


def test_empty_results_are_refused(tmp_path, gal):
    (tmp_path / "e.json").write_text(json.dumps({"model": "rga", "family": "reid", "results": []}))
    one_line_error(run_cli("gallery", "evaluate", str(gal), str(tmp_path / "e.json")), 2, "no results")


def test_mismatched_output_is_refused(tmp_path, gal):
    other = results(tmp_path / "p.npz", output="feat_pre_bn")
    one_line_error(run_cli("gallery", "evaluate", str(gal), str(other), "--output", "feat_pre_bn"), 2,
                   "'feat' embeddings", "feat_pre_bn")


def test_another_model_is_refused(tmp_path, gal):
    one_line_error(run_cli("gallery", "add", str(gal), str(results(tmp_path / "m.npz", seed=2, model="pgfa"))), 2,
                   "model 'rga'")


def test_another_engine_of_the_same_model_warns(tmp_path, gal):
    proc = run_cli("gallery", "search", str(gal), str(results(tmp_path / "s.npz", sha="cd" * 32)))
    assert proc.returncode == 0 and "warning: the embeddings come from another engine" in proc.stderr


def test_embedding_size_mismatch(tmp_path, gal):
    one_line_error(run_cli("gallery", "search", str(gal), str(results(tmp_path / "d.npz", dim=8))), 2,
                   "do not match the gallery")


def test_missing_results_file(tmp_path, gal):
    one_line_error(run_cli("gallery", "add", str(gal), str(tmp_path / "nope.npz")), 2, "does not exist")


def test_results_that_are_not_json(tmp_path, gal):
    (tmp_path / "b.json").write_text("{not json")
    one_line_error(run_cli("gallery", "add", str(gal), str(tmp_path / "b.json")), 2, "cannot read")


def test_pose_results_hold_no_embeddings(tmp_path, gal):
    (tmp_path / "k.json").write_text(json.dumps({"model": "hrnet", "family": "pose",
                                                 "results": [{"input": "a.jpg", "people": []}]}))
    one_line_error(run_cli("gallery", "add", str(gal), str(tmp_path / "k.json")), 2, "hold no embeddings")


def test_id_regex_without_an_id_group(tmp_path, gal):
    one_line_error(run_cli("gallery", "evaluate", str(gal), str(tmp_path / "a.npz"), "--id-regex", r"(\d+)"), 2,
                   "no group named 'id'")


def test_id_regex_that_does_not_match(tmp_path, gal):
    one_line_error(run_cli("gallery", "evaluate", str(gal), str(tmp_path / "a.npz"), "--id-regex",
                           r"zzz(?P<id>\d+)"), 2, "cannot read an identity")


def test_k_zero(tmp_path, gal):
    one_line_error(run_cli("gallery", "search", str(gal), str(tmp_path / "a.npz"), "-k", "0"), 2, "k must be >= 1")


def test_search_on_a_missing_gallery(tmp_path):
    one_line_error(run_cli("gallery", "search", str(tmp_path / "none.npz"), str(results(tmp_path / "a.npz"))), 2,
                   "does not exist")
