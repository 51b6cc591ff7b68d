"""`deploykit infer` and `deploykit gallery` as a user runs them, on real image files."""

import json

import cv2
import numpy as np
import pytest

from conftest import run_cli
from deploykit.export import OnnxFromModel


def _write_images(folder, names, seed=0, size=(180, 90)):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in names:
        img = (rng.random((*size, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(folder / n), img)
        paths.append(str(folder / n))
    return paths


@pytest.fixture(scope="module")
def gaitbase_engine(tmp_path_factory):
    return OnnxFromModel("gaitbase", frames=4)(tmp_path_factory.mktemp("gb")).onnx_path


def test_gait_infer_gallery_round_trip(tmp_path, gaitbase_engine):
    # Two identities, two sequences each, as OpenGait-style folders of silhouette PNGs.
    rng = np.random.default_rng(0)
    seqs = []
    for pid in ("001", "002"):
        for cam in ("1", "2"):
            d = tmp_path / f"{pid}_c{cam}"
            d.mkdir()
            for t in range(5):
                frame = np.zeros((120, 90), np.uint8)
                w = 20 + 10 * int(pid) + t
                frame[10:110, 45 - w // 2:45 + w // 2] = 255
                frame = np.where(rng.random(frame.shape) < 0.02, 0, frame).astype(np.uint8)
                cv2.imwrite(str(d / f"{t:03d}.png"), frame)
            seqs.append(str(d))
    proc = run_cli("infer", str(gaitbase_engine), *seqs, "--out", str(tmp_path / "emb.json"))
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "emb.json").read_text())
    assert data["family"] == "gait" and len(data["results"]) == 4
    assert np.asarray(data["results"][0]["embeddings"]).shape == (256, 16)

    gal = tmp_path / "g.npz"
    proc = run_cli("gallery", "add", str(gal), str(tmp_path / "emb.json"))
    assert proc.returncode == 0, proc.stderr
    assert "4 embeddings" in proc.stdout
    proc = run_cli("gallery", "search", str(gal), str(tmp_path / "emb.json"), "-k", "4")
    hits = json.loads(proc.stdout)
    # each query's nearest entry is itself (distance 0): a search that ignores its input would fail
    assert [h["matches"][0]["index"] for h in hits] == [0, 1, 2, 3]
    assert [h["matches"][0]["path"] for h in hits] == seqs  # search returns the source path
    proc = run_cli("gallery", "evaluate", str(gal), str(tmp_path / "emb.json"))
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    # expected from the search ranking: drop the query's own (same id, same cam) entry; the one
    # true match (same id, other cam) at position p gives AP 1/p
    aps = []
    for h in hits:
        qid, qcam = h["query"].rsplit("/", 1)[-1].split("_c")
        ranked = [m for m in h["matches"] if not (m["id"] == qid and m["cam"] == qcam)]
        aps.append(1 / (1 + [m["id"] for m in ranked].index(qid)))
    assert r["mAP"] == pytest.approx(np.mean(aps), abs=1e-9)
    assert r["rank1"] == pytest.approx(np.mean([a == 1 for a in aps]))
    assert r["num_queries"] == 4 and r["num_valid_queries"] == 4 and "4 of 4 counted" in proc.stderr


def test_pose_infer_with_boxes_and_overlay(tmp_path):
    engine = OnnxFromModel("fastpose-res50")(tmp_path / "e").onnx_path
    [img] = _write_images(tmp_path / "imgs", ["street.jpg"], size=(240, 320))
    (tmp_path / "boxes.json").write_text(json.dumps({"street.jpg": [[10, 20, 120, 220], [150, 30, 300, 230]]}))
    # seeded random weights score every joint below NMS's 0.3, so NMS is off to see the box mapping
    proc = run_cli("infer", str(engine), img, "--boxes", str(tmp_path / "boxes.json"), "--pose-nms", "off",
                   "--visualize", str(tmp_path / "viz"), "--out", str(tmp_path / "kp.json"))
    assert proc.returncode == 0, proc.stderr
    people = json.loads((tmp_path / "kp.json").read_text())["results"][0]["people"]
    assert len(people) == 2 and np.asarray(people[0]["keypoints"]).shape == (17, 2)
    # keypoints are mapped back into each person's (enlarged) box region of the image
    for p, (x1, y1, x2, y2) in zip(people, [[10, 20, 120, 220], [150, 30, 300, 230]]):
        k = np.asarray(p["keypoints"])
        assert (k[:, 0] >= x1 - 0.3 * (x2 - x1)).all() and (k[:, 0] <= x2 + 0.3 * (x2 - x1)).all()
    png = cv2.imread(str(tmp_path / "viz" / "street.pose.png"))
    assert png is not None and png.shape == (240, 320, 3)


def test_infer_bad_inputs_are_one_line(tmp_path, gaitbase_engine):
    proc = run_cli("infer", str(gaitbase_engine), str(tmp_path / "missing"))
    assert proc.returncode == 2 and proc.stderr.startswith("error: input(s) not found")
    (tmp_path / "b.json").write_text("{not json")
    proc = run_cli("gallery", "add", str(tmp_path / "g.npz"), str(tmp_path / "b.json"))
    assert proc.returncode == 2 and "cannot read" in proc.stderr and not (tmp_path / "g.npz").exists()


def test_infer_progress_is_plain_lines_when_piped(tmp_path, gaitbase_engine):
    # 12 sequences: progress (every 10, from 10 inputs up) prints "10/12" and the final "12/12" as
    # whole lines on stderr; captured output is a pipe, where carriage returns would garble logs
    seqs = []
    for i in range(12):
        d = tmp_path / f"{i:03d}_c1"
        d.mkdir()
        for t in range(4):
            frame = np.zeros((64, 44), np.uint8)
            frame[4:60, 12 + i % 5:30] = 255
            cv2.imwrite(str(d / f"{t:03d}.png"), frame)
        seqs.append(str(d))
    proc = run_cli("infer", str(gaitbase_engine), *seqs, "--out", str(tmp_path / "e.npz"))
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr
    assert [ln for ln in proc.stderr.splitlines() if "sequences" in ln] == ["gait: sequences 10/12",
                                                                             "gait: sequences 12/12"]
    quiet = run_cli("-q", "infer", str(gaitbase_engine), *seqs, "--out", str(tmp_path / "q.npz"))
    assert quiet.returncode == 0 and "sequences" not in quiet.stderr
