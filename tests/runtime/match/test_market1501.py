"""Market-1501 evaluation against a transcription of RGA's `cmc` / `mean_ap` (tests/reference_evaluators.py)."""

import numpy as np
import pytest

from deploykit.errors import BadInputError
from deploykit.runtime.match import evaluate_market1501, labels_from_paths
from reference_evaluators import rga_reference


def market_layout(rng, ids=8, cams=3, per=3):
    names = []
    for pid in range(1, ids + 1):
        for c in range(1, cams + 1):
            for k in range(per):
                names.append(f"{pid:04d}_c{c}s1_{k * 25:06d}_0{k}.jpg")
    names += [f"0000_c{c}s2_{k:06d}_01.jpg" for c in (1, 2) for k in range(4)]  # distractors
    names += [f"-1_c{c}s3_{k:06d}_01.jpg" for c in (1, 3) for k in range(3)]  # junk
    return names


@pytest.mark.parametrize("levels", [None, 4])  # continuous distances, and many ties
def test_market1501_equals_the_rga_transcription(levels):
    rng = np.random.default_rng(0)
    gallery = market_layout(rng)
    query = [n for n in gallery if not n.startswith(("0000", "-1"))][::4] + ["-1_c2s3_000001_01.jpg"]
    gl, ql = labels_from_paths(gallery), labels_from_paths(query)
    assert set(gl.layouts) == {"market1501"} and "0000" in gl.ids and "-1" in gl.ids
    d = rng.random((len(query), len(gallery)))
    same = np.array(ql.ids)[:, None] == np.array(gl.ids)[None, :]
    d = d - 0.3 * same  # identities matter, so ranks differ from chance
    if levels:
        d = np.round(d * levels) / levels
    got = evaluate_market1501(d, ql.ids, gl.ids, ql.cams, gl.cams)
    cmc, mAP, valid = rga_reference(d.tolist(), ql.ids, gl.ids, ql.cams, gl.cams)
    assert got["mAP"] == pytest.approx(mAP, abs=1e-12)
    for r in (1, 5, 10):
        assert got[f"rank{r}"] == pytest.approx(cmc[r - 1], abs=1e-12)
    assert got["num_valid_queries"] == valid == len(query) - 1
    assert got["skipped"] == {"junk identity -1": 1} and got["gallery_junk"] == 6


def test_market1501_counts_queries_without_a_cross_camera_match():
    # query 0001 only exists in camera 1 of the gallery: no valid match after the same-camera exclusion
    d = np.array([[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]])
    r = evaluate_market1501(d, ["0001", "0002"], ["0001", "0002", "0002"], ["1", "1"], ["1", "2", "3"])
    assert r["num_valid_queries"] == 1 and r["skipped"] == {"no true match left in the gallery": 1}
    assert r["rank1"] == 0.0 and r["mAP"] == pytest.approx((1 / 2 + 2 / 3) / 2)  # 0002 at ranks 2 and 3 of 3
    with pytest.raises(BadInputError, match="none of the 1 queries"):
        evaluate_market1501(d[:1], ["0001"], ["0001", "0002", "0002"], ["1"], ["1", "2", "3"])
    with pytest.raises(BadInputError, match="at least one query"):
        evaluate_market1501(np.zeros((0, 3)), [], ["1", "2", "3"], [], ["1", "2", "3"])
