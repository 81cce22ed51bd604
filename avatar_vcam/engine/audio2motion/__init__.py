"""Audio2Motion: streaming speech audio -> mouth motion on the audio sample clock."""

from __future__ import annotations

from pathlib import Path

from .base import Audio2Motion
from .dsp import DspAudio2Motion

__all__ = ["A2M_MODELS", "DEFAULT_A2M", "DEFAULT_LOOKAHEAD_MS", "Audio2Motion", "DspAudio2Motion",
           "make_audio2motion"]

A2M_MODELS = ("dsp", "learned")
DEFAULT_A2M = "learned"  # chosen by bench/lipsync_eval.py: see BENCHMARKS.md
DEFAULT_LOOKAHEAD_MS = 40.0  # the knee of r(jawOpen) vs look-ahead for both models (ditto)


def make_audio2motion(name: str = DEFAULT_A2M, lookahead_ms: float = DEFAULT_LOOKAHEAD_MS,
                      weights: str | Path | None = None) -> Audio2Motion:
    """Build the Audio2Motion model ``name``: ``"dsp"`` (signal features, no weights) or
    ``"learned"`` (the shipped causal TCN, or ``weights``)."""
    if name == "dsp":
        return DspAudio2Motion(lookahead_ms=lookahead_ms)
    if name == "learned":
        from .learned import LearnedAudio2Motion

        return LearnedAudio2Motion(lookahead_ms=lookahead_ms, weights=weights)
    raise ValueError(f"unknown audio2motion model {name!r}; available: {', '.join(A2M_MODELS)}")
