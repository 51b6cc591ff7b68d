"""Verified load (issue 11 item 2), malformed manifests (item 7), one manifest per artifact (issue 13 bug 1)
and the Engine's lifecycle under threads (item 5)."""

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from rb_helpers import tiny, tiny_model  # noqa: F401  (fixture)

from deploykit import artifact_set, manifest as mf
from deploykit.errors import BadInputError
from deploykit.runtime import Engine
from deploykit.runtime.engine import EngineClosedError

GOOD_SPEC = {"name": "x", "shape": [1, 3, 16, 16], "dtype": "float32"}


def _man(tiny_path: Path) -> Path:
    return mf.manifest_path_for(tiny_path)


def _edit(tiny_path, **changes):
    p = _man(tiny_path)
    d = json.loads(p.read_text())
    d.update(changes)
    p.write_text(json.dumps(d))
    return p


@pytest.mark.parametrize("text, needle", [
    ("[1, 2]", "holds a JSON list, expected an object"),
    ('"just a string"', "holds a JSON str"),
    ("{not json", "is not valid JSON"),
    ("", "is not valid JSON"),
    ('{"inputs": [], "outputs": []}', "has no schema_version"),
    ('{"schema_version": "1"}', "schema_version '1', expected a positive int"),
    ('{"schema_version": 99}', "upgrade deploykit"),
    ('{"schema_version": 1, "outputs": []}', "'inputs' is missing"),
    ('{"schema_version": 1, "inputs": "x", "outputs": []}', "'inputs' is 'x'"),
    ('{"schema_version": 1, "inputs": [{"shape": [1]}], "outputs": [{"name": "y", "shape": [1]}]}',
     r"inputs\[0\] is malformed"),
    ('{"schema_version": 1, "inputs": [{"name": "x", "shape": ["a"]}], "outputs": [{"name": "y", "shape": [1]}]}',
     "is not a list of ints"),
    ('{"schema_version": 1, "inputs": [{"name": "x", "shape": [-1]}], "outputs": [{"name": "y", "shape": [1]}]}',
     "non-positive dim"),
    ('{"schema_version": 1, "inputs": [{"name": "x", "shape": [1], "dtype": "int8"}], '
     '"outputs": [{"name": "y", "shape": [1]}]}', "dtype 'int8' is not one of"),
])
def test_malformed_manifests_are_one_line_bad_input(tiny, text, needle):
    _man(tiny).write_text(text)
    with pytest.raises(BadInputError, match=needle) as exc:
        Engine.load(tiny)
    assert str(_man(tiny)) in str(exc.value) and "\n" not in str(exc.value)


def test_binary_garbage_manifest(tiny):
    _man(tiny).write_bytes(bytes(range(256)))
    with pytest.raises(BadInputError, match="is not valid JSON"):
        Engine.load(tiny)


def test_a_manifest_of_another_model_is_refused_naming_both_files(tmp_path, tiny):
    other = tiny_model(tmp_path / "other", name="tiny", seed=1)
    _man(tiny).write_text(_man(other).read_text())  # the other export's manifest beside this ONNX
    with pytest.raises(BadInputError, match=r"tiny\.onnx does not match its manifest tiny\.manifest\.json: sha256") \
            as exc:
        Engine.load(tiny)
    assert "re-export or rebuild" in str(exc.value) and "verify=False" in str(exc.value)


def test_io_specs_are_checked_even_when_the_sha256_fits(tiny):
    _edit(tiny, outputs=[{"name": "y", "shape": [1, 8, 16, 16], "dtype": "float32"}])
    with pytest.raises(BadInputError, match=r"its outputs are \[\('y', \[1, 4, 16, 16\], 'float32'\)\]"):
        Engine.load(tiny)


def test_a_corrupt_onnx_fails_at_load_in_one_line(tiny):
    tiny.write_bytes(b"\x08\x07garbage" * 10)
    _edit(tiny, onnx_sha256=mf.sha256_file(tiny))  # even a manifest that agrees cannot make it loadable
    with pytest.raises(BadInputError, match="is not a readable ONNX model .*re-export it"):
        Engine.load(tiny)


def test_a_truncated_onnx_is_refused_by_its_sha256(tiny):
    tiny.write_bytes(tiny.read_bytes()[:100])
    with pytest.raises(BadInputError, match="does not match its manifest"):
        Engine.load(tiny)


