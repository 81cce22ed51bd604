"""Log-mel features for the learned Audio2Motion, the same at every sample rate, streamable.

Frame ``j`` is a 25 ms Hann window that *ends* at ``t_j = j / 100`` s (a causal window: frame j
uses no audio after t_j). Its power spectrum is pooled by a triangular mel filterbank built
in Hz for each sample rate and scaled by Parseval so a band's value is the mean-square of
the signal in that band whatever the rate (bands above Nyquist read as digital silence).

Loudness normalisation (automatic gain) is causal and vectorised: a speech-peak tracker
that jumps up and decays slowly (``p_j = max(l_j, p_{j-1} - D)``, computed as a running
maximum of ``l_i + D i``) and a noise-floor tracker that falls at once and creeps up. The
network sees mel bands relative to the peak, the level above the floor, the absolute level,
and how periodic the frame is (voicing: the normalised autocorrelation's peak at lags of
90-400 Hz, from the same spectrum): vowels are voiced, breaths, clicks and room noise are not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

FPS = 100
WIN = 0.025  # s
N_MELS = 40
FMIN, FMAX = 60.0, 7600.0
N_FEATURES = N_MELS + 4
F0_MIN, F0_MAX = 90.0, 400.0  # Hz: the lags searched for voicing
_EPS = 1e-10
SILENCE_DB = 10.0 * np.log10(_EPS)  # band power of digital silence
PEAK_MIN_DB = -70.0  # the peak tracker never goes below this: silence stays quiet
PEAK_DECAY_DB = 6.0 / FPS  # per frame
FLOOR_RISE_DB = 10.0 / FPS  # per frame
SILENT_DB = -95.0  # a frame below this hears nothing (digital silence, before the stream)
WARM_FRAMES = 4  # the first frames that hear something set the floor (a 25 ms window)
WARM_AFTER = 4  # ... if they come this early: windows reaching before the stream are silent


def _mel(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + f / 700.0)


@lru_cache(maxsize=16)
def analysis(sr: int) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Window length, FFT size, window and (bins, N_MELS + 1) filterbank for rate ``sr``.

    The last filterbank column is the whole FMIN..FMAX band (the frame level). The FFT is at
    least twice the window, so the autocorrelation from its power spectrum does not wrap.
    """
    w = max(16, round(WIN * sr))
    n_fft = 1 << (2 * w - 1).bit_length()
    win = np.hanning(w + 2)[1:-1].astype(np.float32)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    edges = 700.0 * (10 ** (np.linspace(_mel(np.array(FMIN)), _mel(np.array(FMAX)),
                                         N_MELS + 2) / 2595.0) - 1.0)
    bank = np.zeros((len(freqs), N_MELS + 1))
    for m in range(N_MELS):
        lo, c, hi = edges[m : m + 3]
        up = (freqs - lo) / (c - lo)
        down = (hi - freqs) / (hi - c)
        bank[:, m] = np.clip(np.minimum(up, down), 0.0, None)
    bank[:, N_MELS] = (freqs >= FMIN) & (freqs < FMAX)
    bank[freqs >= sr / 2.0] = 0.0
    bank *= 2.0 / (n_fft * float(np.sum(win.astype(np.float64) ** 2)))
    return w, n_fft, win, bank.astype(np.float32)


@lru_cache(maxsize=16)
def _voicing_lags(sr: int) -> tuple[slice, np.ndarray]:
    """Lags searched for voicing at ``sr`` and the window's own normalised autocorrelation
    there (dividing by it undoes the taper, so a periodic frame reads near 1)."""
    w, n_fft, win, _ = analysis(sr)
    lo, hi = max(1, int(sr / F0_MAX)), min(w - 2, int(np.ceil(sr / F0_MIN)))
    wac = np.fft.irfft(np.abs(np.fft.rfft(win.astype(np.float64), n_fft)) ** 2, n_fft)
    return slice(lo, hi + 1), (wac[lo:hi + 1] / wac[0]).astype(np.float32)


