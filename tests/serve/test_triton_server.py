"""Against a real Triton server (the pytriton wheel's tritonserver, CPU, Python backend).

The engine is exported here (main venv, torch); the server and its clients run in the serve venv
(scripts/serve_env.sh: the stub needs the system's python3.11, pytriton numpy < 2) through
`_server_checks.py`, whose JSON report is asserted on. Equality is exact (np.array_equal): the
Python-backend model runs each request as its own Engine.infer on the same ONNX Runtime build.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tmp_path_factory, serve_py, serve_env):
    d = tmp_path_factory.mktemp("triton")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, "-m", "deploykit.cli", "export", "gaitset", "--checkpoint",
                    str(ROOT / "proxies/gaitset-proxy.pt"), "--dynamic-batch", "8", "--opt-batch", "4",
                    "--out", str(d / "art")], check=True, env=env, timeout=600)
    subprocess.run([sys.executable, "-m", "deploykit.cli", "triton-repo", str(d / "art/gaitset.onnx"),
                    "--out", str(d / "repo")], check=True, env=env, timeout=120)
    out = subprocess.run([str(serve_py), str(ROOT / "tests/serve/_server_checks.py"), str(d / "repo"),
                          str(d / "art/gaitset.onnx")], capture_output=True, text=True, env=serve_env, timeout=900)
    line = [x for x in out.stdout.splitlines() if x.startswith("REPORT ")]
    assert out.returncode == 0 and line, out.stdout[-3000:] + out.stderr[-3000:]
    return json.loads(line[0][7:])


def test_configs_parse_against_triton_schema(report):
    cfg = report["configs"]
    assert cfg["gaitset"]["backend"] == "python" and cfg["gaitset"]["max_batch_size"] == 8
    assert cfg["gaitset_onnxruntime"]["platform"] == "onnxruntime_onnx"


def test_http_and_grpc_bit_identical_to_engine(report):
    assert report["http_equal"] and report["grpc_equal"]


def test_16_clients_zero_errors_identical_and_batched(report):
    assert report["concurrent_errors"] == 0 and report["concurrent_diffs"] == 0
    assert max(report["batch_sizes"]) > 1, report["batch_sizes"]


def test_malformed_requests_get_errors_and_server_keeps_serving(report):
    bad = report["malformed"]
    assert all(bad[k] for k in ("name", "shape", "dtype")), bad
    assert report["after_malformed_equal"] and report["after_reload_equal"]


def test_reload_keeps_serving(report):
    during = report["reload_during"]
    assert during["calls"] >= 3 and during["errors"] == 0 and during["diffs"] == 0, during


def test_no_port_left_behind(report):
    assert report["ports_closed_after"]
