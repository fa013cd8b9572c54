"""Videos and strips written from frames."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np

from wmkit.record.video import write_strip, write_video


def test_gif_and_mp4_round_trip_frame_count(tmp_path):
    frames = np.zeros((6, 33, 31, 3), np.uint8)
    frames[:, :, :, 0] = np.arange(6)[:, None, None] * 40
    gif = write_video(frames, tmp_path / "a.gif", fps=10)
    assert iio.imread(gif).shape[0] == 6
    mp4 = write_video(frames, tmp_path / "a.mp4", fps=10)
    assert mp4.exists() and mp4.stat().st_size > 0


def test_strip_places_frames_side_by_side(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (20, 8, 8, 3), dtype=np.uint8)
    path = write_strip(frames, tmp_path / "s.png", count=5)
    assert iio.imread(path).shape == (8, 40, 3)
