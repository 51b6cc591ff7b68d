"""PGFA's pose inputs from a pose engine's results: `deploykit infer pgfa.onnx crops/ --keypoints kp.json`.

`kp.json` is what `deploykit infer` writes for a pose engine run on the same crops (family "pose",
`results[].people[].keypoints [17, 2]` and `scores [17]`, COCO order, crop pixels). Each re-ID crop
is matched to a pose result by path, else by file name; its people become OpenPose-18 (neck =
mean of the shoulders, `pose.coco17_to_openpose18`), then PGFA's heatmaps (`reid.pgfa_heatmaps`)
and part visibility (`reid.pgfa_part_visibility`). A crop without a pose result gets upstream's
"no pose file" inputs: all-ones heatmaps and visibility (counted in `keypoints_matched`).

Results carry `visibility [P]` per crop and `metric: "pgfa_visibility_weighted"`, so galleries use
PGFA's visibility-weighted metric (`match.pgfa_embeddings`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ..errors import BadInputError

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PoseInputs:
    """PGFA's extra feeds for N crops, their part labels, and how many crops had keypoints."""

    feeds: dict
    visibility: np.ndarray
    matched: int


def _people(result: Mapping[str, Any], src: str) -> np.ndarray:
    from .pose import coco17_to_openpose18

    people = result.get("people")
    if not isinstance(people, list):
        raise BadInputError(f"--keypoints {src}: result {result.get('input')!r} has no 'people' list; give the JSON "
                            f"`deploykit infer` wrote for a pose engine")
    if not people:
        return np.zeros((0, 18, 3))
    try:
        kp = np.asarray([p["keypoints"] for p in people], np.float64)
        sc = np.asarray([p["scores"] for p in people], np.float64)
    except (KeyError, TypeError, ValueError):
        raise BadInputError(f"--keypoints {src}: people of {result.get('input')!r} lack numeric 'keypoints' [17, 2] "
                            f"and 'scores' [17]") from None
    if kp.shape[1:] != (17, 2):
        raise BadInputError(f"--keypoints {src}: keypoints of {result.get('input')!r} have shape {list(kp.shape)}; "
                            f"PGFA needs COCO-17 keypoints [P, 17, 2]")
    return coco17_to_openpose18(kp, sc)


class PgfaPose:
    """Keypoints per crop from a pose results file, for a PGFA engine."""

    def __init__(self, engine, path: Optional[str | os.PathLike]) -> None:
        self.engine = engine
        self.spec = engine.inputs[1]
        self.part_num = int((engine.manifest["model"].get("config") or {}).get("part_num", 3))
        self.src = str(path) if path is not None else None
        self.by_path: dict[str, np.ndarray] = {}
        self.by_name: dict[str, np.ndarray] = {}
        if path is not None:
            from . import results as results_io

            data = results_io.to_dict(results_io.read(path))  # .npz or JSON, as `deploykit infer --out` wrote
            if data.get("family") != "pose":
                raise BadInputError(f"--keypoints {path}: not the results of a pose engine (family "
                                    f"{data.get('family')!r}); run `deploykit infer POSE_ENGINE crops/ --out kp.npz` "
                                    f"first")
            for r in data["results"]:
                p = _people(r, self.src)
                self.by_path[str(r.get("input"))] = p
                self.by_name.setdefault(Path(str(r.get("input"))).name, p)

    @classmethod
    def for_engine(cls, engine, keypoints) -> Optional["PgfaPose"]:
        """A PgfaPose for a PGFA engine (its heatmaps input), else None."""
        names = [s.name for s in engine.inputs]
        if names[1:] != ["heatmaps"] or engine.manifest["model"].get("name") != "pgfa":
            return None
        if keypoints is None:
            log.warning("PGFA without --keypoints: all-ones heatmaps and visibility (upstream's no-pose-file case); "
                        "run a pose engine on the crops and pass its results with --keypoints")
        return cls(engine, keypoints)

    def people_for(self, name: str) -> Optional[np.ndarray]:
        if self.src is None:
            return None
        return self.by_path.get(name, self.by_name.get(Path(name).name))

    def inputs(self, names: Sequence[str], crops: Sequence[np.ndarray]) -> PoseInputs:
        """Heatmaps `[N, 18, h, w]` and visibility `[N, P]` for crops named `names`."""
        from .reid import pgfa_heatmaps, pgfa_part_visibility

        hw = self.spec.shape[2:]
        maps, vis, matched = [], [], 0
        for name, crop in zip(names, crops):
            people = self.people_for(name)
            matched += people is not None
            maps.append(pgfa_heatmaps(people, crop.shape[:2], hw))
            vis.append(pgfa_part_visibility(people, crop.shape[0], self.part_num))
        if self.src is not None and matched < len(names):
            log.warning("--keypoints %s: %d of %d crops have no pose result; they get all-ones heatmaps",
                        self.src, len(names) - matched, len(names))
        return PoseInputs({self.spec.name: np.stack(maps).astype(np.float32)}, np.stack(vis), matched)
