"""Fast checks of `deploykit triton-repo` and `deploykit serve` without a server.

The manifests in tests/serve/data are what `deploykit export` wrote (schema 2) for fastpose-res50,
fastpose (the alphapose_v0 crop), rga, gaitset and pgfa with a dynamic batch; the configs depend on
the manifest only, so the "engine" beside each is a placeholder file. Every config.pbtxt is parsed
against Triton's own schema (tritonclient's model_config_pb2: in this interpreter if it has it, else
in the serve venv), and the ensembles' wiring is checked tensor by tensor.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deploykit import manifest as mf
from deploykit.errors import BadInputError
from deploykit.serve import server as srv_mod
from deploykit.serve.repo import write_repository

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[2]
SERVE_PY = Path(os.environ.get("DEPLOYKIT_SERVE_VENV", ROOT / ".venv-serve")) / "bin" / "python"

PARSE = """
import json, sys
from pathlib import Path
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2
out = {}
for cfg in sorted(Path(sys.argv[1]).glob("*/config.pbtxt")):
    msg = text_format.Parse(cfg.read_text(), model_config_pb2.ModelConfig())
    out[cfg.parent.name] = json_format.MessageToDict(msg, preserving_proto_field_name=True)
print(json.dumps(out))
"""


def parse_repo(repo: Path) -> dict:
    """{model: its config.pbtxt parsed by Triton's schema, as a dict}; a config that does not parse fails."""
    try:
        import tritonclient.grpc.model_config_pb2  # noqa: F401

        cmd = [sys.executable]
    except ImportError:
        if not SERVE_PY.exists():
            pytest.skip(f"no tritonclient here and no {SERVE_PY}: run `bash scripts/serve_env.sh` to parse the "
                        f"configs against Triton's schema")
        cmd = [str(SERVE_PY)]
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    out = subprocess.run([*cmd, "-c", PARSE, str(repo)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def engine(tmp: Path, name: str, dynamic: bool = True) -> Path:
    man = json.loads((DATA / f"{name}.manifest.json").read_text())
    if not dynamic:
        man["dynamic_batch"] = None
    e = tmp / f"{name}.onnx"
    e.write_bytes(b"placeholder: the configs come from the manifest")
    mf.write(mf.manifest_path_for(e), man)
    return e


def dims(t: dict) -> list[int]:
    return [int(d) for d in t.get("dims", [])]


def test_every_config_parses_and_matches_the_manifest(tmp_path):
    names = ["fastpose-res50", "rga", "gaitset"]
    notes: list[str] = []
    write_repository([engine(tmp_path, n) for n in names], tmp_path / "repo", gpu=False, notes=notes)
    cfg = parse_repo(tmp_path / "repo")
    assert notes == []
    assert sorted(cfg) == sorted(f"{n}{s}" for n in names for s in ("", "_onnxruntime", "_pre", "_post", "_ensemble"))
    for n in names:
        man = mf.read(tmp_path / f"{n}.manifest.json")
        for model in (n, f"{n}_onnxruntime"):
            c = cfg[model]
            assert int(c["max_batch_size"]) == 8 and c["dynamic_batching"]["preferred_batch_size"] == [4, 8]
            assert [(t["name"], dims(t)) for t in c["input"]] == [(s.name, list(s.shape[1:]))
                                                                  for s in mf.inputs_of(man)]
            assert [(t["name"], dims(t)) for t in c["output"]] == [(s.name, list(s.shape[1:]))
                                                                   for s in mf.outputs_of(man)]
        assert cfg[f"{n}_onnxruntime"]["platform"] == "onnxruntime_onnx"
        assert cfg[n]["backend"] == "python" and cfg[n]["parameters"]["engine_file"]["string_value"] == f"{n}.onnx"
        for stage in ("pre", "post"):
            c = cfg[f"{n}_{stage}"]
            assert c["backend"] == "python" and int(c.get("max_batch_size", 0)) == 0
            assert c["parameters"]["stage"]["string_value"] == f"{man['model']['family']}_{stage}"
            assert (tmp_path / "repo" / f"{n}_{stage}" / "1" / f"{n}.manifest.json").is_file()


@pytest.mark.parametrize("via,middle", [("python", ""), ("production", "_onnxruntime")])
def test_ensembles_are_wired_tensor_by_tensor(tmp_path, via, middle):
    """Each step reads every input of its model from an ensemble input or an earlier step's output,
    maps only tensors its model has, and the ensemble's outputs are all produced. The engine step is
    the Python-backend model, or with --ensemble-via production the onnxruntime one (GPU hosts)."""
    write_repository([engine(tmp_path, n) for n in ("fastpose-res50", "rga", "gaitset")], tmp_path / "repo",
                     ensemble_via=via)
    cfg = parse_repo(tmp_path / "repo")
    for ens in [m for m in cfg if m.endswith("_ensemble")]:
        c = cfg[ens]
        assert c["platform"] == "ensemble" and int(c.get("max_batch_size", 0)) == 0
        have = {t["name"] for t in c["input"]}
        steps = c["ensemble_scheduling"]["step"]
        assert [s["model_name"] for s in steps] == [ens.replace("_ensemble", s) for s in ("_pre", middle, "_post")]
        for s in steps:
            model = cfg[s["model_name"]]
            assert set(s["input_map"]) == {t["name"] for t in model["input"]}, s
            assert set(s["input_map"].values()) <= have, (s["model_name"], set(s["input_map"].values()) - have)
            assert set(s["output_map"]) <= {t["name"] for t in model["output"]}
            have |= set(s["output_map"].values())
        assert {t["name"] for t in c["output"]} <= have
    assert {t["name"] for t in cfg["gaitset_ensemble"]["output"]} == {"embeddings", "WINDOWS"}
    assert {t["name"] for t in cfg["fastpose-res50_ensemble"]["output"]} == {
        "KEYPOINTS", "KEYPOINT_SCORES", "BOXES_OUT", "BOX_SCORES", "SCORES"}


def test_static_engine_gets_max_batch_size_0_full_shapes_and_no_ensemble(tmp_path):
    notes: list[str] = []
    write_repository([engine(tmp_path, "gaitset", dynamic=False)], tmp_path / "repo", notes=notes)
    cfg = parse_repo(tmp_path / "repo")
    man = mf.read(tmp_path / "gaitset.manifest.json")
    for model in ("gaitset", "gaitset_onnxruntime"):
        assert int(cfg[model].get("max_batch_size", 0)) == 0 and "dynamic_batching" not in cfg[model]
        assert dims(cfg[model]["input"][0]) == list(mf.inputs_of(man)[0].shape)
    assert sorted(cfg) == ["gaitset", "gaitset_onnxruntime"]
    assert len(notes) == 1 and "--dynamic-batch" in notes[0]


def test_multi_input_engine_gets_no_ensemble(tmp_path):
    notes: list[str] = []
    names = write_repository([engine(tmp_path, "pgfa")], tmp_path / "repo", notes=notes)
    assert names == ["pgfa_onnxruntime", "pgfa"]
    assert len(notes) == 1 and "images" in notes[0] and "heatmaps" in notes[0]


@pytest.mark.parametrize("name", ["fastpose-res50", "fastpose"])
def test_pose_pre_post_split_equals_the_in_process_pipeline(name):
    """Pre + post across the process boundary (crop geometry as a float64 tensor) give exactly what
    `pose.pipeline.finish` gives on the in-process Crops: the same code, no lossy hop (np.array_equal)."""
    from deploykit.runtime.pose import TopDownConfig, crop_persons
    from deploykit.runtime.pose.pipeline import finish, resolve_nms
    from deploykit.serve.stages import ENGINE_INPUT, PosePost, PosePre

    man = mf.read(DATA / f"{name}.manifest.json")
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    boxes = np.array([[10, 20, 110, 220, 0.9], [14, 22, 112, 218, 0.8], [200, 30, 300, 230, 0.7]])
    pre = PosePre(man)(IMAGE=image, BOXES=boxes)
    cfg = TopDownConfig.from_manifest(man)
    crops = crop_persons(image, boxes[:, :4], cfg)
    assert np.array_equal(pre[ENGINE_INPUT], crops.inputs) and np.array_equal(pre["ROWS"], boxes)
    hh, hw = cfg.heatmap_size
    heat = rng.random((3, 17, hh, hw), dtype=np.float32)  # peaks near 1: NMS keeps people
    post = PosePost(man)(GEOMETRY=pre["GEOMETRY"], ROWS=pre["ROWS"], heatmaps=heat)
    people = finish({"heatmaps": heat}, crops, boxes, resolve_nms(man, "auto"))
    assert len(people) >= 1 and len(post["SCORES"]) == len(people)
    assert np.array_equal(post["KEYPOINTS"], np.asarray([p["keypoints"] for p in people]))
    assert np.array_equal(post["KEYPOINT_SCORES"], np.asarray([p["scores"] for p in people]))
    assert np.array_equal(post["BOXES_OUT"], np.asarray([p["box"] for p in people]))
    assert np.array_equal(post["SCORES"], np.asarray([p["score"] for p in people]))


def test_pose_pre_refuses_more_boxes_than_the_engine_batch_and_bad_tensors():
    from deploykit.serve.stages import PosePre

    pre = PosePre(mf.read(DATA / "fastpose-res50.manifest.json"))
    image = np.zeros((100, 100, 3), np.uint8)
    with pytest.raises(BadInputError, match="exceed the engine's dynamic batch max 8"):
        pre(IMAGE=image, BOXES=np.tile([[0, 0, 50, 50, 1.0]], (9, 1)))
    with pytest.raises(BadInputError, match=r"BOXES must be \[N, 5\]"):
        pre(IMAGE=image, BOXES=np.zeros((2, 4)))
    with pytest.raises(BadInputError, match="IMAGE must be"):
        pre(IMAGE=np.zeros((100, 100), np.uint8), BOXES=np.zeros((1, 5)))


def test_reid_post_normalises_the_manifest_embedding():
    from deploykit.serve.stages import ReidPost

    post = ReidPost(mf.read(DATA / "rga.manifest.json"))
    x = np.random.default_rng(2).normal(size=(3, 2048)).astype(np.float32)
    out = post(feat=x, feat_pre_bn=-x)["EMBEDDINGS"]
    # float32 normalisation: unit norm to float32 rounding (1e-6), direction of `feat` (not feat_pre_bn)
    assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-6) and (out * x > 0).all()


def _fake_layout(monkeypatch, tmp_path):
    stub = tmp_path / "triton_python_backend_stub"
    stub.write_bytes(b"")
    monkeypatch.setattr(srv_mod, "find_layout", lambda: srv_mod.Layout(Path("/bin/false"), stub, stub))
    monkeypatch.setattr(srv_mod, "linked_libpython", lambda s: Path("/usr/lib/libpython3.11-another-build.so.1.0"))


def test_serve_refuses_a_mismatched_interpreter_in_one_line_exit_2(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from deploykit.cli import main

    write_repository([engine(tmp_path, "gaitset")], tmp_path / "repo")
    _fake_layout(monkeypatch, tmp_path)
    res = CliRunner().invoke(main, ["serve", str(tmp_path / "repo")])
    lines = [x for x in (res.stderr or res.output).splitlines() if x.strip()]
    assert res.exit_code == 2, res.output
    assert len(lines) == 1 and "is not the one Triton's Python-backend stub links" in lines[0]
    assert "scripts/serve_env.sh" in lines[0]


def test_real_stub_refuses_this_interpreter_when_it_is_not_the_system_python():
    """The pytriton wheel's stub links /usr/lib's libpython3.11; the project venv's (pyenv) Python is another
    build, which the stub would run into '_recursion_count' errors with."""
    stubs = list((SERVE_PY.parent.parent / "lib").glob(
        "python3.11/site-packages/pytriton/tritonserver/python_backend_stubs/3.11/triton_python_backend_stub"))
    if not stubs:
        pytest.skip(f"no pytriton stub under {SERVE_PY.parent.parent}: run `bash scripts/serve_env.sh`")
    if Path(sys.executable).resolve() == Path("/usr/bin/python3.11").resolve():
        srv_mod.check_interpreter(stubs[0])  # the system build: accepted
    else:
        with pytest.raises(BadInputError, match="serve_env.sh"):
            srv_mod.check_interpreter(stubs[0])


def test_serve_on_a_folder_without_configs_is_refused(tmp_path):
    with pytest.raises(BadInputError, match="not a model repository"):
        srv_mod.Server(tmp_path)


def test_openvino_engine_gets_triton_openvino_backend_on_cpu(tmp_path):
    """`build-engine --backend openvino` writes NAME.openvino.PREC.onnx with `engine.backend: openvino` in its
    manifest: the production model is Triton's openvino backend reading that ONNX as 1/model.onnx, on the CPU
    (the backend has no GPU), beside the Python-backend model; with --ensemble-via production the ensemble's
    engine step is the openvino model."""
    man = json.loads((DATA / "gaitset.manifest.json").read_text())
    man["engine"] = {"backend": "openvino", "precision": "fp32", "device": "CPU"}
    e = tmp_path / "gaitset.openvino.fp32.onnx"
    e.write_bytes(b"placeholder openvino engine")
    mf.write(mf.manifest_path_for(e), man)
    names = write_repository([e], tmp_path / "repo", gpu=True, ensemble_via="production")
    cfg = parse_repo(tmp_path / "repo")
    name = "gaitset_openvino_fp32"
    prod = f"{name}_openvino"
    assert names[:2] == [prod, name] and sorted(cfg) == sorted(names)
    c = cfg[prod]
    assert c["backend"] == "openvino" and "platform" not in c and c["default_model_filename"] == "model.onnx"
    assert [g["kind"] for g in c["instance_group"]] == ["KIND_CPU"]
    assert int(c["max_batch_size"]) == 8 and [t["name"] for t in c["input"]] == ["sils"]
    assert (tmp_path / "repo" / prod / "1" / "model.onnx").read_bytes() == e.read_bytes()
    assert sorted(p.name for p in (tmp_path / "repo" / prod / "1").iterdir()) == ["model.onnx"]
    py = cfg[name]
    assert py["backend"] == "python" and py["parameters"]["engine_file"]["string_value"] == e.name
    assert (tmp_path / "repo" / name / "1" / e.name).is_file()
    assert (tmp_path / "repo" / name / "1" / mf.manifest_path_for(e).name).is_file()
    steps = cfg[f"{name}_ensemble"]["ensemble_scheduling"]["step"]
    assert [s["model_name"] for s in steps] == [f"{name}_pre", prod, f"{name}_post"]
