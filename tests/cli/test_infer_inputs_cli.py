"""`deploykit infer` on folders, videos, detection files and many people, as a user runs it."""

import json

import cv2
import numpy as np
import pytest

from conftest import run_cli
from deploykit.export import OnnxFromModel
from deploykit.runtime import Engine
from deploykit.runtime.infer import infer_files


def _sil_folder(folder, n):
    folder.mkdir(parents=True)
    for t in range(n):
        f = np.zeros((120, 90), np.uint8)
        f[10 + 3 * t:110, 30:50 + 3 * t] = 255  # every frame different
        cv2.imwrite(str(folder / f"{t:03d}.png"), f)
    return folder


@pytest.fixture(scope="module")
def gaitbase4(tmp_path_factory):
    return OnnxFromModel("gaitbase", frames=4)(tmp_path_factory.mktemp("gb4")).onnx_path


def test_gait_windows_a_long_folder_and_reports_it(tmp_path, gaitbase4):
    seq = _sil_folder(tmp_path / "nine", 9)
    proc = run_cli("infer", str(gaitbase4), str(seq), "--out", str(tmp_path / "e.json"))
    assert proc.returncode == 0, proc.stderr
    r = json.loads((tmp_path / "e.json").read_text())["results"][0]
    assert r["frames_total"] == 9 and r["frames_kept"] == 9 and r["padded"] is False
    assert r["windows"] == [[0, 4], [4, 8], [5, 9]]  # every frame used, nothing cut or looped silently
    # the sequence embedding is the mean of its windows' embeddings
    from deploykit.runtime.gait_windows import windowed_source

    with Engine.load(gaitbase4) as eng:
        win = windowed_source(seq, eng.manifest["preprocess"], 4)
        per = np.stack([eng.infer({"sils": c[None]})["embeddings"][0] for c in win.clips])
    assert not np.allclose(per[0], per[2], atol=1e-4)  # the windows see different frames
    # JSON round trip of float32 values: exact to float32 rounding
    np.testing.assert_allclose(np.asarray(r["embeddings"]), per.mean(0), rtol=1e-5, atol=1e-6)


def test_gait_short_sequence_is_padded_loudly_or_refused(tmp_path, gaitbase4):
    seq = _sil_folder(tmp_path / "two", 2)
    proc = run_cli("infer", str(gaitbase4), str(seq))
    assert proc.returncode == 0, proc.stderr
    assert "warning:" in proc.stderr and "repeated cyclically" in proc.stderr
    assert json.loads(proc.stdout)["results"][0]["padded"] is True
    proc = run_cli("infer", str(gaitbase4), str(seq), "--short", "refuse")
    assert proc.returncode == 2 and "fewer than the engine's 4" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli("infer", str(gaitbase4), str(seq), "--det-thr", "0.5")
    assert proc.returncode == 2 and "--det-thr is for pose/reid engines" in proc.stderr


def _street(tmp_path, n=1):
    rng = np.random.default_rng(0)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(n):
        cv2.imwrite(str(folder / f"{i + 1:012d}.jpg"), (rng.random((240, 320, 3)) * 255).astype(np.uint8))
    return folder


THREE = [[10, 20, 80, 200], [100, 30, 80, 190], [200, 40, 100, 180]]  # COCO [x, y, w, h]


