"""Lips on the camera against a TTS's own phone timings, as a viewer gets them.

The utterance is found in the virtual mic's recording (cross-correlation with the TTS's
audio, to the sample), which places its phones on the monotonic clock at the moment each
is heard. The mouth target the phones imply (the jaw curve of
``engine.audio2motion.phones.target_curves``) is then cross-correlated with the lips'
openness on the camera frames (each stamped when the camera got it): the best shift is
the lips' timing error against the phones as heard (> 0: the voice comes later than the
lips). The first frame whose mouth opens past the rest gives the time to first motion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import correlate, resample_poly

from engine.audio2motion.phones import FPS, Phone, target_curves


@dataclass
class PhoneSync:
    heard_at: float  # monotonic time the utterance's first sample was heard on the mic
    lag_s: float  # voice (phones as heard) later than the lips by this much
    corr: float  # correlation of lips and phone target at that shift
    first_motion: float | None  # monotonic time of the first frame with the mouth opening


def find_in_recording(utt: np.ndarray, utt_rate: int, rec: np.ndarray, rec_rate: int,
                      after: int = 0) -> tuple[int, float]:
    """(sample of ``rec`` where ``utt`` starts, normalised correlation there)."""
    g = np.gcd(utt_rate, rec_rate)
    u = resample_poly(utt, rec_rate // g, utt_rate // g).astype(np.float32)
    r = rec[after:after + len(u) + 10 * rec_rate]
    if len(r) < len(u):
        raise ValueError(f"the recording ({len(rec) / rec_rate:.1f} s) ends before the "
                         f"utterance could ({after / rec_rate:.1f} s + {len(u) / rec_rate:.1f} s)")
    c = correlate(r, u, mode="valid", method="fft")
    i = int(np.argmax(c))
    seg = r[i:i + len(u)]
    norm = float(np.linalg.norm(seg) * np.linalg.norm(u)) or 1.0
    return after + i, float(c[i]) / norm


def jaw_target(phones: list[tuple[str, float, float]], duration: float) -> np.ndarray:
    """The jaw curve (100 rows/s) the phones imply, as the training targets build it."""
    n = int(np.ceil(duration * FPS)) + 1
    return target_curves([Phone(n_, s, e) for n_, s, e in phones], n)[:, 0]


def phone_sync(openness: np.ndarray, t_frames: np.ndarray, heard_at: float,
               phones: list[tuple[str, float, float]], duration: float,
               max_lag: float = 0.25, step: float = 0.001) -> PhoneSync:
    """Best shift between the lips on camera and the phones as heard (see module doc)."""
    jaw = jaw_target(phones, duration)
    rel = t_frames - heard_at
    keep = (rel > -0.3) & (rel < duration + 0.3)
    o, rel = openness[keep], rel[keep]
    o = (o - o.mean()) / (o.std() + 1e-9)
    lags = np.arange(-max_lag, max_lag + step / 2, step)
    scores = []
    for lag in lags:
        j = np.interp((rel + lag) * FPS, np.arange(len(jaw)), jaw, left=0.0, right=0.0)
        scores.append(float(np.mean(o * (j - j.mean()) / (j.std() + 1e-9))))
    best = int(np.argmax(scores))
    rest = np.median(openness[t_frames < heard_at - 0.2]) if (t_frames < heard_at - 0.2).any() \
        else openness.min()
    moving = np.flatnonzero((openness > rest + 0.02) & (t_frames > heard_at - 1.0))
    first = float(t_frames[moving[0]]) if len(moving) else None
    return PhoneSync(heard_at, float(lags[best]), scores[best], first)
