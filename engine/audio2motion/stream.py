"""What the streaming Audio2Motion estimators share: the audio buffer on the sample clock
(gaps, overlaps, rate changes, long-gap jumps) and the ring of final 100 frames/s mouth
rows that ``motion_at`` interpolates.

A subclass analyses; this class feeds it. It implements ``_start`` (first push: set
``_sr``, ``_b0``, ``_buf``, ``_first``, ``_hist_end`` and its own cursor), ``_process``
(analyse every complete window of ``_buf`` and write rows ``[jaw, close, funnel, pucker,
stretch, speaking, roll]`` into ``_hist``; ``roll`` is the lower lip tucked under the upper
teeth for f/v) and ``_jump`` (skip a long gap), and sets
``gap_flush_s``: the silence fed before a jump, long enough to bring the mouth to rest.
"""

from __future__ import annotations

import math

import numpy as np

from ..audio.pcm import as_float_pcm
from ..motion import MotionFrame, channel_index
from .features import FPS  # mouth rows per second (the analysis hop is 10 ms)

# Layout of a mouth row in the history ring (subclasses write rows in this order).
JAW, CLOSE, FUNNEL, PUCKER, STRETCH, SPEAK, ROLL = range(7)
N_OUT = 7
_CH = {name: channel_index(name) for name in (
    "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthStretchLeft",
    "mouthStretchRight", "mouthRollLower")}


def write_row(frame: MotionFrame, row: np.ndarray) -> MotionFrame:
    """Put one mouth row (the layout above) into ``frame``'s channels and speaking flag."""
    jaw = float(row[JAW])
    v = frame.values
    v[_CH["jawOpen"]] = jaw
    v[_CH["mouthClose"]] = min(float(row[CLOSE]), jaw)
    v[_CH["mouthFunnel"]] = row[FUNNEL]
    v[_CH["mouthPucker"]] = row[PUCKER]
    v[_CH["mouthStretchLeft"]] = row[STRETCH]
    v[_CH["mouthStretchRight"]] = row[STRETCH]
    v[_CH["mouthRollLower"]] = row[ROLL]
    frame.speaking = bool(row[SPEAK] >= 0.5)
    return frame


class MouthStream:
    """Streaming frame of an Audio2Motion estimator (see the module docstring)."""

    gap_flush_s = 0.5

    def _init_stream(self, history_s: float) -> None:
        self._cap = max(64, int(history_s * FPS))
        self._hist = np.zeros((self._cap, N_OUT), np.float32)
        self._sr: int | None = None
        self._buf = np.zeros(0, np.float32)
        self._b0 = 0  # sample index (at self._sr) of self._buf[0]
        self._first = 0  # first row of the stream
        self._hist_end = 0  # rows < this are final

    # ---------------------------------------------------------------- protocol
    def push(self, pcm: np.ndarray, pts: float, sample_rate: int) -> None:
        """Append mono audio whose first sample is at ``pts`` s; gaps read as silence."""
        sr = int(sample_rate)
        if sr <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        x = as_float_pcm(pcm)
        s = round(pts * sr)
        if self._sr is None:
            self._start(sr, pts)
        elif sr != self._sr:
            self._change_rate(sr)
        end = self._b0 + len(self._buf)
        if s > end + 1:
            gap = s - end
            if gap > sr:  # long gap: bring the mouth to rest on silence, then jump
                self._append(np.zeros(round(self.gap_flush_s * sr), np.float32))
                self._jump(s)
            else:
                self._append(np.zeros(gap, np.float32))
        elif s < end - 1:  # overlap with audio already heard: keep the first copy
            x = x[end - s:]
        if len(x):
            self._append(x)

    def ready_until(self) -> float:
        """Latest pts whose motion is final (audio up to pts + look-ahead has arrived)."""
        return (self._hist_end - 1) / FPS

    def motion_at(self, pts: float) -> MotionFrame:
        """Mouth channels and speaking flag at ``pts`` (linear between 10 ms rows).

        Before the stream: neutral. After ``ready_until``: the last final row is held.
        Older than the kept history (``history_s``, 4 s by default): ValueError, since the
        rows are gone; ask for frames while pushing, not after pushing a whole file.
        """
        frame = MotionFrame(pts=float(pts))
        f = pts * FPS
        last = self._hist_end - 1
        if last < self._first or f < self._first - 1:
            return frame
        oldest = max(self._first, self._hist_end - self._cap)
        if f < oldest - 1e-6:
            raise ValueError(
                f"pts {pts:g} s is older than the kept motion history: only the last "
                f"{self._cap / FPS:g} s are kept ({oldest / FPS:.2f}..{last / FPS:.2f} s "
                "now); query frames while pushing audio (after each push, up to "
                "ready_until()), not after pushing it all")
        f = min(max(f, float(oldest)), float(last))
        k0 = int(math.floor(f))
        frac = f - k0
        row = self._hist[k0 % self._cap].astype(np.float64)
        if frac > 0 and k0 + 1 <= last:
            row = row + frac * (self._hist[(k0 + 1) % self._cap] - row)
        return write_row(frame, row)

    # ---------------------------------------------------------------- buffer
    def _change_rate(self, sr: int) -> None:
        """Carry the retained samples over to the new rate (linear interpolation)."""
        old = self._sr
        assert old is not None
        n = len(self._buf)
        b0 = math.floor(self._b0 * sr / old)
        end = round((self._b0 + n) * sr / old)
        t = np.arange(b0, end) * (old / sr)
        src = np.arange(self._b0, self._b0 + n)
        self._buf = (np.interp(t, src, self._buf) if n else np.zeros(end - b0)).astype(
            np.float32)
        self._b0 = b0
        self._sr = sr

    def _append(self, x: np.ndarray) -> None:
        self._buf = np.concatenate([self._buf, x]) if len(self._buf) else x.copy()
        self._process()

    # ---------------------------------------------------------------- the analysis
    def _start(self, sr: int, pts: float) -> None:
        raise NotImplementedError

    def _process(self) -> None:
        raise NotImplementedError

    def _jump(self, s: int) -> None:
        raise NotImplementedError
