"""Identities and cameras from input paths, for the layouts the benchmarks use.

Without a custom regex each path is tried against these layouts in order (first match wins):

* ``market1501``: file names `0002_c1s1_000451_03.jpg` = identity 0002, camera 1 (sequence 1,
  frame 451, box 3); identity `-1` is junk (ignored in evaluation), `0000` a distractor (a gallery
  identity no query has);
* ``opengait``: sequence folders `ROOT/<id>/<type>/<view>/` (CASIA-B `075/nm-05/090/`, OU-MVLP
  `00001/00/000/`); the view (three digits) is the camera, so evaluation excludes same-identity
  same-view items as OpenGait's `compute_ACC_mAP` does; the type is kept for the CASIA-B protocol;
* ``name``: the last path component up to the first `_`, with `_c<cam>` after it if present
  (`p7_c2.jpg`, `001_c1/`); camera "0" when absent.

Identities and cameras are strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Sequence

from ...errors import BadInputError

JUNK_IDS = ("-1",)  # Market-1501's junk identity
LAYOUTS: dict[str, re.Pattern] = {
    "market1501": re.compile(r"(?:^|/)(?P<id>-1|\d{4})_c(?P<cam>\d+)s\d+_\d+_\d+\.(?:jpe?g|png|bmp)$", re.I),
    "opengait": re.compile(r"(?:^|/)(?P<id>[^/]+)/(?P<type>[^/]+)/(?P<cam>\d{3})/?$"),
    "name": re.compile(r"(?P<id>[^/_]+)(?:_c(?P<cam>\d+))?[^/]*/?$"),
}
DEFAULT_HELP = ("Market-1501 names (0002_c1s1_000451_03.jpg), OpenGait folders (ROOT/<id>/<type>/<view>/, view = "
                "camera), else the name up to '_' with an optional _c<cam>")


@dataclass(frozen=True)
class PathLabels:
    """Per path: identity, camera, sequence type ("" when the layout has none) and the layout matched."""

    ids: list[str]
    cams: list[str]
    types: list[str]
    layouts: list[str]


def labels_from_paths(paths: Sequence[str], regex: Optional[str] = None) -> PathLabels:
    """Parse identities (and cameras, types) from paths with `regex` or the default layouts.

    Args:
        paths: input paths as `deploykit infer` recorded them.
        regex: a custom regex with a group `id` and optionally `cam` and `type`, searched in each
            path (default None: the layouts above).
    """
    if regex is not None:
        try:
            pats = {"custom": re.compile(regex)}
        except re.error as exc:
            raise BadInputError(f"--id-regex {regex!r} is not a valid regex ({exc}); fix the pattern") from None
        if "id" not in pats["custom"].groupindex:
            raise BadInputError(f"--id-regex {regex!r} has no group named 'id'; write (?P<id>...) and optionally "
                                f"(?P<cam>...)")
    else:
        pats = LAYOUTS
    ids, cams, types, layouts = [], [], [], []
    for raw in paths:
        path = str(raw).replace("\\", "/")
        for name, pat in pats.items():
            m = pat.search(path)
            if m and m.groupdict().get("id"):
                break
        else:
            how = f"--id-regex {regex!r}" if regex else f"any default layout ({DEFAULT_HELP})"
            raise BadInputError(f"cannot read an identity from {raw!r} with {how}; pass --id-regex with a group "
                                f"(?P<id>...)")
        g = m.groupdict()
        ids.append(g["id"])
        cams.append(g.get("cam") or "0")
        types.append(g.get("type") or "")
        layouts.append(name)
    return PathLabels(ids, cams, types, layouts)
