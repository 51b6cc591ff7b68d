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
    # none passed: the most accurate (more gates passed, then the first gate's figure), not the reference
    t["onnxruntime"].update(gates_passed=0, rank=0.41)  # hrnet-w32 seeded: U8S8 centred cosine 0.41
    t["openvino"].update(gates_passed=0, rank=0.91)  # S8S8 0.91
    assert choose(t) == "openvino"
    t["onnxruntime"]["gates_passed"] = 1
    assert choose(t) == "onnxruntime"


def _two_engines(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "robustness"))
    from rb_helpers import tiny_model

    return {k: tiny_model(tmp_path / k) for k in ("a", "b")}


@pytest.mark.parametrize("first, retimed, kept", [
    ({"a": [10.0] * 5, "b": [10.5] * 5}, {"a": [12.0] * 15, "b": [9.0] * 15}, "b"),  # within 15%: re-timed, pooled
    ({"a": [10.0] * 5, "b": [20.0] * 5}, None, "a"),  # clearly apart: the first look decides
])
def test_near_equal_candidates_are_timed_again_before_one_is_kept(tmp_path, monkeypatch, first, retimed, kept):
    from deploykit.build import auto_cpu
    from deploykit.verify import timing

    looks = []

    def scripted(runners, feeds, *, rounds, duration, **_):
        looks.append((sorted(runners), rounds, duration))
        return {k: list(v) for k, v in (first if len(looks) == 1 else retimed).items() if k in runners}

    monkeypatch.setattr(timing, "time_interleaved", scripted)
    engines = _two_engines(tmp_path)
    table = auto_cpu.measure(engines["a"], engines, "fp32", seconds=1.0, samples=2, seed=0)
    assert all(m["passed"] for m in table.values())  # the same file twice: the FP32 gates hold
    assert auto_cpu.choose(table) == kept
    if retimed is None:
        assert len(looks) == 1 and not any(m.get("retimed") for m in table.values())
    else:
        assert looks[1] == (["a", "b"], 3 * auto_cpu.RETIME, 1.0 * auto_cpu.RETIME)
        assert all(m["retimed"] and m["samples"] == 20 for m in table.values())


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


def test_when_none_passes_the_most_accurate_is_kept_and_the_note_says_so(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from deploykit.build import auto_cpu
    from deploykit.build.build_engine import BuildResult

    engines = _two_engines(tmp_path)

    def builder(name):
        def build(onnx_path, man, opt, out_dir, calibration=None):
            man = {**mf.read(mf.manifest_path_for(engines[name])), "engine": {"backend": name}}
            return BuildResult(engines[name], mf.manifest_path_for(engines[name]), man, backend=name)
        return build

    table = {"a": {"p50_ms": 5.0, "passed": False, "gates_passed": 0, "rank": 0.41,
                   "worst": {"centred_cosine": 0.41, "signal_nsr": 2.2}},
             "b": {"p50_ms": 9.0, "passed": False, "gates_passed": 0, "rank": 0.91,
                   "worst": {"centred_cosine": 0.91, "signal_nsr": 0.4}}}
    monkeypatch.setattr(auto_cpu, "measure", lambda *a, **k: table)
    opt = SimpleNamespace(int8=True, seed=0, calib_data=None, threads=2)
    res = auto_cpu.build_fastest_cpu(engines["a"], {}, opt, tmp_path, {"a": builder("a"), "b": builder("b")})
    auto = mf.read(res.manifest_path)["engine"]["auto"]
    assert res.backend == "b" and auto["chosen"] == "b"
    assert auto["threads"] == 2 and "at 2 threads" in auto["how"]  # the count it was timed at is on record
    warn = [n for n in res.notes if "NO candidate passed" in n]
    assert warn and "centred_cosine 0.91" in warn[0] and "--calib-data" in warn[0]


def test_candidates_are_timed_at_the_threads_asked(tmp_path, monkeypatch):
    """`build-engine --threads N`: auto times each candidate at the count the engine will run with (the
    bench's 2 threads in benchmarks/cpu_backends.md); the FP32 reference keeps its default."""
    from deploykit.build import auto_cpu
    from deploykit.runtime import Engine

    seen, real = [], Engine.load

    def spy(path, *a, **k):
        seen.append((path, k.get("threads")))
        return real(path, *a, **k)

    monkeypatch.setattr(Engine, "load", staticmethod(spy))
    engines = _two_engines(tmp_path)
    auto_cpu.measure(engines["a"], engines, "fp32", seconds=0.2, samples=2, seed=0, threads=1)
    assert seen == [(engines["a"], None), (engines["a"], 1), (engines["b"], 1)]
    seen.clear()
    auto_cpu.measure(engines["a"], engines, "fp32", seconds=0.2, samples=2, seed=0)
    assert [t for _, t in seen] == [None, None, None]


def test_threads_below_one_are_refused_with_the_fix():
    from deploykit.errors import BadInputError

    with pytest.raises(BadInputError, match="--threads 0 is not allowed; use 1 or more"):
        BuildOptions(threads=0)