def frame_powers(frames: np.ndarray, sr: int) -> np.ndarray:
    """(F, w) windows -> (F, N_MELS + 2): mel band powers in dB, the level in dB, then the
    voicing (0 noise .. 1 periodic)."""
    _, n_fft, win, bank = analysis(sr)
    x = frames - frames.mean(axis=1, keepdims=True)  # DC offset is not sound
    spec = np.fft.rfft(x * win, n_fft, axis=1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    lags, wac = _voicing_lags(sr)
    ac = np.fft.irfft(power, n_fft, axis=1)
    voicing = (ac[:, lags] / (ac[:, :1] + _EPS) / wac).max(axis=1) if len(wac) else 0.0
    out = np.empty((len(frames), N_MELS + 2), np.float32)
    out[:, :N_MELS + 1] = 10.0 * np.log10(power @ bank + _EPS)
    out[:, N_MELS + 1] = np.clip(voicing, 0.0, 1.0)
    return out


def mute_before_stream(bands_db: np.ndarray, starts: np.ndarray, stream_start: int) -> None:
    """Frames whose window begins before the stream's first sample hear nothing: their
    bands become digital silence and their voicing 0 (in place), so the step into the
    stream (a DC offset, a room) is not a sound. Shared by :func:`features` and the
    streaming model."""
    before = starts < stream_start
    bands_db[before, :N_MELS + 1] = SILENCE_DB
    bands_db[before, N_MELS + 1:] = 0.0


def windows(x: np.ndarray, sr: int, n_frames: int, first: int = 0) -> np.ndarray:
    """(n_frames, w) causal windows of frames ``first ..`` from a signal starting at t=0.

    Samples before 0 or past the end read as zeros.
    """
    w = analysis(sr)[0]
    ends = np.round(np.arange(first, first + n_frames) * sr / FPS).astype(np.int64)
    idx = ends[:, None] - w + np.arange(w)
    pad = np.concatenate([np.zeros(w, np.float32), x.astype(np.float32),
                          np.zeros(w, np.float32)])
    return pad[np.clip(idx + w, 0, len(pad) - 1)]


@dataclass
class Normaliser:
    """Causal loudness normalisation state (peak and floor trackers, in dB)."""

    peak: float = PEAK_MIN_DB
    floor: float = np.inf  # no frame yet: the first frame's level becomes the floor
    started: bool = field(default=False)  # the first sound has set floor and peak
    _warm: int = field(default=0)  # frames that heard something, up to WARM_FRAMES
    _frames: int = field(default=0)  # silent frames before the first sound

    def __call__(self, bands_db: np.ndarray) -> np.ndarray:
        """(F, N_MELS + 2) from :func:`frame_powers` -> (F, N_FEATURES) network inputs;
        updates the state."""
        n = len(bands_db)
        if n == 0:
            return np.zeros((0, N_FEATURES), np.float32)
        lvl = bands_db[:, N_MELS].astype(np.float64)
        if not self.started:
            # A stream starts on the room's sound (nobody speaks in its first frames): the
            # first frame that hears anything (windows reaching before the stream read as
            # digital silence) sets the floor there and the peak 20 dB above, so room noise
            # at the start reads as quiet, not as a loud talker; speech lifts the peak at once.
            heard = np.flatnonzero(lvl > SILENT_DB)
            k = int(heard[0]) if len(heard) else n
            if k > 0:  # digital silence before the first sound: the state as it is
                head = self._run(bands_db[:k], lvl[:k])
                self._frames += k
                return head if k == n else np.concatenate([head, self(bands_db[k:])])
            if self._frames > WARM_AFTER:  # the stream began in digital silence (a file, a
                self.started = True  # TTS): its first sound is the voice, not the room
                return self._run(bands_db, lvl)
            # the first WARM frames that hear anything lift the floor to the loudest of
            # them (the first windows still hold some of the silence before the stream)
            m = min(n, WARM_FRAMES - self._warm)
            outs = []
            for i in range(m):
                self.floor = max(self.floor, float(lvl[i])) if self._warm else float(lvl[i])
                self.peak = max(self.peak, self.floor + 20.0)
                self._warm += 1
                outs.append(self._run(bands_db[i:i + 1], lvl[i:i + 1]))
            if self._warm >= WARM_FRAMES:
                self.started = True
            if m < n:
                outs.append(self(bands_db[m:]))
            return np.concatenate(outs)
        return self._run(bands_db, lvl)

    def _run(self, bands_db: np.ndarray, lvl: np.ndarray) -> np.ndarray:
        n = len(bands_db)
        i = np.arange(n)
        peak = np.maximum(np.maximum.accumulate(np.maximum(lvl, PEAK_MIN_DB) + PEAK_DECAY_DB * i),
                          self.peak - PEAK_DECAY_DB) - PEAK_DECAY_DB * i
        floor = np.minimum(np.minimum.accumulate(lvl - FLOOR_RISE_DB * i),
                           self.floor + FLOOR_RISE_DB) + FLOOR_RISE_DB * i
        self.peak, self.floor = float(peak[-1]), float(floor[-1])
        out = np.empty((n, N_FEATURES), np.float32)
        out[:, :N_MELS] = np.clip(bands_db[:, :N_MELS] - peak[:, None], -60.0, 10.0) / 20.0
        out[:, N_MELS] = np.clip(lvl - peak, -60.0, 10.0) / 20.0
        out[:, N_MELS + 1] = np.clip(lvl - floor, 0.0, 60.0) / 20.0
        out[:, N_MELS + 2] = np.clip(lvl + 50.0, -50.0, 50.0) / 20.0
        out[:, N_MELS + 3] = bands_db[:, N_MELS + 1]
        return out


def features(x: np.ndarray, sr: int, n_frames: int | None = None) -> np.ndarray:
    """Whole-signal features (N, N_FEATURES), identical to what the streaming model computes."""
    if n_frames is None:
        n_frames = int(np.floor(len(x) * FPS / sr)) + 1
    out = []
    norm = Normaliser()
    for a in range(0, n_frames, 4000):  # chunks bound the memory of the window gather
        b = min(n_frames, a + 4000)
        bands = frame_powers(windows(x, sr, b - a, a), sr)
        ends = np.round(np.arange(a, b) * sr / FPS).astype(np.int64)
        mute_before_stream(bands, ends - analysis(sr)[0], 0)
        out.append(norm(bands))
    return np.concatenate(out) if out else np.zeros((0, N_FEATURES), np.float32)
