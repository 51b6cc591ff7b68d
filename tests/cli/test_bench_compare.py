"""`deploykit bench ENGINE...` and `deploykit compare A B` run on engine files with torch blocked."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import BLOCK_TORCH

from deploykit import manifest as mf
from deploykit.export import OnnxFromModel
from deploykit.build.build_engine import BuildOptions, EngineFromOnnx


def _cli_without_torch(*args):
    code = BLOCK_TORCH + f"import sys; sys.argv = ['deploykit', *{list(args)!r}]\nfrom deploykit.cli import main\nmain()"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    out = tmp_path_factory.mktemp("bc")
    res = OnnxFromModel("gaitset", frames=4)(out)
    int8 = EngineFromOnnx(res.onnx_path, BuildOptions(int8=True, calib_samples=4, progress=False),
                          backend="onnxruntime")(out)
    return out, res.onnx_path, int8.engine_path


def test_bench_engine_files_without_torch(engines, tmp_path):
    out, fp32, int8 = engines
    proc = _cli_without_torch("bench", str(fp32), str(int8), "--iters", "3", "--rounds", "2", "--warmup", "1",
                              "--threads", "1", "--json", str(tmp_path / "b.json"))
    assert proc.returncode == 0, proc.stderr
    rep = json.loads((tmp_path / "b.json").read_text())
    assert rep["baseline"] == "gaitset.onnx" and set(rep["backends"]) == {"gaitset.onnx", "gaitset.int8.onnx"}
    for b in rep["backends"].values():
        assert b["samples"] == 6  # 2 rounds x 3 timed calls, warm-up not counted
        # measured throughput: items over the timed calls' wall time, which holds every timed call
        # (at least the 3 of 6 at or above the median), not 1/p50
        assert b["wall_s"] * 1000.0 >= 3 * b["p50_ms"]
        assert abs(b["items_per_s"] - 6 / b["wall_s"]) <= 1e-9 * b["items_per_s"]
    assert rep["backends"]["gaitset.onnx"]["speedup_vs_baseline"] == 1.0
    assert "| samples |" in proc.stdout and "p99 from fewer than 100 samples" in proc.stdout


def test_bench_duration_runs_until_the_time_is_spent(engines):
    out, fp32, _ = engines
    proc = _cli_without_torch("bench", str(fp32), "--duration", "1.0", "--rounds", "2", "--warmup", "1",
                              "--json", "-")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)["backends"]["gaitset.onnx"]
    assert rep["wall_s"] >= 1.0 and rep["samples"] >= 2


def test_bench_refuses_engines_of_other_shapes(engines, tmp_path):
    out, fp32, _ = engines
    other = OnnxFromModel("gaitset", frames=5)(tmp_path).onnx_path
    proc = _cli_without_torch("bench", str(fp32), str(other), "--iters", "1")
    assert proc.returncode == 2 and "same input shapes" in proc.stderr and "Traceback" not in proc.stderr


def test_compare_engine_against_engine_and_saved_outputs(engines, tmp_path):
    out, fp32, int8 = engines
    clips = (np.random.default_rng(3).random((3, 1, 4, 64, 44)) > 0.5).astype(np.float32)
    np.savez(tmp_path / "in.npz", sils=clips)
    # same engine twice: bit-identical, passes at zero tolerance
    proc = _cli_without_torch("compare", str(fp32), str(fp32), "--load-inputs", str(tmp_path / "in.npz"),
                              "--atol", "0", "--rtol", "0", "--save-outputs", str(tmp_path / "ref.npz"))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "on 3 sample(s)" in proc.stdout and "PASS" in proc.stdout
    saved = np.load(tmp_path / "ref.npz")
    assert saved["embeddings"].shape == (3, 1, 256, 62)
    # INT8 against the saved FP32 outputs: fails at a tight tolerance, passes at a loose per-output one
    proc = _cli_without_torch("compare", str(int8), str(tmp_path / "ref.npz"), "--load-inputs", str(tmp_path / "in.npz"),
                              "--atol", "1e-6", "--rtol", "0")
    assert proc.returncode == 1 and "FAIL embeddings" in proc.stdout and "centred" in proc.stdout
    big = float(np.abs(saved["embeddings"]).max())
    proc = _cli_without_torch("compare", str(int8), str(tmp_path / "ref.npz"), "--load-inputs", str(tmp_path / "in.npz"),
                              "--atol", f"embeddings:{big}", "--rtol", "0")
    assert proc.returncode == 0, proc.stdout


def test_compare_bad_inputs_file_is_one_line(engines, tmp_path):
    out, fp32, _ = engines
    np.savez(tmp_path / "bad.npz", images=np.zeros((1, 3, 8, 8), np.float32))
    proc = _cli_without_torch("compare", str(fp32), str(fp32), "--load-inputs", str(tmp_path / "bad.npz"))
    assert proc.returncode == 2 and "the engine's inputs are ['sils']" in proc.stderr
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    proc = _cli_without_torch("compare", str(fp32), str(tmp_path / "junk.npz"))
    assert proc.returncode == 2 and "not a NumPy .npz" in proc.stderr and "Traceback" not in proc.stderr


def test_bench_engines_with_one_basename_are_both_timed(engines, tmp_path):
    # the same file name in two folders (an `auto` build beside an explicit one) is two targets;
    # keyed by basename, the second replaced the first and one engine was reported
    out, fp32, _ = engines
    (tmp_path / "b").mkdir()
    copy = tmp_path / "b" / fp32.name
    copy.write_bytes(fp32.read_bytes())
    mf.manifest_path_for(copy).write_bytes(mf.manifest_path_for(fp32).read_bytes())
    proc = _cli_without_torch("bench", str(fp32), str(copy), "--iters", "2", "--rounds", "1", "--warmup", "0",
                              "--json", "-")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)["backends"]
    assert set(got) == {f"{fp32.parent.name}/{fp32.name}", f"b/{fp32.name}"}
    assert all(b["samples"] == 2 for b in got.values())


def test_bench_refuses_one_engine_twice(engines):
    out, fp32, _ = engines
    proc = _cli_without_torch("bench", str(fp32), str(fp32), "--iters", "1")
    assert proc.returncode == 2 and "more than once" in proc.stderr and "Traceback" not in proc.stderr


def test_bench_lets_torch_threads_sleep_before_torch_loads(tmp_path):
    # OpenMP reads OMP_WAIT_POLICY once, when torch loads it: the bench must set PASSIVE before the
    # first `import torch` (spinning threads stalled torch 13x on the shared machine), and say so
    code = (
        "import os, sys, json\n"
        "os.environ.pop('OMP_WAIT_POLICY', None)\n"
        "seen = []\n"
        "class Hook:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' and not seen: seen.append(os.environ.get('OMP_WAIT_POLICY'))\n"
        "sys.meta_path.insert(0, Hook())\n"
        "from deploykit.verify.bench import run_bench\n"
        "rep = run_bench(['gaitset'], ['torch'], frames=4, iters=1, rounds=1, warmup=0)\n"
        "print(json.dumps({'seen': seen, 'env': rep.environment}))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["seen"] == ["PASSIVE"] and got["env"]["OMP_WAIT_POLICY"] == "PASSIVE"


def test_bench_times_torch_at_the_input_size_of_an_engine_exported_at_another_size(tmp_path):
    """A proxy exported at its own size (rga 192x96, hrnet-w32 128x96) is timed against torch eager at the
    same size with --input-size; without it the shapes differ and the bench says so."""
    from conftest import run_cli

    res = OnnxFromModel("hrnet-w32", input_size=(64, 64))(tmp_path)
    eng = EngineFromOnnx(res.onnx_path, BuildOptions(progress=False), backend="onnxruntime")(tmp_path / "e").engine_path
    args = ["bench", str(eng), "hrnet-w32", "--backends", "torch", "--iters", "1", "--rounds", "1", "--warmup", "0",
            "--threads", "1"]
    proc = run_cli(*args, "--input-size", "64x64", "--json", str(tmp_path / "b.json"))
    assert proc.returncode == 0, proc.stderr
    rep = json.loads((tmp_path / "b.json").read_text())
    assert rep["baseline"] == "torch" and set(rep["backends"]) == {"torch", eng.name}
    refused = run_cli(*args)
    assert refused.returncode == 2 and "(1, 3, 64, 64)" in refused.stderr and "--input-size" in refused.stderr
