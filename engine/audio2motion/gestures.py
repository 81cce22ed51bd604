"""Speech gestures: head nods and tilts, brow raises and blinks from the prosody of speech.

People do not talk with a still head. Beats of the head fall on stressed syllables, the
brows go up on pitch accents, phrases end with a small settling nod, and blinks cluster
at phrase boundaries. This layer reads those cues from the same audio stream as
Audio2Motion and turns them into pose and brow motion, so the avatar moves *with* speech
rather than only idling:

- analysis at 100 frames/s on the audio sample clock: a 40 ms window per frame gives
  the level (dBFS) and F0 (normalised autocorrelation, 75-400 Hz, voiced or not);
- trackers: a noise floor (falls at once, rises slowly) and a decaying speech peak;
- events: a **beat** at each syllable onset (the level rises 7 dB within 80 ms above the
  floor; strength from how loud the syllable is against the recent peak), an **accent**
  at an F0 peak 2+ semitones over the speaker's running median, and a **phrase end**
  after 0.2 s of quiet that follows 0.5 s of speech;
- each event adds a smooth pulse ``(x/tau) exp(1 - x/tau)`` to some channels: a beat nods
  the head down (pitch) with a little yaw and roll of random sign, an accent raises the
  brows and lifts the head slightly, a phrase end settles the head and may blink. A slow
  random drift of yaw and roll fades in while the person talks.

Sizes and directions are drawn from a hash of the event's frame and the seed, so nothing
is periodic and the same audio always moves the same way. In silence the layer is zero
(idle life carries on alone). The motion at ``pts`` depends only on audio up to
``pts + lookahead``: pulses may start up to ``lead`` before their event (anticipation,
as heads do) only as far as the look-ahead allows.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .. import motion
from ..audio.pcm import as_float_pcm
from ..idle import blink_closure, hash_uniform, value_noise

FPS = 100
HOP = 1.0 / FPS
WIN = 0.040  # s, analysis window (two periods of a 50 Hz voice at least)
_EPS = 1e-10

# What each event does: channel -> (amplitude, tau s). Amplitudes are at strength 1.
BEAT_PITCH_DEG = 3.0  # nod down on a stressed syllable
BEAT_YAW_DEG = 1.6
BEAT_ROLL_DEG = 1.2
ACCENT_BROW = 0.45
ACCENT_PITCH_DEG = 1.2  # head lifts a little on a pitch accent
END_PITCH_DEG = 1.0
END_BLINK_P = 0.6
TALK_DRIFT_DEG = (2.0, 1.2)  # yaw, roll drift while talking (smooth noise)
BEAT_RISE_DB = 6.0  # a syllable onset: the level rises this much within 80 ms
BEAT_GAP_S = 0.14  # at most one beat per this long

_IX = motion.CHANNEL_INDEX
_BROWS = [_IX["browInnerUp"], _IX["browOuterUpLeft"], _IX["browOuterUpRight"]]
_BLINK = [_IX["eyeBlinkLeft"], _IX["eyeBlinkRight"]]


@lru_cache(maxsize=8)
def _window(w: int) -> tuple[np.ndarray, np.ndarray]:
    """Hann window of ``w`` samples and its own autocorrelation (normalised to lag 0)."""
    win = np.hanning(w + 2)[1:-1]
    ac = np.correlate(win, win, "full")[w - 1:]
    return win, ac / ac[0]


def _pulse(x: np.ndarray | float, tau: float) -> np.ndarray:
    """0 before 0, rises to 1 at ``tau``, decays after and is 0 from ``5 tau`` on: a
    gesture's shape (the taper ends it, so silence after speech is still within ~1.5 s)."""
    x = np.asarray(x, np.float64)
    u = np.clip(x / tau, 0.0, 5.0)
    return u * np.exp(1.0 - u) * (1.0 - (u / 5.0) ** 2) ** 2


