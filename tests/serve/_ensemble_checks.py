"""Run under the serve venv by test_triton_ensemble.py: start a real tritonserver on REPO, send each
ensemble the tensors `deploykit infer` read from WORK's files, print a JSON report (the test asserts).

    python tests/serve/_ensemble_checks.py REPO WORK

WORK holds image.png, boxes.json ({"image.png": [[x1, y1, x2, y2, score], ...]}), sils.npy and the
`deploykit infer` results pose.json, reid.json, gait.json.
"""

import json
import os
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import tritonclient.http as th

from deploykit.runtime.match.metrics import l2n
from deploykit.serve.server import Server

repo, work = Path(sys.argv[1]), Path(sys.argv[2])
image = cv2.imread(str(work / "image.png"), cv2.IMREAD_COLOR)  # what `deploykit infer` reads: BGR uint8
boxes = np.asarray(json.loads((work / "boxes.json").read_text())["image.png"], np.float64)
sils = np.load(work / "sils.npy")
ref = {k: json.loads((work / f"{k}.json").read_text()) for k in ("pose", "reid", "gait")}


def tensor(name, a, dtype):
    t = th.InferInput(name, list(a.shape), dtype)
    t.set_data_from_numpy(a)
    return t


def call(url, model, feeds):
    c = th.InferenceServerClient(url)
    try:
        return c.infer(model, feeds)
    finally:
        c.close()  # an open keep-alive connection would hold the server's shutdown for 30 s


def pose(url, b=boxes):
    r = call(url, "pose_ensemble", [tensor("IMAGE", image, "UINT8"), tensor("BOXES", b, "FP64")])
    return {k: r.as_numpy(k) for k in ("KEYPOINTS", "KEYPOINT_SCORES", "BOXES_OUT", "BOX_SCORES", "SCORES")}


def pose_equal(got):
    people = ref["pose"]["results"][0]["people"]
    want = {"KEYPOINTS": [p["keypoints"] for p in people], "KEYPOINT_SCORES": [p["scores"] for p in people],
            "BOXES_OUT": [p["box"] for p in people], "BOX_SCORES": [p["box_score"] for p in people],
            "SCORES": [p["score"] for p in people]}
    return len(people) > 0 and all(np.array_equal(got[k], np.asarray(v, np.float64)) for k, v in want.items())


report = {}
log_path = repo.parent / "server.log"
with open(log_path, "wb") as log, Server(repo, log=log, ready_timeout=300) as srv:
    pid = srv.proc.pid
    url = srv.http_url
    got = pose(url)
    report["pose_people"] = int(len(got["SCORES"]))
    report["pose_boxes_in"] = int(len(boxes))
    report["pose_equal"] = pose_equal(got)

    r = call(url, "reid_ensemble", [tensor("IMAGE", image, "UINT8"), tensor("BOXES", boxes, "FP64")])
    want = l2n(np.asarray([x["feat"] for x in ref["reid"]["results"]], np.float32), 1)
    report["reid_equal"] = bool(np.array_equal(r.as_numpy("EMBEDDINGS"), want))
    report["reid_norms"] = np.linalg.norm(r.as_numpy("EMBEDDINGS"), axis=1).round(5).tolist()

    r = call(url, "gait_ensemble", [tensor("SILHOUETTES", sils, "UINT8")])
    g = ref["gait"]["results"][0]
    report["gait_equal"] = bool(np.array_equal(r.as_numpy("embeddings"), np.asarray(g["embeddings"], np.float32)))
    report["gait_windows_equal"] = r.as_numpy("WINDOWS").tolist() == g["windows"]

    # 4 clients x 5 pose requests (bounded: 20 calls), every answer the in-process one
    with ThreadPoolExecutor(4) as pool:
        report["pose_concurrent_equal"] = all(pool.map(lambda _: pose_equal(pose(url)), range(20)))

    bad = {}
    for what, b, dtype in (("too_many_boxes", np.tile(boxes[:1], (9, 1)), "FP64"),
                           ("boxes_shape", boxes[:, :4].copy(), "FP64"),
                           ("boxes_dtype", boxes.astype(np.float32), "FP32")):
        try:
            call(url, "pose_ensemble", [tensor("IMAGE", image, "UINT8"), tensor("BOXES", b, dtype)])
            bad[what] = None
        except Exception as exc:
            bad[what] = str(exc)[:400]
    try:
        call(url, "pose_ensemble", [tensor("PICTURE", image, "UINT8"), tensor("BOXES", boxes, "FP64")])
        bad["input_name"] = None
    except Exception as exc:
        bad["input_name"] = str(exc)[:400]
    report["malformed"] = bad
    report["after_malformed_equal"] = pose_equal(pose(url))
    ports = [srv.http_port, srv.grpc_port]


def alive_in_group(pgid):
    """Processes still in the server's process group (the server and its Python-backend stubs)."""
    left = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if os.getpgid(int(p.name)) == pgid:
                    left.append(int(p.name))
            except (ProcessLookupError, PermissionError):
                pass
    return left


def port_closed(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


report["processes_left"] = alive_in_group(pid)
report["ports_closed_after"] = all(port_closed(p) for p in ports)
print("REPORT " + json.dumps(report))
