"""Phone timings -> target mouth curves: moved to the run-time :mod:`..phones` (the TTS
timings path uses the same table); re-exported here for training and evaluation."""

from __future__ import annotations

from ..phones import (  # noqa: F401
    _POSE,
    _SHAPE_ROWS,
    _SILENCE,
    FPS,
    N_TARGETS,
    Phone,
    Pose,
    is_bilabial,
    is_pause,
    pose,
    target_curves,
)