class SpeechGestures:
    """Streaming head/brow/blink motion from speech prosody (push audio, ask by pts).

    ``lookahead_ms`` is the Audio2Motion look-ahead: the motion at ``pts`` may use audio
    up to ``pts + lookahead``. ``amount`` scales every gesture (0 turns them off).
    """

    def __init__(self, lookahead_ms: float = 40.0, seed: int = 0, amount: float = 1.0,
                 history_s: float = 4.0) -> None:
        if not 0 <= lookahead_ms <= 1000:
            raise ValueError(f"lookahead_ms must be in 0..1000, got {lookahead_ms}")
        if not 0 <= amount <= 2:
            raise ValueError(f"amount must be in 0..2, got {amount}")
        self.lookahead = lookahead_ms / 1000.0
        self.seed = seed
        self.amount = amount
        self.history_s = history_s
        # A pulse may start before its event by what the look-ahead leaves after the
        # window's half (the event frame is known once audio to its window's end is in).
        self.lead = max(0.0, min(0.06, self.lookahead - WIN / 2))
        self._sr: int | None = None
        self._buf = np.zeros(0, np.float32)
        self._b0 = 0  # stream sample index of _buf[0]
        self._t0 = 0.0  # pts of stream sample 0
        self._next = 0  # next frame index (absolute, t = j / FPS) to analyse
        self._first = 0
        self.events: list[tuple[str, float, float]] = []  # (kind, t, strength)
        self._env: dict[int, float] = {}  # frame -> talking envelope 0..1
        self._reset_trackers()

    def _reset_trackers(self) -> None:
        self._noise = -75.0
        self._peak = -40.0
        self._lvl: list[float] = []  # smoothed level of recent frames
        self._last_beat = -1e9
        self._last_accent = -1e9
        self._speech_run = 0.0
        self._quiet_run = 0.0
        self._ended = True
        self._f0_hist: list[float] = []  # semitones of recent voiced frames
        self._f0_recent: list[float] = []  # (semitones or nan) of the last frames
        self._envelope = 0.0

    # ---------------------------------------------------------------- audio in
    def push(self, pcm: np.ndarray, pts: float, sample_rate: int) -> None:
        """Append audio whose first sample is at ``pts`` (gaps read as silence)."""
        x = as_float_pcm(pcm)  # mono float32 whatever the layout
        if self._sr != sample_rate:
            self._start(sample_rate, pts)
        s = round((pts - self._t0) * sample_rate)  # stream index of this block's start
        end = self._b0 + len(self._buf)
        if s > end + 2 * sample_rate:  # a long gap: start again there
            self._start(sample_rate, pts)
            s, end = 0, 0
        if s > end:
            self._buf = np.concatenate([self._buf, np.zeros(s - end, np.float32)])
        elif s < end:
            x = x[end - s:]  # overlap: keep what we have
        if len(x):
            self._buf = np.concatenate([self._buf, x])
        self._process()

    def _start(self, sr: int, pts: float) -> None:
        self._sr = sr
        self._t0 = pts
        self._buf = np.zeros(0, np.float32)
        self._b0 = 0
        self._first = self._next = math.ceil(pts * FPS - 1e-6)
        self._reset_trackers()

    def ready_until(self) -> float:
        """Latest pts whose gesture motion is final."""
        if self._sr is None:
            return -math.inf
        return (self._next - 1) / FPS - self.lead

    # ---------------------------------------------------------------- analysis
    def _process(self) -> None:
        sr = self._sr
        assert sr is not None
        w = round(WIN * sr)
        end = self._b0 + len(self._buf)
        # frame j's window: stream samples [c - w/2, c + w/2) with c at t_j
        last = math.floor(((end - w + w // 2) / sr + self._t0) * FPS + 1e-9)
        if last < self._next:
            return
        js = np.arange(self._next, last + 1)
        centres = np.round((js / FPS - self._t0) * sr).astype(np.int64)
        starts = centres - w // 2
        idx = (starts - self._b0)[:, None] + np.arange(w)
        padded = np.concatenate([np.zeros(max(0, -int(idx.min())), np.float32), self._buf])
        idx = idx + max(0, -int(idx.min()))
        for c in range(0, len(js), 500):
            level, f0 = self._features(padded[idx[c:c + 500]], sr)
            for j, lv, f in zip(js[c:c + 500].tolist(), level, f0, strict=True):
                self._step(j, float(lv), float(f))
        self._next = last + 1
        keep = int(round((self._next / FPS - self._t0) * sr)) - w
        drop = min(max(0, keep - self._b0), len(self._buf))
        self._buf = self._buf[drop:]
        self._b0 += drop
        self._prune()

    @staticmethod
    def _features(frames: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
        """(F, W) windows -> level dBFS, F0 Hz (0 when unvoiced)."""
        x = frames - frames.mean(axis=1, keepdims=True)
        w = x.shape[1]
        win, win_ac = _window(w)
        x = x * win
        level = 10.0 * np.log10(np.mean(x * x, axis=1) * 2.7 + _EPS)  # Hann power loss
        n = 1 << (2 * w - 1).bit_length()
        spec = np.fft.rfft(x, n, axis=1)
        ac = np.fft.irfft(spec.real**2 + spec.imag**2, n, axis=1)[:, :w]
        lo, hi = max(2, int(sr / 400)), min(w - 2, int(sr / 75))
        # unbiased by the window's own autocorrelation, so long lags are not penalised
        r = ac[:, lo:hi] / (ac[:, :1] + _EPS) / win_ac[lo:hi]
        best = np.argmax(r, axis=1)
        peak = r[np.arange(len(r)), best]
        f0 = np.where(peak > 0.55, sr / (best + lo), 0.0)
        return level, f0

    def _step(self, j: int, level: float, f0: float) -> None:
        t = j / FPS
        # Level trackers, as the DSP lip model's: a floor that follows dips at once and
        # creeps up, a speech peak that jumps up and decays.
        self._noise = level if level < self._noise else min(level, self._noise + 1.5 * HOP)
        gate = max(self._noise + 10.0, -62.0)
        self._peak = max(level, self._peak - 4.0 * HOP, gate + 12.0)
        lv = level if not self._lvl else self._lvl[-1] + (level - self._lvl[-1]) * 0.5
        self._lvl = (self._lvl + [lv])[-10:]
        speech = lv > gate
        voiced = f0 > 0 and speech
        st = 12.0 * math.log2(f0 / 100.0) if voiced else math.nan
        self._f0_recent = (self._f0_recent + [st])[-5:]
        if voiced:
            self._f0_hist = (self._f0_hist + [st])[-300:]  # the last ~3 s of voicing
        # Beat: a syllable onset, the smoothed level up 7 dB within 80 ms, above the gate.
        rise = lv - min(self._lvl[-9:])
        if speech and rise >= BEAT_RISE_DB and t - self._last_beat >= BEAT_GAP_S:
            strength = float(np.clip((lv - (self._peak - 18.0)) / 14.0, 0.2, 1.0))
            self.events.append(("beat", t, strength))
            self._last_beat = t
        # Accent: the frame two back is an F0 peak 2+ semitones over the running median.
        rec = self._f0_recent
        if len(rec) == 5 and len(self._f0_hist) >= 30 and not math.isnan(rec[2]):
            around = [v for v in rec if not math.isnan(v)]
            med = (float(np.median(self._f0_hist))
                   if rec[2] >= max(around) and t - self._last_accent >= 0.35 else math.inf)
            if rec[2] - med >= 2.0:
                strength = float(np.clip((rec[2] - med - 1.0) / 4.0, 0.25, 1.0))
                self.events.append(("accent", t - 2 * HOP, strength))
                self._last_accent = t
        # Phrase end: 0.2 s of quiet after at least 0.5 s of speech.
        if speech:
            self._speech_run += HOP
            self._quiet_run = 0.0
            if self._speech_run >= 0.5:
                self._ended = False
        else:
            self._quiet_run += HOP
            if self._quiet_run >= 0.2:
                if not self._ended:
                    self.events.append(("end", t - self._quiet_run, 1.0))
                    self._ended = True
                self._speech_run = 0.0
        target = 1.0 if (speech or self._quiet_run < 0.3) and not self._ended else 0.0
        tau = 0.4 if target > self._envelope else 0.2
        self._envelope += (target - self._envelope) * (1.0 - math.exp(-HOP / tau))
        if self._envelope < 1e-3 and target == 0.0:
            self._envelope = 0.0
        self._env[j] = self._envelope

    def _prune(self) -> None:
        newest = (self._next - 1) / FPS
        old = newest - self.history_s
        self.events = [e for e in self.events if e[1] >= old - 3.0]
        cut = math.floor(old * FPS)
        for k in [k for k in self._env if k < cut]:
            del self._env[k]

    # ---------------------------------------------------------------- motion out
    def value_at(self, pts: float) -> np.ndarray:
        """Gesture channels (pose, brows, blinks) to add at ``pts``."""
        pts = motion.finite_pts(pts)
        v = motion.zeros()
        if self.amount == 0 or self._sr is None:
            return v
        ix = _IX
        for i, (kind, t, s) in enumerate(self.events):
            x = pts - (t - self.lead)
            if x <= 0 or x > 3.0:
                continue
            key = np.array([round(t * FPS) * 4 + i % 4], np.uint64)
            u = hash_uniform(self.seed, 21, key)[0]
            w = hash_uniform(self.seed, 22, key)[0]
            if kind == "beat":
                down = 1.0 if u > 0.2 else -0.5  # mostly down, sometimes up
                v[ix["pitch"]] -= down * BEAT_PITCH_DEG * s * _pulse(x, 0.14)
                v[ix["yaw"]] += (2 * w - 1) * BEAT_YAW_DEG * s * _pulse(x, 0.22)
                v[ix["roll"]] += (2 * u - 1) * BEAT_ROLL_DEG * s * _pulse(x, 0.25)
            elif kind == "accent":
                brow = ACCENT_BROW * s * _pulse(x, 0.2)
                v[_BROWS] += brow * np.array([1.0, 0.8 + 0.2 * w, 0.8 + 0.2 * u])
                v[ix["pitch"]] += ACCENT_PITCH_DEG * s * _pulse(x, 0.2)
            else:  # phrase end
                v[ix["pitch"]] -= END_PITCH_DEG * (0.5 + 0.5 * u) * _pulse(x, 0.3)
                if w < END_BLINK_P:
                    v[_BLINK] = np.maximum(v[_BLINK], blink_closure(x - 0.08))
        env = self._envelope_at(pts)
        if env > 0:
            v[ix["yaw"]] += env * TALK_DRIFT_DEG[0] * value_noise(pts, 0.5, self.seed, 23)
            v[ix["roll"]] += env * TALK_DRIFT_DEG[1] * value_noise(pts, 0.4, self.seed, 24)
        v *= self.amount
        return v

    def _envelope_at(self, pts: float) -> float:
        k = pts * FPS
        a = self._env.get(math.floor(k))
        b = self._env.get(math.floor(k) + 1)
        if a is None:
            return 0.0 if b is None else b
        if b is None:
            return a
        f = k - math.floor(k)
        return (1 - f) * a + f * b
