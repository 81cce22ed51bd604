"""Synthetic speech for tests: vowels from a glottal pulse train and formant resonators.

Deterministic and dependency-light (numpy + scipy), so a test knows exactly where the
voice is: e.g. ``utterance(16000)`` is silence, a vowel, silence.
"""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

FORMANTS = {  # (F1, F2, F3) in Hz, adult male averages
    "a": (730, 1090, 2440),
    "i": (270, 2290, 3010),
    "u": (300, 870, 2240),
}


def vowel(v: str, dur: float, sr: int, f0: float = 120.0, amp: float = 0.3) -> np.ndarray:
    """A glottal pulse train through three formant resonators (a crude but real vowel)."""
    n = round(dur * sr)
    t = np.arange(n) / sr
    phase = np.cumsum(f0 * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))) / sr  # slight vibrato
    src = np.diff(np.floor(phase), prepend=0.0)  # one impulse per period
    src = lfilter([1.0], [1.0, -0.97], src)  # glottal roll-off (-6 dB/oct)
    y = np.diff(src, prepend=0.0)  # lip radiation (+6 dB/oct)
    for f, bw in zip(FORMANTS[v], (90.0, 110.0, 170.0), strict=True):
        r = math.exp(-math.pi * bw / sr)
        y = lfilter([1 - r], [1.0, -2 * r * math.cos(2 * math.pi * f / sr), r * r], y)
    y = y - y.mean()
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)  # 10 ms fades, no clicks
    return (amp * y / np.abs(y).max() * ramp).astype(np.float32)


def syllables(sr: int, pattern: list[tuple[float, float]], total: float, v: str = "a"
              ) -> np.ndarray:
    """Silence of ``total`` seconds with a vowel at each ``(start, duration)``."""
    x = np.zeros(round(total * sr), np.float32)
    for start, dur in pattern:
        seg = vowel(v, dur, sr)
        i = round(start * sr)
        x[i : i + len(seg)] += seg
    return x


def write_wav(path: Path, pcm: np.ndarray, sr: int) -> Path:
    """16-bit mono WAV."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def espeak(text: str, sr: int, voice: str = "en-us", wpm: int = 150) -> np.ndarray:
    """``text`` spoken by espeak-ng (installed by .ci/run), mono float32 at ``sr`` Hz."""
    import shutil
    import subprocess
    import tempfile

    from scipy.signal import resample_poly

    exe = shutil.which("espeak-ng")
    if exe is None:
        raise FileNotFoundError("espeak-ng")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "say.wav"
        subprocess.run([exe, "-v", voice, "-s", str(wpm), "-w", str(wav), text], check=True,
                       capture_output=True)
        with wave.open(str(wav)) as w:
            rate = w.getframerate()
            x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
    g = math.gcd(rate, sr)
    return resample_poly(x, sr // g, rate // g).astype(np.float32)


def phrases(sr: int, script: list[tuple[float, str]], total: float, voice: str = "en-us"
            ) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Silence of ``total`` s with espeak-ng saying each ``(start, text)``.

    Returns the audio and where speech really is: (start, end) of each voiced stretch,
    measured on the signal (10 ms RMS above -40 dBFS, gaps under 150 ms bridged).
    """
    x = np.zeros(round(total * sr), np.float32)
    for start, text in script:
        seg = espeak(text, sr, voice)
        i = round(start * sr)
        x[i:i + len(seg)] += seg[: len(x) - i]
    hop = sr // 100
    rms = np.sqrt(np.mean(x[: len(x) // hop * hop].reshape(-1, hop) ** 2, axis=1))
    active = rms > 0.01
    spans: list[list[float]] = []
    for k in np.flatnonzero(active):
        t = k / 100
        if spans and t - spans[-1][1] < 0.15:
            spans[-1][1] = t + 0.01
        else:
            spans.append([t, t + 0.01])
    return x, [(a, b) for a, b in spans]
