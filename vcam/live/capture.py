"""Live audio input (mic, system audio, any device) on its own sample clock.

The PortAudio callback only copies samples into a ring buffer. :meth:`LiveSource.chunks`
hands them on as :class:`AudioChunk` blocks whose pts is ``samples before them / rate``.
If the input disappears (device unplugged, sink unloaded, stream stalled) the clock keeps
running on silence paced by the wall clock, so the avatar idles instead of freezing, the
status says so, and the stream is reopened as soon as the device is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import numpy as np

from engine.frames import AudioChunk

from ..errors import DeviceError
from ..problems import Problems
from . import sound_server as pulse
from .audio_devices import Endpoint, open_stream
from .priority import promote_audio_thread
from .ring_buffer import RingBuffer

log = logging.getLogger(__name__)
_problems = Problems(log)


class LiveSource:
    """Capture from ``endpoint`` at ``rate`` Hz in ``block``-sample callbacks."""

    live = True

    def __init__(self, endpoint: Endpoint, rate: int = 48000, block: int = 480,
                 stall_s: float = 0.5, retry_s: float = 1.0, startup_s: float = 3.0,
                 name: str | None = None) -> None:
        self.endpoint = endpoint
        self.sample_rate = rate
        self.block = block
        self.stall_s = stall_s
        self.startup_s = startup_s  # a stream may take this long to deliver its first block
        self.fill_after_s = 0.25  # silence stands in after this long without a callback
        self.retry_s = retry_s
        self.name = name or endpoint.label
        self.ring = RingBuffer(rate * 4)
        self.state = "closed"  # live | lost | closed
        self.problem: str | None = None
        self.level_db = -120.0
        self.losses = 0
        self.input_latency = 0.0
        self.latency_measured = False  # input_latency was reported by the device
        self._native = False
        self._why_missing: str | None = None
        self._stream = None
        self._data = threading.Event()
        self._closed = threading.Event()
        self._last_callback: tuple[float, int] = (time.monotonic(), 0)  # (when, ring.written)
        self._opened_at = 0.0
        self._callbacks_at_open = 0
        self._anchor: tuple[float, int] | None = None  # (wall, sample clock) of a capture
        self.watch_s = 1.0  # how often the watcher asks the sound server for the node
        self._node_missing = threading.Event()
        self._watcher: threading.Thread | None = None
        self._tid = 0  # native id of the thread the callbacks last came on

    # -- the stream ------------------------------------------------------------------------
    def _callback(self, indata: np.ndarray, frames: int, time_info: object,
                  status: object) -> None:
        if threading.get_native_id() != self._tid:  # a new stream thread: real time for it
            self._tid = threading.get_native_id()
            promote_audio_thread("capture")
        measured = getattr(time_info, "latency", False)  # libpulse: this read's latency
        if measured is None:
            self.latency_measured = False
        elif measured is not False:
            self.input_latency, self.latency_measured = max(0.0, measured), True
        mono = indata[:, 0] if indata.shape[1] == 1 else indata.mean(axis=1)
        self.ring.write(mono)
        self._last_callback = (time.monotonic(), self.ring.written)
        self._data.set()

    def open(self) -> None:
        """Open and start the input stream; DeviceError with the fix when it cannot."""
        self.latency_measured = False
        stream = open_stream(self.endpoint, "input", self.sample_rate, self.block,
                             self._callback, "check `avatar-vcam devices`",
                             on_lost=self._on_lost)
        self._stream = stream
        self._native = hasattr(stream, "device_name")  # libpulse: it says when it is lost
        reported = stream.latency
        if reported is not None and not self._native:  # PortAudio's own report
            self.input_latency, self.latency_measured = float(reported), True
        self._opened_at = time.monotonic()
        self._callbacks_at_open = self.ring.written
        self._last_callback = (self._opened_at, self.ring.written)
        self._node_missing.clear()
        self._why_missing = None
        self.state, self.problem = "live", None

    def _on_lost(self, why: str) -> None:
        """From the sound server's thread: the source went; chunks() reports it."""
        if self.state == "live":
            self._why_missing = why
            self._node_missing.set()

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.abort()
                stream.close()
            except Exception as e:  # a vanished device may fail to close; nothing to keep
                log.debug("closing input: %s", e)

    def close(self) -> None:
        self._closed.set()
        self._close_stream()
        self.state = "closed"

    # -- health ----------------------------------------------------------------------------
    def _gone(self) -> str | None:
        """Why the input is unusable now, or None."""
        when, written = self._last_callback
        started = written > self._callbacks_at_open
        limit = self.stall_s if started else self.startup_s
        if time.monotonic() - when > limit:
            return f"no audio from {self.endpoint.label} for {limit:.1f} s"
        return None

    def _node_present(self) -> bool:
        name = self.endpoint.pulse_name
        if name is None:
            return True
        try:
            return pulse.has_source(name)
        except DeviceError:
            return False

    def _start_watcher(self) -> None:
        """Watch the PulseAudio/PipeWire node from a thread of its own: ``pactl`` takes
        milliseconds (seconds when the server is busy), which the engine thread, which
        reads and renders, cannot spare."""
        if self.endpoint.pulse_name is None or self._watcher is not None or self._native:
            return
        self._watcher = threading.Thread(target=self._watch_node, daemon=True,
                                         name="avatar-vcam-input-watch")
        self._watcher.start()

    def _watch_node(self) -> None:
        """Until close: flag the node as missing when the server no longer lists it.

        Nothing ends this thread early: a failure to ask (pactl failed or timed out, no
        file descriptor left) means 'unknown', not 'gone' (a server that died stalls the
        stream, which _gone() notices); it is one rate-limited line and the next try.
        """
        name = self.endpoint.pulse_name
        assert name is not None
        while not self._closed.wait(self.watch_s):
            if self.state != "live":
                continue
            try:
                present = pulse.has_source(name)
            except Exception as e:
                _problems.report(f"watch {type(e).__name__}", f"cannot check the input "
                                 f"{name}: {e}", level=logging.INFO, exc=e)
                continue
            if not present and self.state == "live":
                self._node_missing.set()

    def _lose(self, why: str) -> None:
        log.warning("audio input lost: %s", why)
        self.state, self.problem = "lost", why
        self.losses += 1
        self._close_stream()

    def _try_reopen(self) -> bool:
        if not self._node_present():
            return False
        try:
            t0 = time.monotonic()
            self.open()
            log.debug("reopened in %.3f s", time.monotonic() - t0)
        except DeviceError as e:
            self.problem = str(e)
            return False
        log.warning("audio input back: %s", self.endpoint.label)
        return True

    # -- chunks ----------------------------------------------------------------------------
    def capture_time(self, pts: float) -> float | None:
        """Monotonic wall time at which the sample at ``pts`` entered the input, if known."""
        if self._anchor is None or self.state != "live" or not self.latency_measured:
            return None
        wall, clock = self._anchor
        return wall - self.input_latency + (pts * self.sample_rate - clock) / self.sample_rate

    def chunks(self) -> Iterator[AudioChunk]:
        """Captured audio forever (until :meth:`close`), silence while the input is lost.

        Silence also covers a stalled device and the wait for a (re)opened stream's
        first block, so the clock, and with it the avatar, never stops; samples that
        arrive late after such a stall are dropped but for the newest block.
        """
        if self._stream is None and not self._closed.is_set():
            self.open()
        self._start_watcher()
        rate = self.sample_rate
        clock = 0  # samples handed out: the pts clock
        filler: tuple[float, int] | None = (time.monotonic(), 0)  # (wall, clock) anchor
        next_retry = 0.0
        while not self._closed.is_set():
            if self.state == "live":
                self._data.wait(0.02)
                self._data.clear()
                cb_wall, cb_written = self._last_callback
                _, pcm = self.ring.read_into()
                if len(pcm) and filler is not None:
                    # Silence already stood in for the wait up to ``clock``: samples captured
                    # before that would push the clock ahead of the wall; drop them.
                    covered_until = filler[0] + (clock - filler[1]) / rate  # wall time
                    keep = round((cb_wall - covered_until) * rate)
                    pcm = pcm[len(pcm) - min(len(pcm), max(self.block, keep)):]
                    filler = None
                if len(pcm):
                    self._anchor = (cb_wall, clock + len(pcm) + (cb_written - self.ring.read))
                    self.level_db = level_dbfs(pcm)
                    yield AudioChunk(clock / rate, pcm, rate)
                    clock += len(pcm)
                now = time.monotonic()
                if filler is None and now - self._last_callback[0] > self.fill_after_s:
                    filler = (self._last_callback[0], clock)  # the device stalled
                why = self._gone()
                if why is None and self._node_missing.is_set():
                    why = self._why_missing or f"{self.endpoint.pulse_name} disappeared"
                if why is not None:
                    self._lose(why)
                    filler = filler or (now, clock)
                    next_retry = now + self.retry_s
            else:
                self._closed.wait(0.02)
                now = time.monotonic()
                if now >= next_retry:
                    next_retry = now + self.retry_s
                    self._try_reopen()
            if filler is not None:  # keep the clock going on silence at the wall's pace
                due = filler[1] + round((time.monotonic() - filler[0]) * rate)
                if due > clock:
                    self.level_db = -120.0
                    yield AudioChunk(clock / rate, np.zeros(due - clock, np.float32), rate)
                    clock = due


def level_dbfs(pcm: np.ndarray) -> float:
    """RMS level of a block in dBFS (-120 for silence)."""
    rms = float(np.sqrt(np.mean(np.square(pcm, dtype=np.float64)))) if len(pcm) else 0.0
    return 20 * float(np.log10(max(rms, 1e-6)))
