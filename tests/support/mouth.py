"""Measure what a viewer sees of the mouth: how much of the lip box is dark cavity.

Works on luminance, so it applies equally to decoded mp4 frames (RGB), camera frames
(the Y plane of I420) and screenshots. Robust to the small idle head sway.
"""

from __future__ import annotations

import numpy as np

from avatars import load
from engine import landmarks as L


def mouth_box(avatar: str = "leo", size: int = 512) -> tuple[slice, slice]:
    """Rows/cols around the lips of ``avatar`` at output ``size``, with room for the jaw."""
    a = load(avatar)
    pts = a.landmarks[list(L.LIPS_OUTER_UPPER + L.LIPS_OUTER_LOWER), :2] * (size / a.resolution)
    x0, y0 = pts.min(0)
    x1, y1 = pts.max(0)
    pad = 0.3 * (y1 - y0)
    return slice(int(y0 - pad), int(y1 + 2 * pad)), slice(int(x0), int(x1))


def luminance(img: np.ndarray) -> np.ndarray:
    """Luma of an RGB image, or the image itself if it is already one channel."""
    if img.ndim == 2:
        return img.astype(np.float32)
    return img[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def mouth_openness(img: np.ndarray, box: tuple[slice, slice]) -> float:
    """Fraction of the mouth box darker than a mouth cavity threshold (0 = lips closed)."""
    return float((luminance(img)[box] < 60).mean())


def i420_frames(path, width: int, height: int) -> np.ndarray:
    """The Y (luma) planes of a raw I420 stream, (N, height, width) uint8."""
    raw = np.fromfile(path, np.uint8)
    frame = width * height * 3 // 2
    n = len(raw) // frame
    return raw[: n * frame].reshape(n, frame)[:, : width * height].reshape(n, height, width)
