"""Audio2Motion v1: a streaming DSP estimator of mouth motion (numpy only, no model weights).

Pipeline, at 100 analysis frames per second on the audio sample clock:

1. Frame ``k`` sits at ``t_k = k / 100`` s; its 32 ms Hann window is centred on sample
   ``round(t_k * sr)`` (exact at any rate, e.g. 220.5-sample hops at 22.05 kHz). All new
   frames of a push are cut out with one fancy-indexing gather and one ``rfft``.
2. Features per frame from a small band filterbank cached per sample rate: speech-band
   (100-4000 Hz) level in dBFS, spectral flatness (noise vs. voiced speech), the high/low
   band tilt (F2/F3 energy, high for spread vowels /i/ /e/) and the centroid of the
   200-1800 Hz band (low for rounded vowels /u/ /o/).
3. Adaptive gating: a noise floor that falls fast and rises slowly (fast only while the
   input sounds like noise: a flat spectrum, or a level steady for > 0.5 s such as mains
   hum) and a decaying speech-peak level normalise loudness, so quiet and loud talkers
   both use the full jaw range and steady noise does not. (A vowel sung steadily for
   more than about a second therefore fades: this is a speech model.)
4. Targets -> look-ahead -> smoothing: each target is the max over the next ``A`` frames
   (weighted down with distance), so the mouth starts opening before a sound onset; then
   one-pole attack/release smoothing (opens fast, closes a bit slower, silence closes
   within ~100 ms). ``mouthClose`` follows energy dips (stops p/b, pauses) faster than the
   jaw, so lips meet while the jaw is still releasing.

Look-ahead ``L``: the motion at ``t_k`` only uses audio up to ``t_k + L``; frames are
final once that audio has arrived (``ready_until``). Queries between frames interpolate,
so a query off the 10 ms grid waits for the next frame (at most 10 ms more audio).
Memory is bounded: only the samples of pending windows and a few seconds of output
frames are kept, whatever the stream length.
"""

from __future__ import annotations

import math
from collections import deque
from functools import lru_cache

import numpy as np

from .stream import CLOSE, FPS, FUNNEL, JAW, N_OUT, PUCKER, SPEAK, STRETCH, MouthStream

HOP = 1.0 / FPS  # s between analysis frames (10 ms)
WIN = 0.032  # s, analysis window
_CHUNK = 500  # analysis frames (5 s) FFT'd at once at most: memory stays flat on huge pushes
_EPS = 1e-10  # power floor: digital silence reads as -100 dBFS


@lru_cache(maxsize=16)
def _analysis(sr: int) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray]:
    """Window length, FFT size, Hann window, band filterbank and flatness bins for ``sr``.

    Bank columns (scaled so each is the mean-square of the window in that band, the same
    at every rate): speech 100-4000 Hz, low 200-1800, low weighted by kHz (centroid
    numerator), high 1800-3500, mid 700-1800, nasal 100-400, above-nasal 400-4000.
    """
    w = max(16, round(WIN * sr))
    n_fft = 1 << (w - 1).bit_length()
    win = np.hanning(w + 2)[1:-1].astype(np.float32)  # no zero end points
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    nyq = sr / 2.0

    def band(lo: float, hi: float) -> np.ndarray:
        return ((freqs >= lo) & (freqs < min(hi, nyq))).astype(np.float64)

    low = band(200, 1800)
    bank = np.stack([band(100, 4000), low, low * freqs / 1000.0, band(1800, 3500),
                     band(700, 1800), band(100, 400), band(400, 4000)], axis=1)
    bank *= 2.0 / (n_fft * float(np.sum(win.astype(np.float64) ** 2)))  # Parseval scale
    flat_bins = np.nonzero((freqs >= 100) & (freqs < min(4000, nyq)))[0]
    return w, n_fft, win, bank.astype(np.float32), flat_bins


def _db_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10((a + _EPS) / (b + _EPS))


