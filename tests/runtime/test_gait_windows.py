"""Gait sequences windowed into engine-sized clips; colour silhouettes refused or thresholded; videos read."""

import cv2
import numpy as np
import pytest

from deploykit.errors import BadInputError
from deploykit.runtime.gait import pretreat_silhouettes
from deploykit.runtime.gait_windows import read_sequence, window_sequence, window_starts, windowed_source
from deploykit.runtime.media import FrameRange


def _frame(t, h=120, w=90):
    f = np.zeros((h, w), np.uint8)
    f[10:110, 30 + t % 5:60 + t % 5] = 255
    return f


def test_window_starts_cover_the_sequence():
    assert window_starts(8, 4).tolist() == [0, 4]
    assert window_starts(9, 4).tolist() == [0, 4, 5]  # the tail gets a window ending at the last frame
    assert window_starts(9, 4, stride=2).tolist() == [0, 2, 4, 5]
    assert window_starts(4, 4).tolist() == [0]
    with pytest.raises(BadInputError, match="--window-stride 0"):
        window_starts(9, 4, 0)


def test_window_sequence_long_short_and_refused():
    pt = pretreat_silhouettes([_frame(t) for t in range(9)])
    win = window_sequence(pt, 9, 4)
    assert win.clips.shape == (3, 4, 64, 44) and win.windows.tolist() == [[0, 4], [4, 8], [5, 9]]
    np.testing.assert_array_equal(win.clips[2], pt.frames[5:9, :, 10:-10] / np.float32(255))
    assert win.report() == {"frames_total": 9, "frames_kept": 9, "windows": [[0, 4], [4, 8], [5, 9]],
                            "padded": False}
    short = window_sequence(pretreat_silhouettes([_frame(t) for t in range(3)]), 3, 4)
    assert short.padded and short.clips.shape == (1, 4, 64, 44)
    np.testing.assert_array_equal(short.clips[0, 3], short.clips[0, 0])  # cyclic repeat
    with pytest.raises(BadInputError, match="3 usable frames .* fewer than the engine's 4"):
        window_sequence(pretreat_silhouettes([_frame(t) for t in range(3)]), 3, 4, short="refuse")


def test_colour_silhouettes_are_refused_or_thresholded(tmp_path):
    d = tmp_path / "seq"
    d.mkdir()
    for t in range(4):
        bgr = np.zeros((120, 90, 3), np.uint8)
        bgr[:] = (0, 0, 255)  # red background: gray 76, the silent failure this guards against
        bgr[_frame(t) > 0] = 255
        cv2.imwrite(str(d / f"{t:03d}.png"), bgr)
    with pytest.raises(BadInputError, match="colour image.*--sil-threshold"):
        read_sequence(d)
    frames = read_sequence(d, threshold=127)
    assert frames[0].dtype == np.uint8 and set(np.unique(frames[0])) == {0, 255}
    np.testing.assert_array_equal(frames[0], _frame(0))
    gray3 = tmp_path / "gray3"
    gray3.mkdir()
    for t in range(4):  # a gray mask saved as 3 equal channels is fine
        cv2.imwrite(str(gray3 / f"{t:03d}.png"), np.repeat(_frame(t)[..., None], 3, 2))
    np.testing.assert_array_equal(read_sequence(gray3)[1], _frame(1))


def test_silhouette_video_with_frame_range(tmp_path):
    path = tmp_path / "walk.avi"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (90, 120))
    if not vw.isOpened():
        pytest.skip("this OpenCV build writes no MJPG .avi")
    for t in range(12):
        vw.write(cv2.cvtColor(_frame(t), cv2.COLOR_GRAY2BGR))
    vw.release()
    frames = read_sequence(path, FrameRange(2, 10, 2))
    assert len(frames) == 4 and frames[0].ndim == 2
    # MJPG is lossy: the mask comes back within a few gray levels away from its edges
    assert np.abs(frames[0][20:100].astype(int) - _frame(2)[20:100]).mean() < 8
    win = windowed_source(path, {"img_size": 64}, 4)
    assert win.frames_total == 12 and win.windows.tolist() == [[0, 4], [4, 8], [8, 12]]
    with pytest.raises(BadInputError, match="--frame-range"):
        FrameRange.parse("5", 1)
