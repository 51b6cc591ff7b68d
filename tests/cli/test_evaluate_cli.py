"""`deploykit evaluate` on small synthetic benchmark layouts, against transcriptions of the upstream evaluators."""

import json

import cv2
import numpy as np
import pytest

from conftest import run_cli
from deploykit.export import OnnxFromModel
from deploykit.runtime import results as results_io
from deploykit.runtime.match import distance
from reference_evaluators import rga_reference

TYPES = ["nm-01", "nm-02", "nm-03", "nm-04", "nm-05", "nm-06", "bg-01", "bg-02", "cl-01", "cl-02"]


def _silhouettes(folder, width, rng, frames=4):
    folder.mkdir(parents=True)
    for t in range(frames):
        f = np.zeros((120, 90), np.uint8)
        w = width + int(rng.integers(-2, 3))
        f[10:110, 45 - w // 2:45 + w // 2] = 255
        cv2.imwrite(str(folder / f"{t:03d}.png"), f)


def opengait_single_view(emb, lab, typ, view):
    """OpenGait evaluate_indoor_dataset (CASIA-B, cross_view_gallery False), written as loops."""
    probes = {"NM": ["nm-05", "nm-06"], "BG": ["bg-01", "bg-02"], "CL": ["cl-01", "cl-02"]}
    views = sorted(set(view))
    out = {}
    for cond, ptypes in probes.items():
        acc = np.zeros((len(views), len(views)))
        for a, pv in enumerate(views):
            pm = np.isin(typ, ptypes) & (view == pv)
            for b, gv in enumerate(views):
                gm = np.isin(typ, TYPES[:4]) & (view == gv)
                d = distance(emb[pm], emb[gm], "euc")
                acc[a, b] = np.round(np.sum(lab[pm] == lab[gm][np.argmin(d, 1)]) * 100 / pm.sum(), 2)
        per_view = (acc - np.diag(np.diag(acc))).sum(1) / (len(views) - 1.0)  # de_diag
        out[cond] = float(np.mean(per_view))
    return out


def test_casia_b_cli_equals_the_opengait_transcription(tmp_path):
    engine = OnnxFromModel("gaitbase", frames=4)(tmp_path / "e").onnx_path
    rng = np.random.default_rng(0)
    root = tmp_path / "CASIA-B"
    seqs = []
    for k, pid in enumerate(("075", "076", "077")):
        for t in TYPES:
            for v in ("000", "090"):
                width = 20 + 12 * k + (6 if t.startswith("cl") else 0)
                _silhouettes(root / pid / t / v, width, rng)
                seqs.append(root / pid / t / v)
    _silhouettes(root / "075" / "xx-01" / "090", 20, rng)  # not in the protocol: skipped, and said so
    proc = run_cli("evaluate", "casia-b", str(root), str(engine), "--json", str(tmp_path / "r.json"))
    assert proc.returncode == 0, proc.stderr
    assert "probe sequences: 36 of 37 counted, 1 skipped (1 sequence type outside the protocol)" in proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    proc = run_cli("infer", str(engine), *map(str, seqs), "--out", str(tmp_path / "emb.npz"))
    assert proc.returncode == 0, proc.stderr
    emb, _ = results_io.read(tmp_path / "emb.npz").embeddings()
    lab = np.array([s.parts[-3] for s in seqs])
    typ = np.array([s.parts[-2] for s in seqs])
    view = np.array([s.parts[-1] for s in seqs])
    ref = opengait_single_view(emb, lab, typ, view)
    for cond in ("NM", "BG", "CL"):
        # both sides rank the same float32 embeddings with the same distance; rounding to 2 decimals as upstream
        assert report["conditions"][cond]["mean"] == pytest.approx(ref[cond], abs=1e-9)


def _coco_set(tmp_path, rng, n_images=3):
    images, anns = [], []
    (tmp_path / "images").mkdir()
    for i in range(n_images):
        img = (rng.random((240, 200, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(tmp_path / "images" / f"{i:012d}.jpg"), img)
        images.append({"id": i + 1, "file_name": f"{i:012d}.jpg", "height": 240, "width": 200})
        for p in range(2 if i else 1):
            x, y, w, h = 20 + 80 * p, 30, 70, 180
            kp = np.stack([x + rng.random(17) * w, y + rng.random(17) * h, np.full(17, 2)], 1)
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1, "bbox": [x, y, w, h],
                         "area": w * h * 0.6, "iscrowd": 0, "num_keypoints": 17,
                         "keypoints": [float(v) for v in kp.ravel()]})
    ann = {"images": images, "annotations": anns,
           "categories": [{"id": 1, "name": "person", "keypoints": [str(k) for k in range(17)], "skeleton": []}]}
    (tmp_path / "ann.json").write_text(json.dumps(ann))
    return tmp_path / "ann.json", ann


def pycocotools_stats(ann_file, results_file):
    pytest.importorskip("pycocotools", reason="pip install 'deploykit[eval]'")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO(str(ann_file))
    ev = COCOeval(gt, gt.loadRes(str(results_file)), "keypoints")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return ev.stats


def test_score_keypoints_equals_pycocotools_and_is_1_for_the_ground_truth(tmp_path):
    from deploykit.runtime.coco_eval import STATS, score_keypoints

    ann_file, ann = _coco_set(tmp_path, np.random.default_rng(1))
    perfect = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
               for a in ann["annotations"]]
    assert score_keypoints(ann_file, perfect)["AP"] == pytest.approx(1.0)
    rng = np.random.default_rng(2)
    noisy = [{**r, "keypoints": (np.asarray(r["keypoints"]) + rng.normal(0, 6, 51) * np.tile([1, 1, 0], 17)).tolist(),
              "score": float(rng.random())} for r in perfect]
    (tmp_path / "noisy.json").write_text(json.dumps(noisy))
    ours = score_keypoints(ann_file, tmp_path / "noisy.json")
    ref = pycocotools_stats(ann_file, tmp_path / "noisy.json")
    assert [ours[k] for k in STATS] == pytest.approx(list(ref), abs=0)
    assert 0 < ours["AP"] < 1  # the noise is large enough to cost AP: the comparison is not of two 1.0s