def test_pose_three_boxes_in_one_call_on_a_dynamic_engine(tmp_path):
    res = OnnxFromModel("fastpose-res50", dynamic_batch=8)(tmp_path / "e")
    assert res.manifest["dynamic_batch"]["max"] == 8
    folder = _street(tmp_path, 2)
    dets = [{"image_id": 1, "bbox": b, "score": 0.9, "category_id": 1} for b in THREE]
    dets += [{"image_id": 2, "bbox": [400, 10, 50, 50], "score": 0.9, "category_id": 1},  # wholly off-image
             {"image_id": 2, "bbox": [5, 5, 60, 60], "score": 0.1, "category_id": 1}]  # below --det-thr
    (tmp_path / "dets.json").write_text(json.dumps(dets))

    calls = []
    real = Engine.infer

    def counting(self, feeds, **kw):
        calls.append(next(iter(feeds.values())).shape[0])
        return real(self, feeds, **kw)

    Engine.infer = counting
    try:
        out = infer_files(res.onnx_path, [str(folder)], boxes=str(tmp_path / "dets.json"), det_thr=0.3,
                          pose_nms="off")
    finally:
        Engine.infer = real
    assert calls == [3]  # 3 people, one engine call; image 2 has no box left
    first, second = out["results"]
    assert len(first["people"]) == 3 and first["image_id"] == 1 and second["people"] == []
    assert len(out["coco_keypoints"]) == 3 and len(out["coco_keypoints"][0]["keypoints"]) == 51
    assert {r["image_id"] for r in out["coco_keypoints"]} == {1}
    # the CLI: the off-image box is one warning line; --coco-out writes the loadRes list
    proc = run_cli("infer", str(res.onnx_path), str(folder), "--boxes", str(tmp_path / "dets.json"),
                   "--pose-nms", "off", "--coco-out", str(tmp_path / "kp.json"), "--out", str(tmp_path / "r.json"))
    assert proc.returncode == 0, proc.stderr
    assert sum("wholly outside" in line for line in proc.stderr.splitlines()) == 1
    assert len(json.loads((tmp_path / "kp.json").read_text())) == 4  # 3 + the low-score box (no --det-thr)


def _pose_keypoints(out):
    return np.asarray([p["keypoints"] for r in out["results"] for p in r["people"]])


@pytest.mark.slow
def test_hrnet_dynamic_and_static_engines_give_the_same_keypoints(tmp_path):
    dyn = OnnxFromModel("hrnet-w32", dynamic_batch=8)(tmp_path / "dyn").onnx_path
    static = OnnxFromModel("hrnet-w32")(tmp_path / "static").onnx_path
    folder = _street(tmp_path)
    (tmp_path / "b.json").write_text(json.dumps([{"image_id": 1, "bbox": b, "score": 0.9} for b in THREE]))
    a = infer_files(dyn, [str(folder)], boxes=str(tmp_path / "b.json"))
    b = infer_files(static, [str(folder)], boxes=str(tmp_path / "b.json"))  # batch 1: infer_many, 3 calls
    assert len(a["results"][0]["people"]) == 3
    # same weights (seed 0) and crops; batch 3 vs 1 changes only float32 summation order in the
    # convolutions (~1e-6 relative on the heatmaps), far from moving a heatmap argmax or the
    # quarter offset by 0.01 px (keypoints are rounded to 0.01 px in the results)
    np.testing.assert_allclose(_pose_keypoints(a), _pose_keypoints(b), atol=0.011)


@pytest.mark.slow
def test_hrnet_keypoints_feed_pgfa_with_visibility(tmp_path):
    hrnet = OnnxFromModel("hrnet-w32", dynamic_batch=4)(tmp_path / "h").onnx_path
    pgfa = OnnxFromModel("pgfa", dynamic_batch=4)(tmp_path / "p").onnx_path
    crops = tmp_path / "crops"
    crops.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(crops / f"000{i}_c1.jpg"), (rng.random((256, 128, 3)) * 255).astype(np.uint8))
    proc = run_cli("infer", str(hrnet), str(crops), "--out", str(tmp_path / "kp.json"))
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("infer", str(pgfa), str(crops), "--keypoints", str(tmp_path / "kp.json"),
                   "--out", str(tmp_path / "emb.json"))
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "emb.json").read_text())
    assert data["metric"] == "pgfa" and data["keypoints_matched"] == 3
    r = data["results"][0]
    assert np.asarray(r["global_feat"]).shape == (256,) and np.asarray(r["part_feats"]).shape == (3, 2048)
    assert np.asarray(r["visibility"]).shape == (3,)
    # the keypoints change the embedding: all-ones heatmaps (no --keypoints) give another global_feat
    proc = run_cli("infer", str(pgfa), str(crops / "0000_c1.jpg"))
    assert proc.returncode == 0 and "without --keypoints" in proc.stderr
    ones = json.loads(proc.stdout)["results"][0]
    assert not np.allclose(ones["global_feat"], r["global_feat"], atol=1e-4)
    assert ones["visibility"] == [1.0, 1.0, 1.0]
