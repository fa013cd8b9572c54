"""Writing frames as a video (MP4 through imageio-ffmpeg, or GIF) and as a PNG strip."""

from __future__ import annotations

import io
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from wmkit.storage.fileio import atomic_write_bytes


def write_video(frames: list[np.ndarray] | np.ndarray, path: Path, fps: int = 30) -> Path:
    """Write uint8 frames [T, H, W, C]; ``.gif`` or ``.mp4`` by suffix. Returns the path."""
    path = Path(path)
    frames = np.asarray(frames, dtype=np.uint8)
    if path.suffix == ".mp4":
        # H.264 wants even sizes; pad by one pixel where needed.
        h, w = frames.shape[1:3]
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
        try:
            data = iio.imwrite("<bytes>", frames, extension=".mp4", fps=fps, codec="libx264")
        except Exception:  # no ffmpeg available: fall back to a GIF next to it
            path = path.with_suffix(".gif")
    if path.suffix == ".gif":
        data = iio.imwrite("<bytes>", frames, extension=".gif", duration=1000 / fps, loop=0)
    atomic_write_bytes(path, data)
    return path


def write_strip(frames: np.ndarray, path: Path, count: int = 10, vertical: bool = False) -> Path:
    """``count`` evenly spaced frames in one PNG, side by side (or stacked), for a quick look."""
    frames = np.asarray(frames, dtype=np.uint8)
    idx = np.linspace(0, len(frames) - 1, min(count, len(frames))).astype(int)
    strip = np.concatenate(list(frames[idx]), axis=0 if vertical else 1)
    buf = io.BytesIO()
    iio.imwrite(buf, strip, extension=".png")
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)