def test_verify_false_opts_out(tmp_path, tiny):
    other = tiny_model(tmp_path / "other", seed=1)
    _man(tiny).write_text(_man(other).read_text())
    eng = Engine.load(tiny, verify=False)
    assert eng.infer({"x": np.zeros((1, 3, 16, 16), np.float32)})["y"].shape == (1, 4, 16, 16)


def test_a_manifest_without_the_artifacts_sha256_is_refused(tiny):
    d = json.loads(_man(tiny).read_text())
    d.pop("onnx_sha256")
    _man(tiny).write_text(json.dumps(d))
    with pytest.raises(BadInputError, match="records no sha256 of tiny.onnx"):
        Engine.load(tiny)
    Engine.load(tiny, verify=False)


def test_a_half_committed_set_does_not_load(tiny):
    stage = tiny.parent / f"{artifact_set.STAGE_PREFIX}tiny.dead"
    stage.mkdir()
    (stage / artifact_set.COMMIT).write_text(json.dumps({"order": ["tiny.onnx", "tiny.manifest.json"]}))
    (stage / "tiny.manifest.json").write_text("{}")
    (stage / "tiny.onnx").write_bytes(b"")
    Engine.load(tiny)  # a complete stage of which nothing moved yet: the folder still holds the old set
    (stage / "tiny.onnx").unlink()  # now tiny.onnx was moved, its manifest not
    with pytest.raises(BadInputError, match="part of an interrupted write"):
        Engine.load(tiny)


@pytest.mark.parametrize("a, b", [("m.int8.onnx", "m.int8.plan"), ("m.fp32.onnx", "m.fp32.plan"),
                                  ("m.fp16.onnx", "m.fp16.plan"), ("m.onnx", "m.plan")])
def test_every_artifact_has_its_own_manifest_name(a, b):
    assert mf.manifest_path_for(a) != mf.manifest_path_for(b)
    assert mf.manifest_path_for("m.int8.onnx").name == "m.int8.manifest.json"  # ONNX names unchanged
    assert mf.manifest_path_for("m.int8.plan").name == "m.int8.plan.manifest.json"


def test_an_old_style_plan_manifest_is_used_only_if_it_describes_the_plan(tmp_path):
    plan = tmp_path / "m.int8.plan"
    plan.write_bytes(b"plan bytes")
    spec = {"inputs": [GOOD_SPEC], "outputs": [{"name": "y", "shape": [1, 4], "dtype": "float32"}]}
    mf.write(tmp_path / "m.int8.manifest.json", {**spec, "onnx_sha256": "0" * 64,
                                                 "engine": {"backend": "onnxruntime"}})  # the ONNX engine's
    with pytest.raises(BadInputError, match="records no sha256 of m.int8.plan"):
        Engine.load(plan)
    mf.write(tmp_path / "m.int8.manifest.json", {**spec, "engine": {"backend": "tensorrt",
                                                                    "plan_sha256": mf.sha256_file(plan)}})
    assert Engine.load(plan).backend == "tensorrt"


class _Counting(Engine):
    opened = 0

    def _activate(self):
        import time

        time.sleep(0.05)  # widen the window in which an unlocked activate would open twice
        type(self).opened += 1

    def _deactivate(self):
        pass

    def _infer(self, feeds):
        return {"y": np.zeros((1, 4, 16, 16), np.float32)}


def _counting(tiny):
    _Counting.opened = 0
    return _Counting(tiny, mf.read(_man(tiny)))


def test_activate_from_8_threads_opens_one_session(tiny):
    eng = _counting(tiny)
    feeds = {"x": np.zeros((1, 3, 16, 16), np.float32)}
    threads = [threading.Thread(target=eng.infer, args=(feeds,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _Counting.opened == 1


def test_infer_after_deactivate_says_the_engine_is_closed(tiny):
    eng = Engine.load(tiny)
    feeds = {"x": np.zeros((1, 3, 16, 16), np.float32)}
    with eng:
        eng.infer(feeds)
    with pytest.raises(EngineClosedError, match="the engine is closed"):
        eng.infer(feeds)
    eng.activate()  # an explicit activate reopens it
    assert eng.infer(feeds)["y"].shape == (1, 4, 16, 16)
