"""PCM normalisation shared by every consumer of captured or decoded audio."""

from __future__ import annotations

import numpy as np


def as_float_pcm(pcm: np.ndarray) -> np.ndarray:
    """Mono float32 (1.0 = full scale) from float or integer PCM, mono or (n, channels).

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
        a = a.mean(axis=1)
    a = a.reshape(-1)
    return np.clip(np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=-1.0), -4.0, 4.0)
