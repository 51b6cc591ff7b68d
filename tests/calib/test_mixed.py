"""The coarse-to-fine sweep for large models (calib/mixed.py): scope units, then the layers of the
units it keeps float; the automatic decision takes it above AUTO_MAX_CANDIDATES candidates."""

import dataclasses

import onnx
import pytest

from tiny_graphs import chain_feeds, tiny_scoped_chain
from deploykit.calib import mixed, placement, qdq, sensitivity as S
from deploykit.calib.ranges import RangeCollector

BAD = "/block1/conv2/Conv"


def test_scope_units_group_by_the_deepest_scope_that_fits():
    names = [f"/block{b}/conv{c}/Conv" for b in range(3) for c in (1, 2)]
    assert mixed.scope_units(names, 3) == [[0, 1], [2, 3], [4, 5]]  # depth 1: one unit per block
    assert mixed.scope_units(names, 6) == [[k] for k in range(6)]   # depth 2: one per conv
    assert mixed.scope_units(names, 2) == [[0, 1, 2], [3, 4, 5]]    # too many scopes: even chunks
    assert mixed.scope_units(["dk_Conv_0", "dk_Conv_1", "dk_Conv_2"], 2) == [[0, 1], [2]]


@pytest.fixture
def clipped(tmp_path):
    model = tiny_scoped_chain(tmp_path / "chain.onnx")
    rg = RangeCollector(model).collect(chain_feeds(8)).ranges("max")
    name = "/block1/relu1/Relu_output_0"  # BAD's input clipped to 5 %: quantizing BAD must hurt
    r = rg.tensors[name]
    rg.tensors[name] = dataclasses.replace(r, amax=r.amax * 0.05, hi=r.amax * 0.05)
    return model, rg


def test_automatic_decision_above_the_candidate_limit_finds_the_layer(clipped, monkeypatch):
    model, rg = clipped
    monkeypatch.setattr(S, "AUTO_MAX_CANDIDATES", 2)  # 6 candidates: the coarse path
    monkeypatch.setattr(mixed, "MAX_UNITS", 3)        # one unit per block
    feeds = chain_feeds(6, seed=11)
    report, full, how = mixed.decide(model, rg, feeds, target=0.01)
    assert "coarse-to-fine" in how and full > 0.1
    # the units (3 blocks) are swept first; block1 is kept, then refined to the one conv that hurts
    units = [e for e in report.layers if e.members and len(e.members) == 2]
    assert len(units) == 3 and max(units, key=lambda e: e.error).members == ("/block1/conv1/Conv", BAD)
    assert report.float_nodes == [BAD]
    # tolerance: the target itself (NSR 0.01, about centred cosine 0.995), as the choice promises
    assert report.final_nsr <= 0.01 < report.full_int8_nsr
    assert report.to_json()["met_target"] is True


def test_the_float_layer_has_no_qdq_on_its_inputs_in_s8s8(clipped, tmp_path):
    model, rg = clipped
    out = qdq.quantize(model, rg, "s8s8", tmp_path / "m.onnx", exclude_nodes=[BAD])
    m = onnx.load(str(out))
    producers = {o: n for n in m.graph.node for o in n.output}
    conv = next(n for n in m.graph.node if n.name == BAD)
    assert all(producers.get(i) is None or producers[i].op_type != "DequantizeLinear" for i in conv.input)
    others = [n for n in m.graph.node if n.op_type == "Conv" and n.name != BAD]
    assert all(producers[n.input[0]].op_type == "DequantizeLinear" for n in others)  # the rest stays INT8
    assert placement.violations(m, skips=placement.residual_skips(onnx.load(str(model)))) == []


def test_the_automatic_trigger_is_the_int8_parity_gate():
    # the sweep's NSR is a power ratio, the gate's signal_nsr a norm ratio: trigger = gate squared
    from deploykit.verify import gates

    assert S.AUTO_TRIGGER_NSR == pytest.approx(gates.INT8_NSR ** 2)


def test_float_cap_lets_small_models_keep_a_few_layers():
    assert S.float_cap(11, 0.25) == 5    # gaitset: 2 by the fraction alone, which missed (see the constant)
    assert S.float_cap(4, 0.25) == 2     # never more than half
    assert S.float_cap(199, 0.25) == 49  # large models: the fraction
    assert S.float_cap(1, 0.25) == 1
