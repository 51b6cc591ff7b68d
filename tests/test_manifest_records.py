"""Typed manifest records (issue 9 item 3): specs write them, runtimes read them, schema 1 still loads.

tests/data/manifests_v1/ holds manifests as deploykit with schema 1 wrote them (prose resize,
decoder aliases, the NMS shift beside the NMS record, no embedding output), generated from that
version's model specs.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from deploykit import manifest as mf
from deploykit import models
from deploykit.errors import BadInputError
from deploykit.records import (Decoder, EmbeddingPostprocess, HeatmapPostprocess, ImagePreprocess, Metric, PoseNMS,
                               Resample, SilhouettePreprocess, postprocess_of, preprocess_of)
from deploykit.runtime.match.metrics import METRICS
from deploykit.runtime.pose import TopDownConfig, pose_nms
from deploykit.runtime.pose.pipeline import resolve_nms
from deploykit.runtime.reid import ReidConfig

V1 = Path(__file__).parent / "data" / "manifests_v1"
V1_NAMES = sorted(p.name[: -len(".manifest.json")] for p in V1.glob("*.manifest.json"))


def _v2(name):
    spec = models.spec(name)
    return json.loads(json.dumps({"schema_version": mf.SCHEMA_VERSION, "preprocess": dict(spec.preprocess),
                                  "postprocess": dict(spec.postprocess),
                                  "outputs": [{"name": o.name} for o in spec.outputs]}))  # a deep copy


def _typed(rec):
    """The fields the runtime acts on (everything but the prose in `extra`)."""
    d = {f.name: getattr(rec, f.name) for f in dataclasses.fields(rec) if f.name != "extra"}
    return {k: (_typed(v) if dataclasses.is_dataclass(v) else v) for k, v in d.items()}


def test_fixtures_cover_every_record_kind():
    assert {"pgfa", "rga", "fastpose", "hrnet-w32", "prtr-res50", "gaitgl", "gaitedge"} <= set(V1_NAMES)


@pytest.mark.parametrize("name", V1_NAMES)
def test_v1_manifest_loads_with_the_same_typed_records_as_the_current_spec(name):
    v1 = json.loads((V1 / f"{name}.manifest.json").read_text())
    assert v1["schema_version"] == 1 and "resample" not in v1["preprocess"]
    now = _v2(name)
    assert _typed(preprocess_of(v1)) == _typed(preprocess_of(now))
    assert _typed(postprocess_of(v1)) == _typed(postprocess_of(now))


def test_v1_read_upgrades_records_so_derived_manifests_are_valid_v2(tmp_path):
    data = mf.read(V1 / "pgfa.manifest.json")
    assert data["preprocess"]["resample"] == "bicubic" and data["postprocess"]["output"] == "global_feat+part_feats"
    out = tmp_path / "pgfa.manifest.json"
    mf.write(out, {k: v for k, v in data.items() if k != "schema_version"})  # as the engine-manifest writer does
    again = mf.read(out)
    assert again["schema_version"] == mf.SCHEMA_VERSION == 2
    assert ReidConfig.from_manifest(again) == ReidConfig.preset("pgfa")


@pytest.mark.parametrize("name", models.names())
def test_every_spec_writes_typed_records_that_round_trip(name):
    man = _v2(name)
    pre, post = preprocess_of(man), postprocess_of(man)  # strict: schema 2 needs every typed field
    assert isinstance(pre, (ImagePreprocess, SilhouettePreprocess))
    assert isinstance(post, (HeatmapPostprocess, EmbeddingPostprocess))
    assert type(pre).from_json(pre.to_json(), strict=True) == pre
    assert json.loads(json.dumps(post.to_json())) == dict(models.spec(name).postprocess)


def test_reid_resample_comes_from_the_enum_not_the_prose():
    man = _v2("pgfa")
    man["preprocess"]["resize"] = "a bilinear resize, says the prose"
    assert ReidConfig.from_manifest(man).resample == "bicubic"
    man["preprocess"]["resample"] = "bilinear"
    assert ReidConfig.from_manifest(man).resample == "bilinear"
    assert ReidConfig.from_manifest(_v2("rga")) == ReidConfig.preset("rga")


def test_pose_config_reads_decoder_crop_and_nms_from_records():
    cfg = TopDownConfig.from_manifest(_v2("fastpose"))
    assert cfg == TopDownConfig.preset("alphapose_v0")  # old FastPose: its crop, decoder, no flip shift
    assert TopDownConfig.from_manifest(_v2("hrnet-w32")) == TopDownConfig.preset("hrnet", channels=17)
    assert postprocess_of(_v2("hrnet-w32")).pose_nms is None and resolve_nms(_v2("hrnet-w32")) is None
    old, new = resolve_nms(_v2("fastpose")), resolve_nms(_v2("fastpose-res50"))
    assert old == PoseNMS(output_shift_px=-0.3) and new == PoseNMS(output_shift_px=0.0)


def _people(n=4, k=17, seed=0):
    rng = np.random.default_rng(seed)
    boxes = np.array([[10, 10, 110, 210]] * n, float) + rng.uniform(0, 40, (n, 1))
    kp = rng.uniform(20, 100, (n, k, 2))
    return boxes, rng.uniform(0.5, 1, n), kp, rng.uniform(0.2, 1, (n, k))


def test_pose_nms_runs_with_the_recorded_parameters():
    boxes, bs, kp, ks = _people()
    man = _v2("fastpose")
    recorded = resolve_nms(man)
    got = pose_nms(boxes, bs, kp, ks, variant="master", params=recorded)
    unshifted = pose_nms(boxes, bs, kp, ks, variant="master", params=dataclasses.replace(recorded, output_shift_px=0.0))
    # the recorded -0.3 px shift is applied even though the variant argument says "master"
    np.testing.assert_allclose(got.keypoints, unshifted.keypoints - 0.3, atol=1e-12)
    man["postprocess"]["pose_nms"]["score_thresh"] = 1.5  # above every score: the recorded threshold is used
    assert len(pose_nms(boxes, bs, kp, ks, params=resolve_nms(man))) == 0 < len(got)


def test_metric_enum_is_the_metric_registry():
    assert sorted(m.value for m in Metric) == sorted(METRICS)


@pytest.mark.parametrize("edit, field", [
    (lambda m: m["preprocess"].update(resample="lanczos"), "preprocess.resample"),
    (lambda m: m["preprocess"].pop("resample"), "preprocess.resample is missing"),
    (lambda m: m["preprocess"].update(size_hw=[384]), "preprocess.size_hw"),
    (lambda m: m["preprocess"].update(std=[0.2, 0.0, 0.2]), "preprocess.std"),
    (lambda m: m["preprocess"].update(color="gray"), "preprocess.color"),
    (lambda m: m["postprocess"].update(metric="hamming"), "postprocess.metric"),
    (lambda m: m["postprocess"].update(output="logits"), "postprocess.output"),
])
def test_bad_reid_records_name_the_field(tmp_path, edit, field):
    _bad_record(tmp_path, "pgfa", edit, field)


@pytest.mark.parametrize("edit, field", [
    (lambda m: m["postprocess"].update(decoder="soft-argmax"), "postprocess.decoder"),
    (lambda m: m["postprocess"]["pose_nms"].update(gamma="high"), "postprocess.pose_nms.gamma"),
    (lambda m: m["postprocess"]["pose_nms"].update(sigma=1.0), "postprocess.pose_nms"),
    (lambda m: m["postprocess"].update(flip_pairs=[[1]]), "postprocess.flip_pairs"),
    (lambda m: m["preprocess"]["crop"].update(method="letterbox"), "preprocess.crop.method"),
    (lambda m: m["postprocess"].update(kind="segmentation"), "postprocess.kind"),
])
def test_bad_pose_records_name_the_field(tmp_path, edit, field):
    _bad_record(tmp_path, "fastpose", edit, field)


def test_bad_silhouette_record_names_the_field(tmp_path):
    _bad_record(tmp_path, "gaitgl", lambda m: m["preprocess"].update(cutting=-2), "preprocess.cutting")


def _bad_record(tmp_path, name, edit, field):
    spec = models.spec(name)
    man = {"model": {"name": name}, "inputs": [t.to_json() for t in spec.input_specs()],
           "outputs": [{"name": o.name, "shape": [1]} for o in spec.outputs],
           "preprocess": json.loads(json.dumps(dict(spec.preprocess))),
           "postprocess": json.loads(json.dumps(dict(spec.postprocess)))}
    edit(man)
    path = tmp_path / f"{name}.manifest.json"
    mf.write(path, man)
    with pytest.raises(BadInputError, match=field.replace(".", r"\.")) as info:
        mf.read(path)
    assert str(path) in str(info.value)  # and the file


def test_decoder_aliases_are_one_table():
    # what schema 1 wrote and upstream's names resolve to the one Decoder the runtime runs
    assert {postprocess_of({"postprocess": {"decoder": d}}).decoder for d in ("hrnet", "alphapose", "quarter")} == {
        Decoder.QUARTER}
    assert TopDownConfig((256, 192), decoder="prtr_hungarian").decoder == "prtr"
    assert ImagePreprocess.from_json({"size_hw": [8, 8], "resize": "PIL BICUBIC"}).resample is Resample.BICUBIC
