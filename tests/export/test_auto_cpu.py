"""`--backend auto` on a CPU builds each CPU backend, measures them, keeps the fastest accurate one."""

import pytest

pytest.importorskip("openvino", reason="openvino is not installed (pip install 'deploykit[openvino]')")

from deploykit import manifest as mf  # noqa: E402
from deploykit.export import OnnxFromModel  # noqa: E402
from deploykit.build.auto_cpu import choose  # noqa: E402
from deploykit.build.build_engine import BuildOptions, EngineFromOnnx  # noqa: E402


def test_choice_is_the_fastest_that_passes():
    t = {"onnxruntime": {"p50_ms": 9.0, "passed": True}, "openvino": {"p50_ms": 4.0, "passed": True}}
    assert choose(t) == "openvino"
    t["openvino"]["passed"] = False  # faster but inaccurate: never kept
    assert choose(t) == "onnxruntime"
    t["onnxruntime"]["passed"] = False
    assert choose(t) == "onnxruntime"  # none passed: the reference backend, and parity will say so


def test_auto_records_the_measurements(tmp_path):
    res0 = OnnxFromModel("gaitset", frames=4)(tmp_path)
    res = EngineFromOnnx(res0.onnx_path, BuildOptions(progress=False), backend="auto")(tmp_path)
    auto = mf.read(res.manifest_path)["engine"]["auto"]
    assert set(auto["candidates"]) == {"onnxruntime", "openvino"}
    for m in auto["candidates"].values():
        # FP32 in two libraries: the FP32 parity gates hold (plain cosine >= 0.99999, max_rel <= 1e-4)
        assert m["samples"] >= 3 and m["p50_ms"] > 0 and m["passed"]
        assert m["worst"]["cosine"] >= 0.99999 and m["worst"]["max_rel"] <= 1e-4
    fastest = min(auto["candidates"], key=lambda k: auto["candidates"][k]["p50_ms"])
    assert auto["chosen"] == fastest == res.backend
    other = "onnxruntime" if fastest == "openvino" else "openvino"
    assert res.extras[f"candidate-{other}"].is_file()
    assert any(n.startswith("auto: kept") for n in res.notes)
