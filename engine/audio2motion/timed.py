"""Mouth motion from a TTS's own timings (phones, visemes or ARKit weights) instead of the
audio estimate.

A :class:`TimedTrack` holds the timed events of one audio stream, on that stream's own
sample clock (seconds from its first sample), and where the stream's samples play on the
engine clock (:meth:`TimedTrack.place`, told by whoever mixes the stream in). It turns
phones into the estimators' mouth rows at 100 rows/s exactly as the training targets are
built (:func:`.phones.target_curves`: the pose table, a 15 ms Gaussian for coarticulation,
bilabial closures kept shut at their centre), so timed lips and estimated lips speak one
language. :class:`TimedAudio2Motion` wraps any estimator: where a track covers ``pts`` its
rows win, elsewhere the estimator's.

Phones come as espeak-ng mnemonics, ARPAbet (``AH1``, stress digits allowed) or IPA
(``ə``, ``tʃ``, length and stress marks allowed); visemes as the 15 Oculus/ovrLipSync names
(``sil PP FF TH DD kk CH SS nn RR aa E ih oh ou``); ARKit weights as keyframes
``{jawOpen, mouthClose, mouthFunnel, mouthPucker, mouthStretchLeft/Right, mouthRollLower}``
interpolated linearly. The schema is documented in docs/tts-timings.md.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..motion import MotionFrame
from .phones import _SHAPE_ROWS, FPS, is_bilabial, is_pause, pose
from .stream import CLOSE, FUNNEL, JAW, N_OUT, PUCKER, ROLL, SPEAK, STRETCH, write_row

ALPHABETS = ("espeak", "arpabet", "ipa", "viseme")
SIGMA_MS = 15.0  # coarticulation smoothing, as in target_curves
OPEN_END_S = 0.25  # a phone without an end and no phone after it lasts this long

_ARPABET = {
    "AA": "A:", "AE": "a", "AH": "V", "AO": "O:", "AW": "aU", "AY": "aI", "EH": "E",
    "ER": "3:", "EY": "eI", "IH": "I", "IY": "i:", "OW": "oU", "OY": "OI", "UH": "U",
    "UW": "u:", "AX": "@", "AXR": "3", "IX": "I2", "UX": "u:",
    "B": "b", "CH": "tS", "D": "d", "DH": "D", "F": "f", "G": "g", "HH": "h", "H": "h",
    "JH": "dZ", "K": "k", "L": "l", "EL": "l", "M": "m", "EM": "m", "N": "n", "EN": "n",
    "NG": "N", "P": "p", "R": "r", "S": "s", "SH": "S", "T": "t", "TH": "T", "V": "v",
    "W": "w", "WH": "w", "Y": "j", "Z": "z", "ZH": "Z", "DX": "t", "Q": "?",
    "SIL": "_", "SP": "_", "SPN": "_", "PAU": "_",
}
_IPA = {
    "a": "a", "ɑ": "A:", "æ": "a", "ʌ": "V", "ə": "@", "ɚ": "3", "ɐ": "a2", "ɒ": "0",
    "ɔ": "O:", "aʊ": "aU", "aɪ": "aI", "ɛ": "E", "ɜ": "3:", "ɝ": "3:", "eɪ": "eI", "e": "e",
    "ɪ": "I", "i": "i:", "oʊ": "oU", "əʊ": "oU", "o": "o", "ɔɪ": "OI", "ʊ": "U", "u": "u:",
    "y": "y", "ʏ": "Y", "ø": "Y", "œ": "E", "ɨ": "I#", "ɯ": "U",
    "b": "b", "d": "d", "f": "f", "ɡ": "g", "g": "g", "h": "h", "k": "k", "l": "l", "ɫ": "l",
    "m": "m", "n": "n", "ŋ": "N", "p": "p", "s": "s", "t": "t", "v": "v", "w": "w",
    "z": "z", "ʃ": "S", "ʒ": "Z", "tʃ": "tS", "dʒ": "dZ", "θ": "T", "ð": "D", "j": "j",
    "ɹ": "r", "r": "r", "ɾ": "t", "ʔ": "?", "x": "x", "ç": "x", "ʁ": "R", "ɲ": "n",
}
_VISEMES = {
    "sil": "_", "PP": "p", "FF": "f", "TH": "T", "DD": "d", "kk": "k", "CH": "tS",
    "SS": "s", "nn": "n", "RR": "r", "aa": "a", "E": "E", "ih": "I", "oh": "O:", "ou": "u:",
}
_IPA_MARKS = "ˈˌːˑ̩̯̃ʰʲʷ.‿"
WEIGHT_NAMES = ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthStretchLeft",
                "mouthStretchRight", "mouthRollLower")


def to_espeak(name: str, alphabet: str) -> str:
    """The espeak-ng mnemonic (the pose table's key) of a phone or viseme name.

    ValueError for a name the alphabet does not have (an unknown espeak mnemonic is
    accepted: :func:`.phones.pose` falls back to a half-open neutral mouth)."""
    if alphabet == "espeak":
        return name
    if alphabet == "arpabet":
        key = name.upper().rstrip("012")
        if key in _ARPABET:
            return _ARPABET[key]
    elif alphabet == "ipa":
        key = "".join(c for c in name if c not in _IPA_MARKS)
        if key == "":
            return "_"
        if key in _IPA:
            return _IPA[key]
        if key[:2] in _IPA:
            return _IPA[key[:2]]
        if key[:1] in _IPA:
            return _IPA[key[:1]]
    elif alphabet == "viseme":
        if name in _VISEMES:
            return _VISEMES[name]
    else:
        raise ValueError(f"unknown alphabet {alphabet!r}; use one of {', '.join(ALPHABETS)}")
    raise ValueError(f"{name!r} is not an {alphabet} "
                     f"{'viseme' if alphabet == 'viseme' else 'phone'}")


@dataclass
class _Phone:
    name: str  # espeak mnemonic
    start: float
    end: float | None  # None: until the next phone (or OPEN_END_S)


def weights_row(weights: Mapping[str, float]) -> np.ndarray:
    """A mouth row from ARKit blendshape weights (missing names are 0)."""
    def w(name: str) -> float:
        return float(weights.get(name, 0.0))

    row = np.zeros(N_OUT, np.float32)
    row[JAW], row[CLOSE] = w("jawOpen"), w("mouthClose")
    row[FUNNEL], row[PUCKER] = w("mouthFunnel"), w("mouthPucker")
    row[STRETCH] = 0.5 * (w("mouthStretchLeft") + w("mouthStretchRight"))
    row[ROLL] = w("mouthRollLower")
    row[SPEAK] = 1.0 if max(row[JAW], row[FUNNEL], row[PUCKER], row[ROLL]) > 0.05 else 0.0
    return row


class TimedTrack:
    """Timed mouth events of one stream, and where its samples play on the engine clock.

    Event times are seconds on the stream's sample clock (sample index / rate). Thread-safe:
    events and placements come from the stream's threads, rows go to the engine thread.
    """

    def __init__(self, alphabet: str = "espeak", max_events: int = 100_000) -> None:
        if alphabet not in ALPHABETS:
            raise ValueError(f"unknown alphabet {alphabet!r}; use one of {', '.join(ALPHABETS)}")
        self.alphabet = alphabet
        self.max_events = max_events
        self._lock = threading.Lock()
        self._phones: list[_Phone] = []
        self._starts: list[float] = []
        self._keys_t: list[float] = []
        self._keys: list[np.ndarray] = []
        self._pieces: list[tuple[float, float, float]] = []  # (pts, stream t, duration)
        self._cache: dict[int, np.ndarray] = {}
        r = max(1, int(round(3 * SIGMA_MS / 1000 * FPS)))
        g = np.exp(-0.5 * (np.arange(-r, r + 1) / (SIGMA_MS / 1000 * FPS)) ** 2)
        self._kernel = (g / g.sum()).astype(np.float64)
        self._r = r

    # -- events ----------------------------------------------------------------------------
    @property
    def events(self) -> int:
        return len(self._phones) + len(self._keys)

    def add_phones(self, phones: Iterable[tuple[str, float, float | None]],
                   alphabet: str | None = None) -> int:
        """Add ``(name, start, end or None)`` phones, named in ``alphabet`` (default: the
        track's; ``"viseme"`` for viseme names).

        ValueError (nothing added) for an unknown name, a time that is not a finite number
        >= 0, an end before its start, or more events than ``max_events``."""
        new = []
        for name, start, end in phones:
            if not isinstance(name, str):
                raise ValueError(f"a phone name must be a string, got {name!r}")
            s = _time(start, "start")
            e = None if end is None else _time(end, "end")
            if e is not None and e < s:
                raise ValueError(f"phone {name!r} ends ({e:g} s) before it starts ({s:g} s)")
            new.append(_Phone(to_espeak(name, alphabet or self.alphabet), s, e))
        with self._lock:
            self._check_room(len(new))
            for p in new:
                i = bisect.bisect_right(self._starts, p.start)
                self._starts.insert(i, p.start)
                self._phones.insert(i, p)
            self._cache.clear()
        return len(new)

    def add_weights(self, keys: Iterable[tuple[float, Mapping[str, float]]]) -> int:
        """Add ARKit weight keyframes ``(t, {name: 0..1})``; ValueError for bad ones."""
        new = []
        for t, weights in keys:
            tt = _time(t, "t")
            if not isinstance(weights, Mapping):
                raise ValueError("weights must be an object of ARKit names -> 0..1")
            for k, v in weights.items():
                if k not in WEIGHT_NAMES:
                    raise ValueError(f"unknown weight {k!r}; use {', '.join(WEIGHT_NAMES)}")
                if isinstance(v, bool) or not isinstance(v, (int, float)) \
                        or not 0.0 <= float(v) <= 1.0:
                    raise ValueError(f"weight {k} must be a number 0..1, got {v!r}")
            new.append((tt, weights_row(weights)))
        with self._lock:
            self._check_room(len(new))
            for tt, row in new:
                i = bisect.bisect_right(self._keys_t, tt)
                self._keys_t.insert(i, tt)
                self._keys.insert(i, row)
        return len(new)

    def _check_room(self, n: int) -> None:
        if self.events + n > self.max_events:
            raise ValueError(f"more than {self.max_events} timing events in one stream")

    # -- placement -------------------------------------------------------------------------
    def place(self, t: float, pts: float, duration: float) -> None:
        """The stream's ``[t, t + duration)`` plays at engine ``[pts, pts + duration)``."""
        if duration <= 0:
            return
        with self._lock:
            if self._pieces:
                p0, t0, d0 = self._pieces[-1]
                if abs(p0 + d0 - pts) < 1e-6 and abs(t0 + d0 - t) < 1e-6:  # contiguous
                    self._pieces[-1] = (p0, t0, d0 + duration)
                    return
            self._pieces.append((pts, t, duration))
            del self._pieces[:-256]  # only recent placements are ever asked for

    @property
    def placed_until(self) -> float | None:
        """Engine pts where the last placed sample ends (None before any)."""
        if not self._pieces:
            return None
        p, _, d = self._pieces[-1]
        return p + d

    def stream_time(self, pts: float) -> float | None:
        """The stream time playing at engine ``pts``, or None where the stream is silent."""
        with self._lock:
            for p, t, d in reversed(self._pieces):
                if p <= pts < p + d:
                    return t + (pts - p)
                if p + d <= pts:
                    return None
        return None

    # -- rows ------------------------------------------------------------------------------
    def row_at(self, pts: float) -> np.ndarray | None:
        """The mouth row at engine ``pts``, or None where this track has nothing to say."""
        t = self.stream_time(pts)
        if t is None:
            return None
        return self.row_at_stream(t)

    def row_at_stream(self, t: float) -> np.ndarray | None:
        """The mouth row at stream time ``t`` (linear between 10 ms rows), or None."""
        with self._lock:
            if self._keys_t and self._keys_t[0] <= t <= self._keys_t[-1]:
                return self._key_row(t)
            if not self._phones:
                return None
            f = t * FPS
            k0 = int(math.floor(f))
            row = self._row(k0).astype(np.float64)
            frac = f - k0
            if frac > 0:
                row = row + frac * (self._row(k0 + 1) - row)
            return row.astype(np.float32)

    def _key_row(self, t: float) -> np.ndarray:
        i = bisect.bisect_right(self._keys_t, t)
        if i >= len(self._keys_t):
            return self._keys[-1].copy()
        a, b = self._keys_t[i - 1], self._keys_t[i]
        w = 0.0 if b <= a else (t - a) / (b - a)
        return (self._keys[i - 1] + w * (self._keys[i] - self._keys[i - 1])).astype(np.float32)

    def _end(self, i: int) -> float:
        p = self._phones[i]
        if p.end is not None:
            return p.end
        if i + 1 < len(self._phones):
            return self._phones[i + 1].start
        return p.start + OPEN_END_S

    def _raw(self, j: int) -> tuple[np.ndarray, str | None, int, int]:
        """Piecewise-constant pose at row ``j`` (target_curves' rounding), the phone there,
        and its first and end row."""
        raw = np.zeros(N_OUT, np.float64)
        last = bisect.bisect_right(self._starts, (j + 0.5) / FPS) - 1
        for i in range(last, max(last - 4, -1), -1):  # the latest-starting phone holding j wins
            a = int(round(self._phones[i].start * FPS))
            b = int(round(self._end(i) * FPS))
            if a <= j < b:
                name = self._phones[i].name
                raw[_SHAPE_ROWS] = pose(name)
                raw[SPEAK] = 0.0 if is_pause(name) else 1.0
                return raw, name, a, b
        return raw, None, 0, 0

    def _row(self, k: int) -> np.ndarray:
        hit = self._cache.get(k)
        if hit is not None:
            return hit
        r = self._r
        raws = [self._raw(j) for j in range(k - r, k + r + 1)]
        mat = np.stack([x[0] for x in raws])
        out = mat[r].copy()  # speaking is not smoothed
        out[_SHAPE_ROWS] = self._kernel @ mat[:, _SHAPE_ROWS]
        _, name, a, b = raws[r]
        if name is not None and is_bilabial(name) and k == (a + b) // 2:
            out[JAW], out[CLOSE] = 0.0, 1.0  # the closure's middle stays shut
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[k] = out
        return out


def _time(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a finite number of seconds >= 0, got {value!r}")
    return float(value)


class TimedAudio2Motion:
    """An Audio2Motion whose mouth follows timed tracks where they play, else ``inner``."""

    def __init__(self, inner: Any, keep: int = 8) -> None:
        self.inner = inner
        self.keep = keep
        self._tracks: list[TimedTrack] = []
        self._lock = threading.Lock()

    @property
    def lookahead(self) -> float:
        return float(self.inner.lookahead)

    def __getattr__(self, name: str) -> Any:  # anything else the estimator offers
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def add_track(self, track: TimedTrack) -> TimedTrack:
        """Let ``track`` drive the mouth where it plays (the newest track wins)."""
        with self._lock:
            self._tracks = [*self._tracks[-(self.keep - 1):], track]
        return track

    def push(self, pcm: np.ndarray, pts: float, sample_rate: int) -> None:
        self.inner.push(pcm, pts, sample_rate)

    def ready_until(self) -> float:
        return float(self.inner.ready_until())

    def motion_at(self, pts: float) -> MotionFrame:
        frame = self.inner.motion_at(pts)
        for track in reversed(self._tracks):
            row = track.row_at(pts)
            if row is not None:
                return write_row(frame, row)
        return frame
