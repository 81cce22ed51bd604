"""The voice, delayed by D, into a virtual microphone, on the same pts as the frames.

:class:`DelayLine` stores the captured samples by their index on the input's sample
clock. The output callback reads from it ``D`` behind the newest captured sample and
reports which pts is being heard, so frames can be presented when their own pts plays.
The output device runs on its own crystal: the fill level of the line is watched and one
sample is dropped or repeated (linear interpolation over a block) when it walks away
from ``D``, so the offset never drifts. An output that falls more than ``resync_s`` behind
jumps ahead; the read point never moves back over voice already played (only
:meth:`VoiceOut.raise_delay` repeats a few ms on purpose).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

import numpy as np

from engine.frames import AudioChunk

from ..errors import DeviceError
from .audio_devices import Endpoint, open_stream
from .priority import promote_audio_thread

log = logging.getLogger(__name__)


class DelayLine:
    """Samples by absolute index on the input clock; unknown samples read as silence."""

    def __init__(self, capacity: int) -> None:
        self._buf = np.zeros(capacity, np.float32)
        self.capacity = capacity
        self.end = 0  # one past the newest sample written

    def write(self, index: int, pcm: np.ndarray) -> None:
        """Store ``pcm`` whose first sample has absolute ``index`` (gaps read as silence)."""
        if index > self.end:  # a gap: clear what it covers
            self._clear(self.end, min(index, self.end + self.capacity))
        n = len(pcm)
        if n > self.capacity:
            pcm, index, n = pcm[-self.capacity:], index + n - self.capacity, self.capacity
        start = index % self.capacity
        first = min(n, self.capacity - start)
        self._buf[start:start + first] = pcm[:first]
        self._buf[:n - first] = pcm[first:]
        self.end = max(self.end, index + n)

    def _clear(self, a: int, b: int) -> None:
        for lo in range(a, b, self.capacity):
            hi = min(b, lo + self.capacity)
            s, e = lo % self.capacity, (hi - 1) % self.capacity + 1
            if s < e:
                self._buf[s:e] = 0
            else:
                self._buf[s:] = 0
                self._buf[:e] = 0

    def read(self, index: int, n: int) -> np.ndarray:
        """``n`` samples from absolute ``index`` (zeros outside what is held)."""
        out = np.zeros(n, np.float32)
        lo = max(index, self.end - self.capacity, 0)
        hi = min(index + n, self.end)
        if hi > lo:
            idx = np.arange(lo, hi) % self.capacity
            out[lo - index:hi - index] = self._buf[idx]
        return out


@dataclass
class VoiceStats:
    """Health of the voice output, for the status line and the benchmarks."""

    adjustments: int = 0  # single samples dropped (+) or repeated (-), count of both
    drift_samples: int = 0  # net samples dropped (> 0: input faster than output)
    resyncs: int = 0
    fill_error_ms: float = 0.0  # smoothed distance of the read point from D
    skipped_silence_ms: float = 0.0  # silence skipped to get back to a lowered D


class VoiceOut:
    """Play the captured voice ``delay_s`` late into ``endpoint``.

    A sound-server sink is watched: when it disappears the stream is gone at once (the
    server may not move it elsewhere), :attr:`state` is "lost", the pts clock runs on
    from the wall so the camera goes on, and every ``retry_s`` the sink is tried again;
    once back, the voice restarts ``D`` behind the input (A/V realigned).
    """

    def __init__(self, endpoint: Endpoint, rate: int, delay_s: float, block: int = 480,
                 resync_s: float = 0.25, tolerance_s: float = 0.0015,
                 retry_s: float = 0.25) -> None:
        self.endpoint = endpoint
        self.rate = rate
        self.delay_s = delay_s
        self.block = block
        self.resync = round(resync_s * rate)
        self.tolerance = tolerance_s * rate
        self.quiet = 10 ** (-50 / 20)  # peak under -50 dBFS: silence that may be skipped
        self.line = DelayLine(rate * 10)
        self.stats = VoiceStats()
        self.output_latency = 0.0  # seconds; the last one the device reported
        self.latency_measured = False  # the device has reported it (else a guess)
        self.state = "closed"  # live | lost | closed
        self.problem: str | None = None
        self.losses = 0
        self.lost_at: float | None = None  # monotonic time of the last loss
        self.back_after_s: list[float] = []  # loss -> re-attached, each time
        self.retry_s = retry_s
        self._lost = threading.Event()
        self._closed = threading.Event()
        self._watcher: threading.Thread | None = None
        self._read: int | None = None  # absolute index of the next sample to play
        self._err = 0.0
        self._heard: tuple[float, int] | None = None  # (wall of callback, index at its start)
        self._lock = threading.Lock()
        self._stream = None
        self._tid = 0  # native id of the thread the callbacks last came on

    def open(self) -> None:
        """Open the device (DeviceError with the fix when it cannot) and watch it."""
        self._open_stream()
        if self.endpoint.pulse_name is not None and self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, daemon=True,
                                             name="avatar-vcam-voice-watch")
            self._watcher.start()

    def _open_stream(self) -> None:
        with self._lock:
            self._read = None  # the first callback starts D behind the newest input
            self.latency_measured = False
        stream = open_stream(self.endpoint, "output", self.rate, self.block, self._callback,
                             "check `avatar-vcam devices` or run `avatar-vcam "
                             "setup-virtual-mic`", on_lost=self._on_lost)
        self._stream = stream
        reported = stream.latency
        if reported is not None:  # PortAudio's figure is its own report: taken as known
            self.output_latency = float(reported)
            self.latency_measured = not hasattr(stream, "device_name")
        else:
            self.output_latency = 2 * self.block / self.rate  # what was asked for
        self._lost.clear()
        self.state, self.problem = "live", None

    def _on_lost(self, why: str) -> None:
        """From the sound server's thread: the sink went (or the stream was moved)."""
        if self.state != "live" or self._closed.is_set():
            return
        self.state, self.problem = "lost", why
        self.losses += 1
        self.lost_at = time.monotonic()
        self.latency_measured = False
        log.warning("VOICE OUT LOST: %s; not playing it anywhere else, the camera goes on",
                    why)
        self._lost.set()

    def _watch(self) -> None:
        """Until close: after a loss, close the dead stream and re-open the sink when the
        server has it again (an open of a missing sink fails in a few ms)."""
        while not self._closed.is_set():
            if not self._lost.wait(0.5):
                continue
            self._close_stream()
            while not self._closed.wait(self.retry_s):
                try:
                    self._open_stream()
                except DeviceError as e:
                    self.problem = f"{self.endpoint.pulse_name} is gone ({e})"
                    continue
                took = time.monotonic() - (self.lost_at or time.monotonic())
                self.back_after_s.append(took)
                log.warning("voice out back: %s re-attached %.2f s after the loss, D %.0f ms",
                            self.endpoint.label, took, 1000 * self.delay_s)
                break

    def close(self) -> None:
        self._closed.set()
        self._close_stream()
        self.state = "closed"

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.abort()
                stream.close()
            except Exception as e:
                log.debug("closing voice output: %s", e)

    def write(self, chunk: AudioChunk) -> None:
        """The captured voice (engine thread): stored by its sample index."""
        if chunk.sample_rate != self.rate:
            raise DeviceError(f"voice output runs at {self.rate} Hz but the input delivers "
                              f"{chunk.sample_rate} Hz")
        with self._lock:
            self.line.write(round(chunk.pts * self.rate), chunk.pcm)

    # -- the output callback ---------------------------------------------------------------
    def _callback(self, outdata: np.ndarray, frames: int, time_info: object,
                  status: object) -> None:
        now = time.monotonic()
        if threading.get_native_id() != self._tid:  # a new stream thread: real time for it
            self._tid = threading.get_native_id()
            promote_audio_thread("voice")
        measured = getattr(time_info, "latency", False)
        if measured is None:  # the server cannot tell yet (a stream just started)
            self.latency_measured = False
        elif measured is not False:
            self.output_latency, self.latency_measured = measured, True
        with self._lock:
            end = self.line.end
            if self._read is None:
                if end == 0:
                    outdata[:, 0] = 0
                    return
                self._read = end - round(self.delay_s * self.rate)
            fill = end - self._read
            err = fill - self.delay_s * self.rate  # > 0: playing too late
            take = frames
            if err > self.resync:  # the output fell far behind: jump ahead to D
                self._read += round(err)
                self._err = 0.0
                self.stats.resyncs += 1
            elif fill <= 0 or err < -self.resync:
                # The input ended, or the engine thread fell behind (its backlog arrives
                # later and restores the fill by itself): play on, silence past the end.
                # Never move back: that would replay voice the listener already heard.
                self._err = 0.0
            else:
                self._err += 0.02 * (err - self._err)
                if self._err > self.tolerance:
                    take = frames + 1
                    if err > 4 * frames:  # far behind D (D was lowered): catch up
                        take = self._catch_up(round(err), frames)
                elif self._err < -self.tolerance:
                    take = frames - 1
            start = self._read
            pcm = self.line.read(start, take)
            self._read += take
        if take != frames:
            self.stats.adjustments += 1
            self.stats.drift_samples += take - frames
            self._err -= take - frames
            pcm = np.interp(np.linspace(0, take - 1, frames), np.arange(take), pcm)
        outdata[:, 0] = pcm
        self.stats.fill_error_ms = 1000 * self._err / self.rate
        # The sound server's latency of this very write (libpulse); through PortAudio its
        # stream latency, not the per-callback DAC time: through the ALSA pulse plugin the
        # latter read ~10 ms late against a recording of the sink's monitor.
        self._heard = (now + self.output_latency, start)

    def _catch_up(self, behind: int, frames: int) -> int:
        """Samples to take this block when playing ``behind`` samples later than D (lock
        held): silence ahead is skipped at once, voice is played 2 % faster (no voice is
        ever skipped)."""
        ahead = self.line.read(self._read, behind + frames)
        if float(np.abs(ahead).max(initial=0.0)) < self.quiet:
            self._read += behind
            self._err = 0.0
            self.stats.skipped_silence_ms += 1000 * behind / self.rate
            return frames
        return frames + max(1, frames // 50)

    @property
    def av_known(self) -> bool:
        """Whether when the voice is heard is known now: playing, latency measured."""
        return self.state == "live" and self.latency_measured

    def raise_delay(self, by_s: float, max_s: float = 0.3) -> bool:
        """Play ``by_s`` later from now on (the last ``by_s`` of voice repeats once).

        For when rendering cannot keep up with D; returns False at ``max_s``.
        """
        with self._lock:
            new = min(max_s, self.delay_s + by_s)
            if new <= self.delay_s:
                return False
            step = round((new - self.delay_s) * self.rate)
            self.delay_s = new
            if self._read is not None:
                self._read -= step
        return True

    def lower_delay(self, by_s: float, min_s: float) -> bool:
        """Play ``by_s`` earlier, but not under ``min_s``: returns False when already there.

        The read point is not moved here: the callback closes the gap by skipping
        silence ahead of it at once, or by playing voice up to 2 % faster (100 ms in 5 s),
        so no voice is skipped. At most 200 ms at a time (a larger gap would resync).
        """
        with self._lock:
            new = max(min_s, self.delay_s - min(by_s, 0.2))
            if new >= self.delay_s:
                return False
            self.delay_s = new
        return True

    def heard_pts(self, now: float | None = None) -> float | None:
        """The input pts being heard at the output at monotonic time ``now``."""
        heard = self._heard
        if heard is None:
            return None
        wall, index = heard
        now = time.monotonic() if now is None else now
        return (index + (now - wall) * self.rate) / self.rate

    def wall_time_of(self, pts: float) -> float | None:
        """Monotonic time at which ``pts`` will be (or was) heard at the output."""
        heard = self._heard
        if heard is None:
            return None
        wall, index = heard
        return wall + (pts * self.rate - index) / self.rate


def default_delay(lookahead_s: float, block_s: float, render_s: float, fps: int) -> float:
    """D = look-ahead + capture block + render time + a margin (a quarter frame, >= 10 ms)."""
    margin = max(0.010, 0.25 / fps)
    return math.ceil((lookahead_s + block_s + render_s + margin) * 1000) / 1000
