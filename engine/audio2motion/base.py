"""The Audio2Motion protocol: streaming audio in, mouth motion out, on the sample clock."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..motion import MotionFrame


class Audio2Motion(Protocol):
    """Streaming estimator of mouth motion from speech.

    ``push`` appends audio whose first sample is at ``pts`` seconds (the audio sample
    clock; gaps are allowed and read as silence). ``motion_at(pts)`` returns the mouth
    channels and the speaking flag for instant ``pts``; it is exact once
    ``ready_until() >= pts``, i.e. audio up to ``pts + lookahead`` has arrived.
    """

    lookahead: float  # seconds

    def push(self, pcm: np.ndarray, pts: float, sample_rate: int) -> None: ...

    def ready_until(self) -> float: ...

    def motion_at(self, pts: float) -> MotionFrame: ...
