"""Audio2Motion: streaming speech audio -> mouth motion on the audio sample clock."""

from __future__ import annotations

from .base import Audio2Motion
from .dsp import DspAudio2Motion

__all__ = ["Audio2Motion", "DspAudio2Motion", "make_audio2motion"]


def make_audio2motion(name: str = "dsp", lookahead_ms: float = 60.0) -> Audio2Motion:
    """Build the Audio2Motion model ``name`` (only ``"dsp"`` so far)."""
    if name == "dsp":
        return DspAudio2Motion(lookahead_ms=lookahead_ms)
    raise ValueError(f"unknown audio2motion model {name!r}; available: dsp")
