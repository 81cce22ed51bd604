"""PCM normalisation shared by every consumer of captured or decoded audio."""

from __future__ import annotations

import numpy as np

_MAX_CHANNELS = 8
_LAYOUTS = ("accepted layouts: (n,) mono, (n, channels) or (channels, n) with at most "
            f"{_MAX_CHANNELS} channels and more samples than channels")


def _mono(a: np.ndarray) -> np.ndarray:
    """Average the channels of a 2-D block whose channel axis is the small one."""
    rows, cols = a.shape
    if rows == 1 or cols == 1 or a.size == 0:
        return a.reshape(-1)
    if cols <= _MAX_CHANNELS and rows > cols:
        return a.mean(axis=1)  # (n, channels): sounddevice, soundfile
    if rows <= _MAX_CHANNELS and cols > rows:
        return a.mean(axis=0)  # (channels, n): torchaudio, librosa
    raise ValueError(f"cannot tell samples from channels in PCM of shape {a.shape}; "
                     f"{_LAYOUTS}")


def as_float_pcm(pcm: np.ndarray) -> np.ndarray:
    """Mono float32 (1.0 = full scale) from float or integer PCM: (n,) mono, (n, channels)
    or (channels, n) (the channel axis is the small one, at most 8; anything ambiguous,
    such as (2, 2) or (16, 20), or more than 2 dimensions raises ValueError).

    NaN/inf become harmless (0 / ±1) and absurd float values are clipped to ±4, so one bad
    block from a driver cannot poison the streaming state downstream.
    """
    a = np.asarray(pcm)
    if a.dtype.kind == "i":
        a = a.astype(np.float32) / float(np.iinfo(a.dtype).max + 1)
    elif a.dtype.kind == "u":
        half = (np.iinfo(a.dtype).max + 1) / 2
        a = (a.astype(np.float32) - half) / half
    a = a.astype(np.float32, copy=False)
    if a.ndim == 2:
        a = _mono(a)
    elif a.ndim > 2:
        raise ValueError(f"PCM must be 1-D or 2-D, got shape {a.shape}; {_LAYOUTS}")
    a = a.reshape(-1)
    return np.clip(np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=-1.0), -4.0, 4.0)
