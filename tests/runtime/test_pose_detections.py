"""Detection files for top-down pose, the manifest's pose NMS, and COCO keypoint records."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from deploykit.errors import BadInputError
from deploykit.runtime.pose.detections import Detections, Frame, image_id
from deploykit.runtime.pose.nms import PoseNMSParams
from deploykit.runtime.pose.pipeline import coco_record, nms_params, resolve_nms

SHAPE = (480, 640, 3)


def _write(tmp_path, data, name="d.json"):
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


def test_coco_results_match_by_stem_number_with_scores_threshold_and_person_only(tmp_path):
    dets = [{"image_id": 397133, "bbox": [10, 20, 100, 200], "score": 0.9, "category_id": 1},
            {"image_id": 397133, "bbox": [300, 40, 50, 100], "score": 0.2, "category_id": 1},
            {"image_id": 397133, "bbox": [0, 0, 30, 30], "score": 0.99, "category_id": 3},  # a car
            {"image_id": 5, "bbox": [1, 1, 5, 5], "score": 0.5, "category_id": 1}]
    d = Detections(_write(tmp_path, dets), det_thr=0.3)
    rows = d.for_frame(Frame(Path("000000397133.jpg")), 0, SHAPE)
    np.testing.assert_array_equal(rows, [[10, 20, 110, 220, 0.9]])  # [x, y, w, h] -> corners, score kept
    assert len(Detections(_write(tmp_path, dets)).for_frame(Frame(Path("000000397133.jpg")), 0, SHAPE)) == 2
    assert len(d.for_frame(Frame(Path("other.jpg")), 1, SHAPE)) == 0  # no entry: nobody detected
    assert image_id(Frame(Path("000000397133.jpg"))) == 397133


def test_ann_maps_ids_to_file_names(tmp_path):
    ann = _write(tmp_path, {"images": [{"id": 7, "file_name": "val/street.jpg"}]}, "ann.json")
    d = Detections(_write(tmp_path, [{"image_id": 7, "bbox": [1, 2, 3, 4], "score": 0.7}]), ann=ann)
    np.testing.assert_array_equal(d.for_frame(Frame(Path("x/street.jpg")), 0, SHAPE), [[1, 2, 4, 6, 0.7]])
    assert image_id(Frame(Path("street.jpg")), d.name_to_id) == 7


def test_mapping_and_mmdet_lists_and_single_list(tmp_path):
    m = Detections(_write(tmp_path, {"a.jpg": [[1, 2, 30, 40, 0.8], [5, 5, 50, 60]]}))
    np.testing.assert_array_equal(m.for_frame(Frame(Path("a.jpg")), 0, SHAPE)[:, 4], [0.8, 1.0])
    # mmdet: per image, per class; class 0 is person
    mm = Detections(_write(tmp_path, [[[[1, 1, 9, 9, 0.6]], [[2, 2, 4, 4, 0.9]]], []]))
    np.testing.assert_array_equal(mm.for_frame(Frame(Path("a.jpg")), 0, SHAPE), [[1, 1, 9, 9, 0.6]])
    assert len(mm.for_frame(Frame(Path("b.jpg")), 1, SHAPE)) == 0
    video = Detections(_write(tmp_path, {"3": [[1, 1, 9, 9, 0.5]]}))
    assert len(video.for_frame(Frame(Path("walk.mp4"), 3), 0, SHAPE)) == 1
    single = Detections(_write(tmp_path, [[1, 1, 9, 9]]))
    with pytest.raises(BadInputError, match="single image"):
        single.for_frame(Frame(Path("b.jpg")), 1, SHAPE)


@pytest.mark.parametrize("data,msg", [({"a.jpg": [["10", "20", "30", "40"]]}, "are strings"),
                                      ([{"bbox": [1, 2, 3, 4]}], "lacks 'bbox' or 'image_id'"),
                                      ({"a.jpg": [[1, 2, 3]]}, r"shape \[1, 3\]"), ("boxes", "JSON str")])
def test_bad_box_files_are_one_line(tmp_path, data, msg):
    with pytest.raises(BadInputError, match=msg) as info:
        Detections(_write(tmp_path, data)).for_frame(Frame(Path("a.jpg")), 0, SHAPE)
    assert "\n" not in str(info.value)


def test_off_image_boxes_are_skipped_with_a_warning(tmp_path, caplog):
    d = Detections(_write(tmp_path, {"a.jpg": [[700, 10, 800, 100], [-50, -50, -1, -1], [600, 400, 700, 500, 0.5]]}))
    with caplog.at_level(logging.WARNING):
        rows = d.for_frame(Frame(Path("a.jpg")), 0, SHAPE)
    np.testing.assert_array_equal(rows, [[600, 400, 700, 500, 0.5]])  # partly inside: kept
    assert sum("wholly outside" in r.message for r in caplog.records) == 2
    with pytest.raises(BadInputError, match="x2 < x1"):
        Detections(_write(tmp_path, {"a.jpg": [[50, 10, 20, 100]]})).for_frame(Frame(Path("a.jpg")), 0, SHAPE)


def test_nms_parameters_come_from_the_manifest():
    rec = {"kind": "alphapose_parametric", "gamma": 10.0, "score_thresh": 0.5}
    assert nms_params({"postprocess": {"pose_nms": rec}}) == PoseNMSParams(gamma=10.0, score_thresh=0.5)
    assert resolve_nms({"postprocess": {}}, "auto") is None
    assert resolve_nms({"postprocess": {}}, "on") == PoseNMSParams()
    assert resolve_nms({"postprocess": {"pose_nms": rec}}, "off") is None
    with pytest.raises(BadInputError, match="does not know"):
        nms_params({"postprocess": {"pose_nms": {"kind": "oks"}}})


def test_coco_record_layout():
    person = {"keypoints": [[1.0, 2.0]] * 17, "scores": [0.5] * 17, "score": 0.7}
    r = coco_record(42, person)
    assert r["image_id"] == 42 and r["category_id"] == 1 and r["score"] == 0.7
    assert len(r["keypoints"]) == 51 and r["keypoints"][:3] == [1.0, 2.0, 0.5]
