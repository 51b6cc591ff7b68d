"""The runtime's input preprocessing, as the calibration sources apply it (numpy + OpenCV, no torch).

Calibration data must look exactly like what the engine sees at run time, so this module only
routes raw data to the runtime's own preprocessing, chosen by the manifest's `preprocess` record:

- `silhouette` (gait): `runtime.gait.pretreat_frame` (OpenGait's pretreatment: crop the rows,
  height `img_size`, centre, `img_size` wide) per frame, then `runtime.gait.cut_and_scale`
  (`cutting` columns off each side, / `divisor`).
- `image`, re-ID family: `runtime.reid.preprocess_reid` (Pillow-exact resize, colour order,
  mean/std) on the whole picture, which is taken to be a person crop.
- `image`, pose family: `runtime.pose.crop_persons` with the whole picture as the person box
  (the top-down crop: centre/scale x1.25 affine warp, then normalisation).
- any other `image` record: resize to `size_hw` (bilinear), reorder to `color`, x `scale`,
  minus `mean`, / `std` (the documented minimal version).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ..errors import BadInputError, require


def _cv2():
    return require("cv2", "export")


def pretreat_silhouette(frame: np.ndarray, img_size: int = 64) -> Optional[np.ndarray]:
    """One raw silhouette frame ([h, w] uint8, or BGR) -> [img_size, img_size] uint8, or None when
    OpenGait's pretreatment drops it (too little silhouette)."""
    from ..runtime.gait import pretreat_frame

    img = np.asarray(frame)
    if img.ndim == 3:
        img = _cv2().cvtColor(img, _cv2().COLOR_BGR2GRAY)
    out, _why = pretreat_frame(img.astype(np.uint8), int(img_size))
    return out


def silhouette_clip(frames: Sequence[np.ndarray], pre: Mapping[str, Any], h: int, w: int) -> np.ndarray:
    """Pretreated [img_size, img_size] uint8 frames -> the model's clip [s, h, w] float32 in [0, 1]."""
    from ..runtime.gait import cut_and_scale

    clip = cut_and_scale(np.stack(frames), pre.get("cutting"), float(pre.get("divisor", 255.0)))
    if clip.shape[1:] != (h, w):
        raise BadInputError(f"silhouette frames become {list(clip.shape[1:])} after cutting, the model wants "
                            f"[{h}, {w}]; check the manifest's preprocess (img_size {pre.get('img_size')}, "
                            f"cutting {pre.get('cutting')})")
    return clip


def preprocess_image(img_bgr: np.ndarray, pre: Mapping[str, Any], family: str = "") -> np.ndarray:
    """One decoded picture (OpenCV BGR uint8 [h, w, 3]) -> the network input [3, H, W] float32."""
    img = np.asarray(img_bgr)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if family == "reid":
        from ..runtime.reid import ReidConfig, preprocess_reid

        return preprocess_reid(img, ReidConfig.from_manifest({"preprocess": dict(pre)}), image_color="bgr")[0]
    if family == "pose":
        from ..runtime.pose import TopDownConfig, crop_persons

        box = np.array([[0.0, 0.0, img.shape[1] - 1.0, img.shape[0] - 1.0]], np.float32)
        return crop_persons(img, box, TopDownConfig.from_manifest({"preprocess": dict(pre)}), image_color="bgr").inputs[0]
    cv2 = _cv2()
    H, W = (int(v) for v in pre["size_hw"])
    img = cv2.resize(img, (W, H), interpolation=cv2.INTER_LINEAR)     # [H, W, 3] BGR
    if str(pre.get("color", "RGB")).upper() == "RGB":
        img = img[:, :, ::-1]
    x = img.astype(np.float32) * float(pre.get("scale", 1.0 / 255))
    x = x - np.asarray(pre.get("mean", (0.0, 0.0, 0.0)), np.float32)
    if pre.get("std") is not None:
        x = x / np.asarray(pre["std"], np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))                 # [3, H, W]
