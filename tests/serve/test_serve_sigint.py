"""`deploykit serve REPO` stops cleanly on Ctrl-C (SIGINT): exit code 0, no tritonserver, no listening port.

The repository is one hand-written Python-backend identity model (no engine, no torch), so the test is
about the CLI's process handling, not about deploykit's models. It runs under the serve venv
(scripts/serve_env.sh: the stub needs the system's python3.11), as the other tests against the server do.
Loops are bounded in time: ready within 180 s, exit within 60 s of SIGINT.
"""

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest


pytestmark = pytest.mark.slow

IDENTITY_PY = """import time

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        time.sleep({load_s})  # 0, or long enough to interrupt the loading

    def execute(self, requests):
        return [pb_utils.InferenceResponse([pb_utils.Tensor("y", pb_utils.get_input_tensor_by_name(r, "x").as_numpy())])
                for r in requests]
"""
IDENTITY_CONFIG = """name: "identity"
backend: "python"
max_batch_size: 0
input [ { name: "x" data_type: TYPE_FP32 dims: [ 2 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 2 ] } ]
instance_group [ { kind: KIND_CPU count: 1 } ]
"""


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _tritonservers_on(port: int) -> list[int]:
    """Pids of tritonserver processes started with --http-port=PORT (read from /proc)."""
    pids = []
    for p in Path("/proc").iterdir():
        try:
            argv = (p / "cmdline").read_bytes().split(b"\0") if p.name.isdigit() else []
        except OSError:  # the process ended while we looked
            continue
        if argv and argv[0].endswith(b"tritonserver") and f"--http-port={port}".encode() in argv:
            pids.append(int(p.name))
    return pids


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("when,load_s,code", [("ready", 0, 0), ("loading", 60, 130)])
def test_ctrl_c_stops_serve_and_leaves_nothing(tmp_path, when, load_s, code, serve_py, serve_env):
    """Ctrl-C once ready: exit 0; while the model loads (its initialize sleeps 60 s): exit 130. Either way
    the tritonserver (in its own session, so Ctrl-C reaches only deploykit) is gone and its ports closed."""
    model = tmp_path / "repo" / "identity"
    (model / "1").mkdir(parents=True)
    (model / "1" / "model.py").write_text(IDENTITY_PY.replace("{load_s}", str(load_s)))
    (model / "config.pbtxt").write_text(IDENTITY_CONFIG)
    http, grpc = _free_port(), _free_port()
    proc = subprocess.Popen([str(serve_py), "-m", "deploykit.cli", "serve", str(tmp_path / "repo"),
                             "--http-port", str(http), "--grpc-port", str(grpc)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=serve_env)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None and not (
                any(x.startswith("ready:") for x in lines) if when == "ready" else _tritonservers_on(http)):
            time.sleep(0.2)
        if when == "ready":
            assert any(x.startswith("ready:") and f"127.0.0.1:{http}" in x and f"127.0.0.1:{grpc}" in x
                       for x in lines), "".join(lines)[-3000:]
            assert _listening(http) and _listening(grpc), lines
        else:
            time.sleep(3)  # into the model's initialize (the server is up; ready comes after 60 s)
            assert not any(x.startswith("ready:") for x in lines), lines
        assert len(_tritonservers_on(http)) == 1, lines

        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends to the foreground process
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:  # it did not stop: do not leave it running (the asserts below fail)
            proc.kill()
            proc.wait(10)
        left = _tritonservers_on(http)
        for pid in left:  # clean up first, then fail on what was left
            os.kill(pid, signal.SIGKILL)
    reader.join(10)
    assert rc == code, "".join(lines)[-3000:]
    assert left == [], "tritonserver outlived deploykit serve"
    assert not _listening(http) and not _listening(grpc)
