"""Run under the serve venv (.venv-serve) by test_triton_server.py: start a real tritonserver on REPO,
query it over HTTP and gRPC, print a JSON report of what was observed (the test asserts on it).

    python tests/serve/_server_checks.py REPO ENGINE
"""

import json
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import tritonclient.grpc as tg
import tritonclient.http as th
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from deploykit.runtime import Engine
from deploykit.serve.server import Server

repo, engine_path = Path(sys.argv[1]), sys.argv[2]
report = {"configs": {}}
for cfg in sorted(repo.glob("*/config.pbtxt")):
    parsed = text_format.Parse(cfg.read_text(), model_config_pb2.ModelConfig())
    report["configs"][cfg.parent.name] = {"max_batch_size": parsed.max_batch_size,
                                          "platform": parsed.platform, "backend": parsed.backend}

rng = np.random.default_rng(0)
xs = [rng.random((1 + i % 2, 30, 64, 44), dtype=np.float32) for i in range(8)]
with Engine.load(engine_path, threads=1) as eng:
    refs = [eng.infer({"sils": x})["embeddings"] for x in xs]


def http_infer(url, x):
    c = th.InferenceServerClient(url)
    i = th.InferInput("sils", list(x.shape), "FP32")
    i.set_data_from_numpy(x)
    try:
        return c.infer("gaitset", [i]).as_numpy("embeddings")
    finally:
        c.close()  # an open keep-alive connection holds the server's shutdown for 30 s


with open(repo.parent / "server.log", "wb") as log, Server(repo, log=log) as srv:
    report["ports"] = [srv.http_port, srv.grpc_port]
    report["http_equal"] = all(np.array_equal(http_infer(srv.http_url, x), r) for x, r in zip(xs, refs))
    g = tg.InferenceServerClient(srv.grpc_url)
    eq = []
    for x, r in zip(xs, refs):
        i = tg.InferInput("sils", list(x.shape), "FP32")
        i.set_data_from_numpy(x)
        eq.append(np.array_equal(g.infer("gaitset", [i]).as_numpy("embeddings"), r))
    report["grpc_equal"] = all(eq)

    # 16 concurrent clients x 50 requests (bounded: 800 calls)
    def client(k):
        errs, diffs = 0, 0
        for n in range(50):
            j = (k + n) % len(xs)
            try:
                diffs += not np.array_equal(http_infer(srv.http_url, xs[j]), refs[j])
            except Exception:
                errs += 1
        return errs, diffs

    with ThreadPoolExecutor(16) as pool:
        res = list(pool.map(client, range(16)))
    report["concurrent_errors"] = sum(e for e, _ in res)
    report["concurrent_diffs"] = sum(d for _, d in res)
    stats = g.get_inference_statistics("gaitset", as_json=True)
    report["batch_sizes"] = sorted(int(b["batch_size"]) for b in stats["model_stats"][0].get("batch_stats", []))

    # malformed requests: each must fail with a message, and the server keep answering
    bad = {}
    for what, (name, shape, dtype) in {"name": ("nope", (1, 30, 64, 44), "FP32"),
                                       "shape": ("sils", (1, 30, 64, 40), "FP32"),
                                       "dtype": ("sils", (1, 30, 64, 44), "INT32")}.items():
        i = th.InferInput(name, list(shape), dtype)
        i.set_data_from_numpy(np.zeros(shape, np.float32 if dtype == "FP32" else np.int32))
        try:
            th.InferenceServerClient(srv.http_url).infer("gaitset", [i])
            bad[what] = None
        except Exception as exc:
            bad[what] = str(exc)[:300]
    report["malformed"] = bad
    report["after_malformed_equal"] = bool(np.array_equal(http_infer(srv.http_url, xs[0]), refs[0]))

    # reload while a client keeps sending: load_model on a loaded model swaps in a new copy, the old one
    # answering until it is ready, so no request may fail (bounded: at most 200 calls, 120 s)
    import threading
    import time

    done, during = threading.Event(), {"calls": 0, "errors": 0, "diffs": 0}

    def keep_sending():
        t0 = time.monotonic()
        while during["calls"] < 200 and time.monotonic() - t0 < 120 and not (done.is_set() and during["calls"] >= 3):
            try:
                during["diffs"] += not np.array_equal(http_infer(srv.http_url, xs[2]), refs[2])
            except Exception:
                during["errors"] += 1
            during["calls"] += 1

    sender = threading.Thread(target=keep_sending)
    sender.start()
    g.load_model("gaitset")
    done.set()
    sender.join()
    report["reload_during"] = during
    # and a full unload + load: answers unchanged afterwards
    g.unload_model("gaitset")
    g.load_model("gaitset")
    report["after_reload_equal"] = bool(np.array_equal(http_infer(srv.http_url, xs[1]), refs[1]))

free = []
for p in report["ports"]:
    with socket.socket() as s:
        free.append(s.connect_ex(("127.0.0.1", p)) != 0)
report["ports_closed_after"] = all(free)
print("REPORT " + json.dumps(report))
