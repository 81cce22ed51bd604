"""The renderer protocol: ``prepare(avatar)`` once, ``render(state, motions)`` per batch."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from ..avatar import Avatar


class Renderer(Protocol):
    """Turns MotionFrame channel vectors into RGB frames of one prepared avatar.

    ``prepare`` does every per-avatar computation once (landmark fields, feature
    volumes, caches) on the configured torch device; ``render`` is the hot path.
    """

    name: str

    def prepare(self, avatar: Avatar, size: int) -> Any:
        """Per-avatar state for frames of ``size`` x ``size`` pixels."""
        ...

    def render(self, state: Any, motions: np.ndarray) -> np.ndarray:
        """``motions`` (N, N_CHANNELS) float32 -> frames (N, size, size, 3) uint8 RGB."""
        ...
