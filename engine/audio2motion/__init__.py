"""Audio2Motion: streaming speech audio -> mouth motion on the audio sample clock."""

from __future__ import annotations

from pathlib import Path

from .base import Audio2Motion
from .dsp import DspAudio2Motion

__all__ = ["A2M_MODELS", "DEFAULT_A2M", "DEFAULT_LOOKAHEAD_MS", "Audio2Motion", "DspAudio2Motion",
           "is_weights_file", "make_audio2motion"]

A2M_MODELS = ("dsp", "learned")
DEFAULT_A2M = "learned"  # best on real voices: bench/lipsync_aligned.py (BENCHMARKS.md)
DEFAULT_LOOKAHEAD_MS = 40.0  # the knee of r(jawOpen) vs look-ahead for both models (ditto)


def make_audio2motion(name: str = DEFAULT_A2M, lookahead_ms: float = DEFAULT_LOOKAHEAD_MS,
                      weights: str | Path | None = None) -> Audio2Motion:
    """Build the Audio2Motion model ``name``: ``"dsp"`` (signal features, no weights),
    ``"learned"`` (the shipped causal TCN, or ``weights``) or a path to a ``.npz`` written by
    ``avatar-vcam train-a2m`` (the learned model with those weights)."""
    if name == "dsp":
        return DspAudio2Motion(lookahead_ms=lookahead_ms)
    if name == "learned" or is_weights_file(name):
        from .learned import LearnedAudio2Motion

        w = name if weights is None and name != "learned" else weights
        return LearnedAudio2Motion(lookahead_ms=lookahead_ms, weights=w)
    raise ValueError(f"unknown audio2motion model {name!r}; available: {', '.join(A2M_MODELS)}"
                     " or a weights file (.npz)")


def is_weights_file(name: str) -> bool:
    """Whether an Audio2Motion name is a path to learned weights rather than a model name."""
    return str(name).endswith(".npz")