def _features(frames: np.ndarray, sr: int) -> np.ndarray:
    """(F, W) windows -> (F, 5): level dBFS, flatness, F2 dB, low centroid Hz, nasal dB.

    F2 dB = high (1800-3500) over mid (700-1800) band: high for /i/ /e/ whose F2 sits
    above 1.8 kHz with a valley below, low for /a/ /o/ /u/ whose F2 is in the mid band.
    Nasal dB = 100-400 Hz over 400-4000 Hz: the murmur of /m/ /n/ is almost all low.
    """
    w, n_fft, win, bank, flat_bins = _analysis(sr)
    x = frames - frames.mean(axis=1, keepdims=True)  # DC offset must not read as voice
    spec = np.fft.rfft(x * win, n_fft, axis=1)
    p = spec.real**2 + spec.imag**2
    b = p @ bank  # (F, 7)
    level = 10.0 * np.log10(b[:, 0] + _EPS)
    pf = p[:, flat_bins] + _EPS * n_fft
    flat = np.exp(np.mean(np.log(pf), axis=1)) / np.mean(pf, axis=1)
    cent = 1000.0 * b[:, 2] / (b[:, 1] + _EPS)
    return np.stack([level, flat, _db_ratio(b[:, 3], b[:, 4]), cent,
                     _db_ratio(b[:, 5], b[:, 6])], axis=1)


