"""The small typed records that flow through the pipeline (source -> engine -> sinks)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AudioChunk:
    """A block of mono float32 samples in [-1, 1]; ``pts`` = samples before it / rate."""

    pts: float
    pcm: np.ndarray
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.pcm) / self.sample_rate

    @property
    def end(self) -> float:
        return self.pts + self.duration


@dataclass(frozen=True)
class VideoFrame:
    """An RGB uint8 image (H, W, 3) to be shown at ``pts`` seconds; ``index`` = pts * fps."""

    pts: float
    index: int
    image: np.ndarray
    #: the avatar over transparency (s, s, 4) uint8, straight alpha, for outputs that take
    #: alpha (the browser source); None unless the engine was asked for it
    rgba: np.ndarray | None = None
    rgba_box: tuple[int, int, int] = (0, 0, 0)  # where ``rgba`` goes in the frame: x, y, side
