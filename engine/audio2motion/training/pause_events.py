"""Sounds people make between words that must not move the mouth: breaths, lip smacks and
clicks, sniffs, a thump on the desk.

Real recordings are full of them (read speech has an audible inhalation before most
phrases), and a model trained on clean pauses opens the jaw on each. :func:`add_pause_events`
puts a few of these sounds into the pauses of a training clip, at levels from well below to
near the voice's, and leaves the targets alone: the mouth stays shut over them.

Each event is synthesised from noise, so no recording is copied into the corpus:

- **breath** (inhalation): noise through one or two broad resonances (400-2500 Hz), a
  slow rise and a faster fall, 0.15-0.6 s;
- **smack**: a 2-10 ms decaying burst, sometimes a pair;
- **sniff**: high-passed noise, 0.1-0.3 s, sharper envelope;
- **thump**: a low (60-200 Hz) decaying tone burst, as a hand on the desk or a mic knock.
"""

from __future__ import annotations

import numpy as np

from .espeak import Phone
from .phones import is_pause

MARGIN_S = 0.06  # events keep this far from the speech around the pause
MIN_PAUSE_S = 0.2  # shorter pauses get no event


def _resonant_noise(n: int, sr: int, rng: np.random.Generator,
                    centres: list[float], width: float) -> np.ndarray:
    """Unit-RMS noise shaped by Gaussian bumps (Hz) of relative ``width`` in the spectrum."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    gain = sum(np.exp(-0.5 * ((f - c) / (width * c)) ** 2) for c in centres)
    y = np.fft.irfft(spec * (gain + 0.03), n)
    return y / (np.sqrt(np.mean(y**2)) + 1e-12)


def breath(sr: int, rng: np.random.Generator) -> np.ndarray:
    """An inhalation: resonant noise, slow attack, faster release."""
    n = round(rng.uniform(0.15, 0.6) * sr)
    k = int(rng.integers(1, 3))
    y = _resonant_noise(n, sr, rng, list(rng.uniform(400, 2500, k)), rng.uniform(0.3, 0.8))
    t = np.linspace(0, 1, n)
    peak = rng.uniform(0.4, 0.8)
    env = np.where(t < peak, (t / peak) ** 1.5, ((1 - t) / (1 - peak)) ** 0.7)
    return y * env


def smack(sr: int, rng: np.random.Generator) -> np.ndarray:
    """A lip smack or click: one or two short decaying bursts."""
    n = round(rng.uniform(0.03, 0.12) * sr)
    y = np.zeros(n)
    for _ in range(int(rng.integers(1, 3))):
        a = int(rng.integers(0, max(1, n // 2)))
        d = max(4, round(rng.uniform(0.002, 0.01) * sr))
        d = min(d, n - a)
        y[a:a + d] += rng.standard_normal(d) * np.exp(-np.arange(d) / (0.25 * d))
    return y / (np.sqrt(np.mean(y**2)) + 1e-12)


def sniff(sr: int, rng: np.random.Generator) -> np.ndarray:
    """A sniff: high-passed noise with a quick rise and fall."""
    n = round(rng.uniform(0.1, 0.3) * sr)
    y = _resonant_noise(n, sr, rng, [min(rng.uniform(2500, 5000), 0.4 * sr)], 0.5)
    return y * np.sin(np.pi * np.linspace(0, 1, n)) ** 3


def thump(sr: int, rng: np.random.Generator) -> np.ndarray:
    """A knock on the desk or microphone: a low decaying tone with a noisy attack."""
    n = round(rng.uniform(0.05, 0.2) * sr)
    t = np.arange(n) / sr
    y = np.sin(2 * np.pi * rng.uniform(60, 200) * t) * np.exp(-t / rng.uniform(0.01, 0.05))
    m = min(n, round(0.004 * sr))
    y[:m] += 0.5 * rng.standard_normal(m)
    return y / (np.sqrt(np.mean(y**2)) + 1e-12)


_KINDS = ((breath, 0.55), (smack, 0.2), (sniff, 0.15), (thump, 0.1))


def add_pause_events(x: np.ndarray, sr: int, phones: list[Phone], rng: np.random.Generator,
                     p: float = 0.6) -> np.ndarray:
    """``x`` with, in each pause of at least :data:`MIN_PAUSE_S` (probability ``p``), one
    non-speech event, its RMS 6-35 dB below the clip's loudest 50 ms."""
    x = x.astype(np.float32).copy()
    hop = max(1, round(0.05 * sr))
    frames = len(x) // hop
    if frames == 0:
        return x
    loud = np.sqrt(np.mean(x[: frames * hop].reshape(frames, hop).astype(np.float64) ** 2,
                           axis=1)).max()
    if loud <= 0:
        return x
    fns, weights = zip(*_KINDS, strict=True)
    probs = np.array(weights) / sum(weights)
    for ph in phones:
        if not is_pause(ph.name) or ph.end - ph.start < MIN_PAUSE_S or rng.random() >= p:
            continue
        a, b = round((ph.start + MARGIN_S) * sr), min(len(x), round((ph.end - MARGIN_S) * sr))
        ev = fns[int(rng.choice(len(fns), p=probs))](sr, rng)
        if b - a < len(ev) // 2:
            continue
        ev = ev[: b - a]
        start = a + int(rng.integers(0, b - a - len(ev) + 1))
        level = loud * 10 ** (-rng.uniform(6.0, 35.0) / 20)
        x[start:start + len(ev)] += (ev * level).astype(np.float32)
    return np.clip(x, -1.0, 1.0)
