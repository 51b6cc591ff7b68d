"""The drawing primitives of every synthetic data set: walking figures (gait), figures on clutter (images).

`walking_silhouettes` and `person_image` are the seeded smoke-run data of synthetic calibration
(`calib.sources.SyntheticSource`); `draw_walker` and `clutter` are what the synthetic tasks of
`deploykit.synth` render with. Plausible value ranges (binary silhouettes of a person-shaped
blob, natural-looking colour statistics), not a camera's data. Below calib: imports neither
calib nor torch.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import require

CANVAS_HW = (240, 320)  # CASIA-B's frame size


def cv2():
    """OpenCV, or a one-line error naming the extra."""
    return require("cv2", "export")


def walking_silhouettes(rng: np.random.Generator, frames: int) -> list[np.ndarray]:
    """One walking sequence: `frames` uint8 [240, 320] masks of a stick-and-ellipse figure.

    Random per sequence: height (110-200 px), horizontal start and speed, gait phase and period,
    body proportions and a little mask noise.
    """
    H, W = CANVAS_HW
    height = rng.uniform(110, 200)
    x0, speed = rng.uniform(0.3, 0.7) * W, rng.uniform(-3.0, 3.0)
    period, phase = rng.uniform(18, 32), rng.uniform(0, 2 * math.pi)
    torso_w, leg_w, arm_w = (height * f for f in (rng.uniform(0.09, 0.14), rng.uniform(0.05, 0.08),
                                                   rng.uniform(0.03, 0.05)))
    out = []
    for t in range(frames):
        m = np.zeros((H, W), np.uint8)
        ang = 0.45 * math.sin(2 * math.pi * t / period + phase)
        cx, foot = x0 + speed * t, H - 10 - rng.uniform(0, 2)
        draw_walker(m, cx, foot, height, ang, torso_w, leg_w, arm_w)
        noise = rng.random((H, W)) < 0.002
        m[noise] = 255 - m[noise]
        out.append(m)
    return out


def draw_walker(m: np.ndarray, cx: float, foot: float, height: float, ang: float, torso_w: float, leg_w: float,
                arm_w: float, *, head: float = 0.07, shoulder: float = 0.2, hip: float = 0.52, leg: float = 0.48,
                knee: float = 0.6, arm_swing: float = 0.3, arm_len: float = 0.3, lean: float = 0.0,
                depth: float = 1.0, spread: float = 0.0, value: int = 255) -> None:
    """Draw one stick-and-ellipse walker into the uint8 mask `m` [H, W] (in place).

    Args:
        cx, foot: the figure's centre column and foot row (pixels); height: its height (pixels).
        ang: leg swing angle of this frame (radians; the legs swing by +-ang, the arms against them).
        torso_w, leg_w, arm_w: torso half-width and limb thicknesses (pixels).
        head, shoulder, hip, leg, arm_len: head radius, shoulder/hip row, leg and arm length, as
            fractions of `height` (defaults 0.07, 0.2, 0.52, 0.48, 0.3).
        knee: shank swing relative to the thigh (default 0.6); arm_swing: hand offset per sin(ang)
            as a fraction of height (default 0.3); lean: forward lean (shoulders shift by
            lean x 0.3 x height, the head by lean x 0.45 x height; default 0).
        depth: foreshortening of the walking-direction offsets (1 = side view, 0 = frontal; default 1).
        spread: sideways offset of each hip and shoulder joint from the centre line (pixels; default 0).
        value: the fill value (default 255).
    """
    cv = cv2()
    top = foot - height
    head_r = height * head
    hip_c = (cx, top + height * hip)
    sh_c = (cx + depth * lean * height * 0.3, top + height * shoulder)
    cv.circle(m, (int(cx + depth * lean * height * 0.45), int(top + head_r)), int(head_r), value, -1)
    cv.ellipse(m, (int((sh_c[0] + hip_c[0]) / 2), int((sh_c[1] + hip_c[1]) / 2)),
                (int(torso_w), int((hip_c[1] - sh_c[1]) / 2)), 0, 0, 360, value, -1)
    ll = height * leg
    for sgn in (1, -1):
        hip_p, sh = (hip_c[0] + sgn * spread, hip_c[1]), (sh_c[0] + sgn * spread, sh_c[1])
        kn = (hip_p[0] + depth * sgn * math.sin(ang) * ll * 0.5, hip_p[1] + math.cos(ang) * ll * 0.5)
        ft = (kn[0] + depth * sgn * math.sin(ang * knee) * ll * 0.5, min(foot, kn[1] + ll * 0.5))
        cv.line(m, tuple(map(int, hip_p)), tuple(map(int, kn)), value, max(1, int(leg_w)))
        cv.line(m, tuple(map(int, kn)), tuple(map(int, ft)), value, max(1, int(leg_w * 0.8)))
        hand = (sh[0] - depth * sgn * math.sin(ang) * height * arm_swing, sh[1] + height * arm_len)
        cv.line(m, tuple(map(int, sh)), tuple(map(int, hand)), value, max(1, int(arm_w)))


def person_image(rng: np.random.Generator, hw: tuple[int, int] = (256, 192)) -> np.ndarray:
    """One uint8 BGR [h, w, 3] image: smooth coloured clutter with a figure in the middle."""
    cv = cv2()
    h, w = hw
    img = clutter(rng, hw)
    cx, skin = w / 2 + rng.uniform(-15, 15), tuple(float(v) for v in rng.uniform(60, 230, 3))
    shirt, pants = (tuple(float(v) for v in rng.uniform(0, 255, 3)) for _ in range(2))
    cv.circle(img, (int(cx), int(h * 0.12)), int(h * 0.07), skin, -1)
    cv.ellipse(img, (int(cx), int(h * 0.36)), (int(w * 0.2), int(h * 0.18)), 0, 0, 360, shirt, -1)
    for sgn in (1, -1):
        cv.line(img, (int(cx + sgn * w * 0.08), int(h * 0.52)), (int(cx + sgn * w * 0.12), int(h * 0.95)),
                 pants, max(2, int(w * 0.09)))
        cv.line(img, (int(cx + sgn * w * 0.2), int(h * 0.24)), (int(cx + sgn * w * 0.3), int(h * 0.5)),
                 skin, max(2, int(w * 0.05)))
    img = img + rng.normal(0, 6, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def clutter(rng: np.random.Generator, hw: tuple[int, int]) -> np.ndarray:
    """Background clutter, float32 BGR [h, w, 3] in about [0, 255]: smooth colour plus 3-8 rectangles."""
    cv = cv2()
    h, w = hw
    low = rng.uniform(0, 255, (6, 5, 3)).astype(np.float32)
    img = cv.resize(low, (w, h), interpolation=cv.INTER_CUBIC)
    for _ in range(int(rng.integers(3, 9))):  # background objects
        c = tuple(float(v) for v in rng.uniform(0, 255, 3))
        p1 = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        p2 = (int(p1[0] + rng.uniform(-60, 60)), int(p1[1] + rng.uniform(-60, 60)))
        cv.rectangle(img, p1, p2, c, -1)
    return img
