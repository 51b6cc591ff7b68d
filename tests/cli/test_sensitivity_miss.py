"""`build-engine --sensitivity` that misses its own target fails in one line, unless --allow-miss."""

import pytest

from deploykit.calib.sensitivity import SensitivityMiss
from deploykit.cli.build_cmd import _sensitivity_outcome


def _mixed(final, target=0.01):
    return {"float_nodes": ["a"], "sensitivity": {"final_nsr": final, "target_nsr": target, "met_target": final <= target,
                                                   "float_nodes": ["a"], "candidates": 12, "max_float_fraction": 0.25}}


def test_asked_and_missed_fails_with_one_line():
    with pytest.raises(SensitivityMiss) as exc:
        _sensitivity_outcome(_mixed(12.37), asked=True, allow_miss=False)
    msg = str(exc.value)
    assert "12.4 misses the target 0.01" in msg and "--allow-miss" in msg and "\n" not in msg
    assert SensitivityMiss.exit_code == 1


def test_allow_miss_and_automatic_only_warn(capsys):
    _sensitivity_outcome(_mixed(12.37), asked=True, allow_miss=True)
    assert "accepted: --allow-miss" in capsys.readouterr().err
    _sensitivity_outcome(_mixed(12.37), asked=False, allow_miss=False)  # the automatic sweep: a warning
    assert "misses the target" in capsys.readouterr().err


def test_met_target_says_nothing(capsys):
    _sensitivity_outcome(_mixed(0.005), asked=True, allow_miss=False)
    _sensitivity_outcome({"float_nodes": [], "sensitivity": None}, asked=True, allow_miss=False)
    assert capsys.readouterr().err == ""


def test_the_miss_names_the_float_cap():
    rep = _mixed(12.37)
    rep["sensitivity"]["max_float_entries"] = 5
    with pytest.raises(SensitivityMiss) as exc:
        _sensitivity_outcome(rep, asked=True, allow_miss=False)
    assert "at most 5 of 12 sweep entries" in str(exc.value)