class DspAudio2Motion(MouthStream):
    """Streaming Audio2Motion from signal features; implements the Audio2Motion protocol.

    ``lookahead_ms``: audio after ``pts`` that the motion at ``pts`` may use (anticipation).
    ``open_max``: jawOpen of a loud open vowel. ``history_s``: how far back ``motion_at``
    can still answer. Gains and time constants are class attributes, tunable per instance.
    """

    # Gating / normalisation (dB).
    abs_gate_db = -72.0  # nothing below this is speech (a very quiet mic, far away)
    gate_above_floor_db = 8.0
    dyn_range_db = 28.0  # jaw goes 0..1 over this range below the recent speech peak
    peak_decay_db_s = 4.0
    floor_rise_db_s = 1.5
    floor_rise_noise_db_s = 60.0
    # Smoothing time constants (s): (attack, release).
    tau_jaw = (0.018, 0.035)
    tau_shape = (0.035, 0.060)
    tau_close = (0.010, 0.030)
    hangover_s = 0.25  # speaking flag stays on through short pauses
    warmup_frames = 3  # frames at the stream's start that set the noise floor

    def __init__(self, lookahead_ms: float = 60.0, open_max: float = 0.85,
                 history_s: float = 4.0) -> None:
        if not 0 <= lookahead_ms <= 1000:
            raise ValueError(f"lookahead_ms must be in 0..1000, got {lookahead_ms}")
        self.lookahead = lookahead_ms / 1000.0
        self.open_max = open_max
        spare = self.lookahead - WIN / 2  # look-ahead left after the window's own half
        self._ahead = max(0, int(math.floor(spare * FPS + 1e-6)))  # A frames
        self._offset = min(0.0, spare)  # window centre shift (< 0: causal, for small L)
        self._weights = (1.0 - 0.55 * np.arange(self._ahead + 1) / (self._ahead + 1))[:, None]
        self._init_stream(history_s)
        self._next_x = 0  # next frame whose features are due
        self._pending: deque[np.ndarray] = deque(maxlen=self._ahead + 1)
        self._state = np.zeros(5, np.float64)  # smoothed jaw, close, funnel, pucker, stretch
        self._noise = -75.0
        self._peak = -40.0
        self._last_act = -(10**9)
        self._warm = 0
        self._lvl_fast, self._lvl_avg, self._lvl_dev, self._steady_s = -100.0, -100.0, 20.0, 0.0

    # ---------------------------------------------------------------- streaming internals
    def _win_start(self, k: int | np.ndarray, sr: int, w: int) -> int | np.ndarray:
        """First sample of frame k's window at rate sr."""
        c = np.round((np.asarray(k) / FPS + self._offset) * sr).astype(np.int64)
        return c - w // 2

    def _start(self, sr: int, pts: float) -> None:
        self._sr = sr
        k = math.ceil(pts * FPS - 1e-6)
        self._first = self._next_x = self._hist_end = k
        w = _analysis(sr)[0]
        s = round(pts * sr)
        self._b0 = min(s, int(self._win_start(k, sr, w)))
        self._buf = np.zeros(s - self._b0, np.float32)  # silence before the stream
        self._pending.clear()  # frame `first` becomes final once A frames after it exist
        # the first frames whose window lies wholly in the stream set the noise floor
        self._warm = k
        while int(self._win_start(self._warm, sr, w)) < s:
            self._warm += 1

    def _jump(self, s: int) -> None:
        """Skip a long gap: frames inside it are silent; resume analysis just before ``s``."""
        sr = self._sr
        assert sr is not None
        w = _analysis(sr)[0]
        k = math.ceil(((s - w) / sr - self._offset) * FPS)  # windows start >= s - 1.5 w
        k = max(k, self._next_x)
        silent = np.zeros(N_OUT, np.float32)
        new_end = k - self._ahead
        for j in range(max(self._hist_end, new_end - self._cap), new_end):
            self._hist[j % self._cap] = silent
        self._hist_end = max(self._hist_end, new_end)
        self._pending.clear()
        for _ in range(self._ahead):
            self._pending.append(np.zeros(6))
        self._state[:] = 0.0
        self._next_x = k
        start = int(self._win_start(k, sr, w))
        self._b0 = min(start, s)
        self._buf = np.zeros(s - self._b0, np.float32)

    def _process(self) -> None:
        """Analyse every frame whose window is complete, then drop samples no longer needed."""
        sr = self._sr
        assert sr is not None
        w = _analysis(sr)[0]
        end = self._b0 + len(self._buf)
        k = self._next_x
        k_max = math.floor(((end - w + w // 2) / sr - self._offset) * FPS) + 1
        if k_max >= k:
            ks = np.arange(k, k_max + 1)
            starts = self._win_start(ks, sr, w)
            ok = starts + w <= end
            ks, starts = ks[ok], starts[ok]
            if len(ks):
                if starts[0] < self._b0:  # after a rate change the window may reach back
                    pad = int(self._b0 - starts[0])
                    self._buf = np.concatenate([np.zeros(pad, np.float32), self._buf])
                    self._b0 -= pad
                # In chunks: all windows of a 10-minute push at once took gigabytes.
                for c in range(0, len(ks), _CHUNK):
                    ck, cs = ks[c:c + _CHUNK], starts[c:c + _CHUNK]
                    idx = (cs - self._b0)[:, None] + np.arange(w)
                    feats = _features(self._buf[idx], sr)
                    for j, f in zip(ck.tolist(), feats, strict=True):
                        self._step(j, f)
                self._next_x = int(ks[-1]) + 1
        keep_from = int(self._win_start(self._next_x, sr, w))
        drop = min(keep_from - self._b0, len(self._buf))
        if drop > 0:
            self._buf = self._buf[drop:]
            self._b0 += drop

    def _step(self, j: int, f: np.ndarray) -> None:
        """One analysis frame: trackers -> targets; finalise frame j - A."""
        level, flat, f2, cent, nas = (float(v) for v in f)
        if j < self._warm:  # the window reaches before the stream began: nothing to hear
            level, flat = -100.0, 1.0
        # Noise-like: flat spectrum (hiss, fan) or a level that has not moved for a while
        # (hum, drones). Speech is neither: harmonic and modulated at the syllable rate.
        self._lvl_fast += (level - self._lvl_fast) * (1.0 - math.exp(-HOP / 0.05))
        a = 1.0 - math.exp(-HOP / 0.3)
        self._lvl_avg += (self._lvl_fast - self._lvl_avg) * a
        self._lvl_dev += (abs(self._lvl_fast - self._lvl_avg) - self._lvl_dev) * a
        steady = self._lvl_dev < 2.0 and level > self.abs_gate_db
        self._steady_s = self._steady_s + HOP if steady else 0.0
        noisy = flat > 0.35 or self._steady_s > 0.5
        # Noise floor: follows dips at once, creeps up slowly (fast on noise). A stream
        # starts on what the room sounds like (nobody speaks in its first 30 ms), so those
        # frames lift the floor to their level: room noise or a hum at stream start never
        # opens the mouth. Speech from the very first frame costs at most its first
        # syllable: the floor follows the first dip down at once.
        if 0 <= j - self._warm < self.warmup_frames:
            self._noise = max(self._noise, level - 2.0)
        if level < self._noise:
            self._noise = level
        else:
            rise = self.floor_rise_noise_db_s if noisy else self.floor_rise_db_s
            self._noise = min(level, self._noise + rise * HOP)
        gate = max(self._noise + self.gate_above_floor_db, self.abs_gate_db)
        # Speech peak: jumps up, decays; never closer than 15 dB to the gate.
        self._peak = max(level, self._peak - self.peak_decay_db_s * HOP, gate + 15.0)
        lower = max(gate, self._peak - self.dyn_range_db)
        loud = min(max((level - lower) / (self._peak - lower), 0.0), 1.0)
        voiced = min(max((0.45 - flat) / 0.3, 0.0), 1.0)
        act = level > gate + 3.0 and loud > 0.1
        if act:
            self._last_act = j
        # Vowel shape. Medians measured on espeak-ng and on formant-synthesised vowels:
        # F2 dB /a/ -13..-29, /u/ -3..-25, /i/ +10..+48; centroid /a/ 850, /u/ 410-470,
        # /i/ 285; nasal dB /m/ 10.6, vowels 3.4-7.1.
        stretch = min(max(f2 / 8.0, 0.0), 1.0)
        nasal = min(max((nas - 8.0) / 3.0, 0.0), 1.0) * (1.0 - stretch)
        rounded = min(max((640.0 - cent) / 160.0, 0.0), 1.0) * (1.0 - stretch) * (1.0 - nasal)
        presence = min(1.0, 2.0 * loud) * (0.3 + 0.7 * voiced)
        jaw = self.open_max * loud**0.8 * (0.3 + 0.7 * voiced)
        jaw *= 1.0 - 0.35 * max(stretch, rounded)
        # Lips meet in silence, in deep dips (stop closures of p/b) and on nasal murmur (m).
        close = max(min(max(1.0 - loud / 0.2, 0.0), 1.0), 0.8 * nasal)
        target = np.array([jaw, close, 0.55 * rounded * presence, 0.65 * rounded * presence,
                           0.6 * stretch * presence, 1.0 if act else 0.0])
        self._pending.append(target)
        k = j - self._ahead
        if k < self._first:
            return
        win = np.asarray(self._pending)
        if len(win) < self._ahead + 1:  # stream start: frames before it were silence
            win = np.vstack([np.zeros((self._ahead + 1 - len(win), 6)), win])
        ant = np.max(self._weights * win, axis=0)  # anticipation: future pulls the mouth
        ant[CLOSE] = win[0, CLOSE]  # lips close on the sound itself, not before
        self._finalise(k, ant)

    def _finalise(self, k: int, target: np.ndarray) -> None:
        s = self._state
        for i, taus in ((JAW, self.tau_jaw), (CLOSE, self.tau_close),
                        (FUNNEL, self.tau_shape), (PUCKER, self.tau_shape),
                        (STRETCH, self.tau_shape)):
            tau = taus[0] if target[i] > s[i] else taus[1]
            s[i] += (target[i] - s[i]) * (1.0 - math.exp(-HOP / tau))
        speaking = self._last_act >= k - round(self.hangover_s * FPS)
        row = self._hist[k % self._cap]
        row[:SPEAK] = np.clip(s, 0.0, 1.0)
        row[SPEAK] = 1.0 if speaking else 0.0
        self._hist_end = k + 1