def test_coco_keypoints_cli_equals_pycocotools_on_its_results(tmp_path):
    pytest.importorskip("pycocotools", reason="pip install 'deploykit[eval]'")
    engine = OnnxFromModel("fastpose-res50")(tmp_path / "e").onnx_path
    ann_file, _ = _coco_set(tmp_path, np.random.default_rng(3))
    proc = run_cli("evaluate", "coco-keypoints", str(engine), "--ann", str(ann_file), "--images",
                   str(tmp_path / "images"), "--gt-boxes", "--results-out", str(tmp_path / "res.json"),
                   "--json", "-")
    assert proc.returncode == 0, proc.stderr
    assert "images: 3 of 3 counted, 0 skipped" in proc.stderr
    report = json.loads(proc.stdout)  # `--json -`: stdout is the JSON alone, the summary went to stderr
    res = json.loads((tmp_path / "res.json").read_text())
    assert len(res) == 5 and report["people"] == 5 and len(res[0]["keypoints"]) == 51
    ref = pycocotools_stats(ann_file, tmp_path / "res.json")
    assert [report[k] for k in ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")] == \
        pytest.approx(list(ref), abs=0)
    # detections instead of GT boxes, a low-score one dropped by --det-thr, one image without any, flip test on
    dets = [{"image_id": 2, "category_id": 1, "bbox": [20, 30, 70, 180], "score": 0.9},
            {"image_id": 2, "category_id": 1, "bbox": [100, 30, 70, 180], "score": 0.2},
            {"image_id": 3, "category_id": 1, "bbox": [18, 28, 74, 184], "score": 0.8}]
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    proc = run_cli("evaluate", "coco-keypoints", str(engine), "--ann", str(ann_file), "--images",
                   str(tmp_path / "images"), "--dets", str(tmp_path / "dets.json"), "--det-thr", "0.5", "--flip",
                   "--results-out", str(tmp_path / "res2.json"), "--json", str(tmp_path / "r2.json"))
    assert proc.returncode == 0, proc.stderr
    assert "images: 2 of 3 counted, 1 skipped (1 without a person box)" in proc.stderr
    report = json.loads((tmp_path / "r2.json").read_text())
    res = json.loads((tmp_path / "res2.json").read_text())
    assert report["people"] == 2 and [r["image_id"] for r in res] == [2, 3] and report["flip"] is True
    ref = pycocotools_stats(ann_file, tmp_path / "res2.json")
    assert report["AP"] == pytest.approx(ref[0], abs=0) and report["AR"] == pytest.approx(ref[5], abs=0)


@pytest.mark.slow  # exports RGA (ResNet-50): about a minute on 2 CPU cores
def test_market1501_cli_equals_the_rga_transcription(tmp_path):
    engine = OnnxFromModel("rga")(tmp_path / "e").onnx_path
    rng = np.random.default_rng(4)
    root = tmp_path / "Market-1501"
    colours = {pid: rng.integers(0, 255, 3) for pid in ("0001", "0002", "0003")}

    def crop(folder, name, colour):
        folder.mkdir(parents=True, exist_ok=True)
        img = np.clip(colour + rng.normal(0, 25, (128, 64, 3)), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / name), img)
        return f"{folder.name}/{name}"

    gallery, query = [], []
    for pid, col in colours.items():
        for c in (1, 2, 3):
            gallery.append(crop(root / "bounding_box_test", f"{pid}_c{c}s1_{c:06d}_01.jpg", col))
        query.append(crop(root / "query", f"{pid}_c1s1_000099_00.jpg", col))
    gallery.append(crop(root / "bounding_box_test", "0000_c2s1_000005_01.jpg", rng.integers(0, 255, 3)))
    gallery.append(crop(root / "bounding_box_test", "-1_c1s1_000007_01.jpg", colours["0001"]))
    query.append(crop(root / "query", "-1_c2s1_000008_00.jpg", colours["0002"]))
    proc = run_cli("evaluate", "market1501", str(root), str(engine), "--json", str(tmp_path / "r.json"))
    assert proc.returncode == 0, proc.stderr
    assert "queries: 3 of 4 counted, 1 skipped (1 junk identity -1)" in proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    q_files, g_files = sorted(query), sorted(gallery)
    for name, files in (("q", q_files), ("g", g_files)):
        proc = run_cli("infer", str(engine), *[str(root / f) for f in files], "--out", str(tmp_path / f"{name}.npz"))
        assert proc.returncode == 0, proc.stderr
    q = results_io.read(tmp_path / "q.npz").embeddings()[0]
    g = results_io.read(tmp_path / "g.npz").embeddings()[0]
    d = distance(q, g, "cosine").tolist()

    def parse(files):
        return [f.split("/")[1].split("_")[0] for f in files], [f.split("_c")[1][0] for f in files]

    (qid, qc), (gid, gc) = parse(q_files), parse(g_files)
    cmc, mAP, valid = rga_reference(d, qid, gid, qc, gc)
    assert valid == report["num_valid_queries"] == 3
    assert report["mAP"] == pytest.approx(mAP, abs=1e-9)  # same float32 embeddings, float64 distances
    assert [report["rank1"], report["rank5"], report["rank10"]] == pytest.approx([cmc[0], cmc[4], cmc[9]], abs=1e-12)
