"""Speaker and channel augmentation: make synthetic speech look like many voices and microphones.

espeak-ng speech has one spectral signature: clean harmonics, no breath, a fixed spectral
tilt, formants at one vocal-tract size per voice. Real voices differ in all of these, and
microphones, rooms and telephone lines add their own colouring. Each function here changes
one of them while keeping the phone timings valid (targets stay correct):

- :func:`vtl_warp`: relabel the sample rate, so every frequency (pitch *and* formants) is
  scaled by ``a`` and time by ``1 / a`` (a smaller or larger speaker, a little faster or
  slower); the phone times are scaled with it;
- :func:`random_eq`: a smooth random equaliser (spectral tilt, broad peaks and dips,
  high-pass and low-pass edges) applied in the frequency domain;
- :func:`breath`: aspiration noise that follows the speech envelope (voices are not pure
  harmonic sums);
- :func:`telephone`: the 300-3400 Hz band, 8 kHz sampling and 8-bit mu-law companding;
- :func:`flutter`: slow random pitch/formant wobble (time-varying resampling, < 2 %).
"""

from __future__ import annotations

import numpy as np

from .espeak import Phone


def vtl_warp(pcm: np.ndarray, sr: int, phones: list[Phone], rng: np.random.Generator,
             lo: float = 0.85, hi: float = 1.2) -> tuple[int, list[Phone]]:
    """New sample rate and phone times for the same samples: frequencies x a, time / a."""
    new_sr = max(4000, round(sr * rng.uniform(lo, hi)))
    a = new_sr / sr
    return new_sr, [Phone(p.name, p.start / a, p.end / a) for p in phones]


def random_eq(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random gain curve over log frequency (tilt, bumps, band edges), RMS kept."""
    n = len(x)
    if n < 16:
        return x
    spec = np.fft.rfft(x.astype(np.float64))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    octs = np.log2(np.maximum(f, 20.0) / 1000.0)
    gain_db = rng.uniform(-6.0, 4.0) * octs  # tilt, dB per octave around 1 kHz
    for _ in range(int(rng.integers(1, 5))):
        centre = rng.uniform(np.log2(150 / 1000), np.log2(min(7000.0, 0.45 * sr) / 1000))
        width = rng.uniform(0.25, 1.5)
        gain_db += rng.uniform(-10.0, 10.0) * np.exp(-0.5 * ((octs - centre) / width) ** 2)
    gain_db = np.clip(gain_db, -30.0, 20.0)
    g = 10 ** (gain_db / 20)
    if rng.random() < 0.5:  # high-pass (small mics, wind filters): 12 dB/octave
        fc = rng.uniform(60.0, 400.0)
        g /= np.sqrt(1 + (fc / np.maximum(f, 1.0)) ** 4)
    if rng.random() < 0.3:  # low-pass (cheap mics, codecs)
        fc = rng.uniform(2500.0, 8000.0)
        g /= np.sqrt(1 + (f / fc) ** (2 * int(rng.integers(2, 5))))
    y = np.fft.irfft(spec * g, n)
    rms_in, rms_out = np.sqrt(np.mean(x.astype(np.float64) ** 2)), np.sqrt(np.mean(y**2))
    return (y * (rms_in / (rms_out + 1e-12))).astype(np.float32)


def envelope(x: np.ndarray, sr: int, win_s: float = 0.02) -> np.ndarray:
    """Amplitude envelope: RMS over a sliding window of ``win_s``."""
    k = max(1, round(win_s * sr))
    p = np.convolve(x.astype(np.float64) ** 2, np.ones(k) / k, mode="same")
    return np.sqrt(np.maximum(p, 0.0))


def breath(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Add high-passed noise that follows the speech envelope, 8-30 dB below the voice."""
    n = len(x)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    fc = rng.uniform(300.0, 1500.0)
    spec /= np.sqrt(1 + (fc / np.maximum(f, 1.0)) ** 4)
    noise = np.fft.irfft(spec, n)
    noise /= np.sqrt(np.mean(noise**2)) + 1e-12
    level = 10 ** (-rng.uniform(8.0, 30.0) / 20)
    return (x + noise * envelope(x, sr) * level).astype(np.float32)


def mu_law(x: np.ndarray, bits: int = 8) -> np.ndarray:
    """Quantise with mu-law companding (G.711-like), peak-normalised then restored."""
    peak = float(np.abs(x).max()) + 1e-12
    y = x / peak
    mu = 2**bits - 1
    c = np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu)
    q = np.round((c + 1) / 2 * mu) / mu * 2 - 1
    return (np.sign(q) * np.expm1(np.abs(q) * np.log1p(mu)) / mu * peak).astype(np.float32)


def telephone(x: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """300-3400 Hz band, resampled to 8 kHz, mu-law 8 bit; returns (pcm, 8000)."""
    from .corpus import resample

    n = len(x)
    spec = np.fft.rfft(x.astype(np.float64))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    lo, hi = rng.uniform(200.0, 400.0), rng.uniform(3000.0, 3600.0)
    g = 1 / np.sqrt(1 + (lo / np.maximum(f, 1.0)) ** 8) / np.sqrt(1 + (f / hi) ** 16)
    y = resample(np.fft.irfft(spec * g, n).astype(np.float32), sr, 8000)
    return mu_law(y), 8000


def flutter(x: np.ndarray, rng: np.random.Generator, depth: float = 0.02) -> np.ndarray:
    """Time-varying resampling by a slow random rate (1 +- depth): pitch and formant wobble.

    Same length; sample times move by at most a few ms, so phone timings stay valid.
    """
    n = len(x)
    if n < 64:
        return x
    knots = max(2, n // 2000)
    rate = 1 + depth * np.clip(rng.standard_normal(knots), -1.5, 1.5) / 1.5
    r = np.interp(np.arange(n), np.linspace(0, n - 1, knots), rate)
    t = np.cumsum(r)
    t = (t - t[0]) * (n - 1) / (t[-1] - t[0])
    return np.interp(t, np.arange(n), x).astype(np.float32)
