"""TensorRT's calibration cache: written in TensorRT's text format and read back."""

import re
import struct

import pytest

from deploykit.calib import trt_cache
from deploykit.calib.ranges import CalibMethod, Ranges, TensorRange
from deploykit.errors import BadInputError


def _ranges():
    t = {"sils": TensorRange(1.0, 0.0, 1.0, 0.0, 1.0), "/conv/Conv_output_0": TensorRange(3.5, -3.5, 3.5, -4, 4),
         "onnx::Mul_7": TensorRange(0.25, 0.0, 0.25, 0.0, 0.3)}
    return Ranges(CalibMethod.ENTROPY, t, 16, "test")


@pytest.mark.parametrize("version, tag", [("8.5.2", "8502"), ("8.6.1", "8601"), ("10.3.0", "100300"),
                                          ("10.3.0.26", "100300"), ("11.1", "110100")])
def test_version_tag(version, tag):
    assert trt_cache.version_tag(version) == tag


def test_cache_matches_the_documented_format_and_reads_back(tmp_path):
    path = trt_cache.write(tmp_path / "m.calib.cache", _ranges(), "8.5.2")
    text = path.read_text()
    lines = text.splitlines()
    assert lines[0] == "TRT-8502-EntropyCalibration2"
    for line in lines[1:]:  # `name: <8 lowercase hex digits>`, the name ending at the last colon
        assert re.fullmatch(r".+: [0-9a-f]{8}", line), line
    tag, algo, scales = trt_cache.read(path)
    assert (tag, algo) == ("8502", "EntropyCalibration2")
    for name, r in _ranges().tensors.items():
        assert scales[name] == struct.unpack(">f", struct.pack(">f", r.amax / 127))[0]
    assert "onnx::Mul_7: " in text  # a name holding a colon survives (TensorRT splits at the last one)


def test_hex_is_the_big_endian_float32_bit_pattern():
    # the example in shared/tensorrt_facts.md 2.2: 0x3c008912 = 0.0078452 (amax ~0.996)
    assert trt_cache.scale_hex(struct.unpack(">f", bytes.fromhex("3c008912"))[0]) == "3c008912"
    assert trt_cache.scale_hex(1.0) == "3f800000"
    _, _, scales = trt_cache.parse("TRT-7202-EntropyCalibration2\ndata: 3c008912\n")
    assert scales["data"] * 127 == pytest.approx(0.996, abs=1e-3)


@pytest.mark.parametrize("text, needle", [("data: 3c008912\n", "header"), ("TRT-8502-EntropyCalibration2\ndata 3c00\n", "line 2"),
                                          ("TRT-8502-EntropyCalibration2\ndata: 3c0089zz\n", "line 2")])
def test_malformed_cache_is_named(text, needle):
    with pytest.raises(BadInputError, match=needle):
        trt_cache.parse(text)
