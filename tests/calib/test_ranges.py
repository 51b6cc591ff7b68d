"""Range collection: the streaming histogram and the max / percentile / entropy methods."""

import numpy as np
import pytest

from deploykit.calib.ranges import (NUM_BINS, CalibMethod, TensorRecord, amax_entropy, amax_percentile,
                                    choose_range, keep_fp32_from_ranges, Ranges, TensorRange)
from deploykit.errors import BadInputError


def _reference_entropy(hist, edges, start=128, levels=128):
    """TensorRT's entropy search written the slow, obvious way (one candidate at a time)."""
    from scipy.stats import entropy

    h = hist.astype(np.float64).copy()
    h[0] = h[1]
    kls = []
    for i in range(start, len(h) + 1):
        group = (np.arange(i) * levels) // i
        nonzero = h[:i] > 0
        sums = np.bincount(group[nonzero], weights=h[:i][nonzero], minlength=levels)
        counts = np.bincount(group[nonzero], minlength=levels)
        q = np.where(nonzero, sums[group] / np.maximum(counts[group], 1), 0.0)
        p = h[:i].copy()
        p[-1] += h[i:].sum()
        kls.append(entropy(p, q))
    kls = np.array(kls)
    k = len(kls) - 1 - int(np.argmin(kls[::-1]))
    return edges[k + start]


def _record(x, chunks=3):
    r = TensorRecord()
    for part in np.array_split(x.astype(np.float32), chunks):
        r.update(part)
    return r


@pytest.mark.parametrize("kind", ["relu", "normal", "laplace", "growing"])
def test_entropy_matches_the_plain_implementation(kind):
    rng = np.random.default_rng(0)
    x = {"relu": np.maximum(rng.standard_normal(60000), 0) * 3, "normal": rng.standard_normal(60000),
         "laplace": rng.laplace(size=60000), "growing": rng.standard_normal(60000) * np.linspace(0.1, 4, 60000)}[kind]
    r = _record(x)
    want = min(_reference_entropy(r.hist, r.edges), r.absmax)
    assert amax_entropy(r) == pytest.approx(want, rel=1e-6)


def test_histogram_growth_is_exact():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(0, 1, 5000), rng.uniform(0, 7.9, 5000)]).astype(np.float32)
    r = _record(x, chunks=2)  # second chunk forces the range to double three times (1 -> 8)
    assert r.hist.sum() == x.size and r.hist.size == NUM_BINS
    direct = np.histogram(np.abs(x), bins=NUM_BINS, range=(0, r.top))[0]
    assert np.abs(direct - r.hist).sum() <= 10  # the same counts, up to values on a bin edge (float rounding)


def test_max_percentile_and_asymmetric_bounds():
    x = np.concatenate([np.linspace(-1, 2, 10000), [50.0]]).astype(np.float32)
    r = _record(x)
    mx = choose_range(r, CalibMethod.MAX)
    assert mx.amax == pytest.approx(50.0) and mx.lo == pytest.approx(-1.0) and mx.hi == pytest.approx(50.0)
    pc = choose_range(r, CalibMethod.PERCENTILE, 99.9)
    assert 1.9 < pc.amax < 2.2 and pc.lo == pytest.approx(-1.0) and pc.hi == pytest.approx(pc.amax)
    assert pc.scale == pytest.approx(pc.amax / 127)
    assert amax_percentile(r, 100.0) == pytest.approx(50.0)
    with pytest.raises(BadInputError, match="percentile"):
        amax_percentile(r, 0)


def test_all_zero_tensor_gets_a_positive_scale():
    r = _record(np.zeros(100))
    assert choose_range(r, CalibMethod.ENTROPY).amax > 0


def test_nan_activation_is_refused():
    from deploykit.calib.ranges import CalibrationError

    with pytest.raises(CalibrationError, match="NaN"):
        TensorRecord().update(np.array([1.0, np.nan], np.float32))


def test_ranges_json_round_trip_and_fp16_flags(tmp_path):
    rg = Ranges(CalibMethod.ENTROPY, {"a": TensorRange(2.0, -1.0, 2.0, -3.0, 5.0),
                                      "big": TensorRange(9e4, -9e4, 9e4, -9e4, 9e4)}, 8, "test")
    rg.save(tmp_path / "r.json")
    back = Ranges.load(tmp_path / "r.json")
    assert back.tensors == rg.tensors and back.method is CalibMethod.ENTROPY and back.samples == 8
    assert keep_fp32_from_ranges(back) == ["big"]
    with pytest.raises(BadInputError, match="not one of"):
        CalibMethod.parse("kl")
