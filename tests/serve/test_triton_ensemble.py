"""The ensembles (pre -> engine -> post) against a real Triton server, answer for answer against
`deploykit infer` on the same files.

Engines are exported here (main venv, torch): fastpose-res50 and rga with seeded random weights,
gaitset from the repository's proxy checkpoint, each with a dynamic batch, and copied as pose/reid/
gait.onnx so the model names are fixed. The random FastPose's keypoint scores sit below AlphaPose's
NMS score threshold (0.3), which would leave no person to compare; the pose manifest's
`postprocess.pose_nms.score_thresh` is set to 0 for both sides, so NMS still runs (the two
overlapping boxes are merged) and people come out. The serve venv runs the server and clients
(`_ensemble_checks.py`); tolerance is none (np.array_equal): pre, engine and post run the same
deploykit.runtime code on the same ONNX Runtime build as `deploykit infer`, one request per call.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deploykit import manifest as mf

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _cli(*args, env):
    subprocess.run([sys.executable, "-m", "deploykit.cli", *args], check=True, env=env, timeout=900)


def _inputs(work: Path) -> None:
    import cv2

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:240, 0:320]
    img = np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1).astype(np.int64) + rng.integers(0, 40, (240, 320, 3))
    cv2.imwrite(str(work / "image.png"), np.clip(img, 0, 255).astype(np.uint8))
    # two overlapping people (pose NMS merges them) and one apart
    boxes = [[20.5, 15.0, 120.0, 225.5, 0.95], [26.0, 18.0, 124.0, 221.0, 0.8], [190.0, 30.0, 300.0, 232.0, 0.7]]
    (work / "boxes.json").write_text(json.dumps({"image.png": boxes}))
    sils = np.zeros((45, 64, 64), np.uint8)  # a walking-ish blob: 45 frames -> two 30-frame windows
    for t in range(45):
        sils[t, 8:60, 22 + (t % 6):34 + (t % 6)] = 255
    np.save(work / "sils.npy", sils)


@pytest.fixture(scope="module")
def report(tmp_path_factory, serve_py, serve_env):
    d = tmp_path_factory.mktemp("ensemble")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    art, work = d / "art", d / "work"
    work.mkdir()
    for name, role, extra in (("fastpose-res50", "pose", ()), ("rga", "reid", ()),
                              ("gaitset", "gait", ("--checkpoint", str(ROOT / "proxies/gaitset-proxy.pt")))):
        _cli("export", name, *extra, "--dynamic-batch", "8", "--opt-batch", "4", "--out", str(art), env=env)
        shutil.copy2(art / f"{name}.onnx", work / f"{role}.onnx")
        shutil.copy2(mf.manifest_path_for(art / f"{name}.onnx"), mf.manifest_path_for(work / f"{role}.onnx"))
    pman = mf.read(mf.manifest_path_for(work / "pose.onnx"))
    pman["postprocess"]["pose_nms"]["score_thresh"] = 0.0
    mf.write(mf.manifest_path_for(work / "pose.onnx"), pman)
    _inputs(work)
    img = str(work / "image.png")
    _cli("-q", "infer", str(work / "pose.onnx"), img, "--boxes", str(work / "boxes.json"),
         "--out", str(work / "pose.json"), env=env)
    _cli("-q", "infer", str(work / "reid.onnx"), img, "--boxes", str(work / "boxes.json"),
         "--out", str(work / "reid.json"), env=env)
    _cli("-q", "infer", str(work / "gait.onnx"), str(work / "sils.npy"), "--out", str(work / "gait.json"), env=env)
    _cli("triton-repo", *(str(work / f"{r}.onnx") for r in ("pose", "reid", "gait")), "--cpu",
         "--out", str(d / "repo"), env=env)
    out = subprocess.run([str(serve_py), str(ROOT / "tests/serve/_ensemble_checks.py"), str(d / "repo"), str(work)],
                         capture_output=True, text=True, env=serve_env, timeout=900)
    line = [x for x in out.stdout.splitlines() if x.startswith("REPORT ")]
    assert out.returncode == 0 and line, out.stdout[-3000:] + out.stderr[-3000:]
    return json.loads(line[0][7:])


def test_pose_ensemble_returns_what_deploykit_infer_returns(report):
    # 3 boxes in, NMS merges the two overlapping ones: fewer people out, and still exactly infer's
    assert 1 <= report["pose_people"] < report["pose_boxes_in"], report
    assert report["pose_equal"] and report["pose_concurrent_equal"]


def test_reid_ensemble_gives_infers_embeddings_normalised(report):
    assert report["reid_equal"] and report["reid_norms"] == [1.0, 1.0, 1.0]


def test_gait_ensemble_gives_infers_window_mean(report):
    assert report["gait_equal"] and report["gait_windows_equal"]


def test_malformed_ensemble_requests_get_clear_errors_and_serving_goes_on(report):
    bad = report["malformed"]
    assert bad["too_many_boxes"] and "dynamic batch max 8" in bad["too_many_boxes"], bad
    assert bad["too_many_boxes"].startswith("[400]"), bad  # a BadInputError is the client's fault: INVALID_ARG
    assert bad["boxes_shape"] and "BOXES" in bad["boxes_shape"], bad
    assert bad["boxes_dtype"] and "BOXES" in bad["boxes_dtype"], bad
    assert bad["input_name"] and "PICTURE" in bad["input_name"], bad
    assert report["after_malformed_equal"]


def test_no_process_or_port_left_behind(report):
    assert report["processes_left"] == [] and report["ports_closed_after"]
