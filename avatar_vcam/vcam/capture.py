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

from ..engine.frames import AudioChunk
from . import pulse
from .audio_devices import Endpoint, sounddevice
from .errors import DeviceError
from .pulse import PulseEnv
from .ringbuffer import RingBuffer

log = logging.getLogger(__name__)


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
        self.retry_s = retry_s
        self.name = name or endpoint.label
        self.ring = RingBuffer(rate * 4)
        self.state = "closed"  # live | lost | closed
        self.problem: str | None = None
        self.level_db = -120.0
        self.losses = 0
        self.input_latency = 0.0
        self._stream = None
        self._data = threading.Event()
        self._closed = threading.Event()
        self._last_callback: tuple[float, int] = (time.monotonic(), 0)  # (when, ring.written)
        self._opened_at = 0.0
        self._callbacks_at_open = 0
        self._anchor: tuple[float, int] | None = None  # (wall, sample clock) of a capture

    # -- the stream ------------------------------------------------------------------------
    def _callback(self, indata: np.ndarray, frames: int, time_info: object,
                  status: object) -> None:
        mono = indata[:, 0] if indata.shape[1] == 1 else indata.mean(axis=1)
        self.ring.write(mono)
        self._last_callback = (time.monotonic(), self.ring.written)
        self._data.set()

    def open(self) -> None:
        """Open and start the input stream; DeviceError with the fix when it cannot."""
        sd = sounddevice()
        ep = self.endpoint
        try:
            with PulseEnv(**ep.env):
                stream = sd.InputStream(device=ep.device, channels=1, samplerate=self.sample_rate,
                                        blocksize=self.block, latency="low", dtype="float32",
                                        callback=self._callback,
                                        extra_settings=ep.extra_settings)
            stream.start()
        except (sd.PortAudioError, ValueError) as e:
            raise DeviceError(f"cannot open audio input {ep.label}: {e}; check "
                              "`avatar-vcam devices`") from None
        self._stream = stream
        self.input_latency = float(stream.latency)
        self._opened_at = time.monotonic()
        self._callbacks_at_open = self.ring.written
        self._last_callback = (self._opened_at, self.ring.written)
        self.state, self.problem = "live", None

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

    def _lose(self, why: str) -> None:
        log.warning("audio input lost: %s", why)
        self.state, self.problem = "lost", why
        self.losses += 1
        self._close_stream()

    def _try_reopen(self) -> bool:
        if not self._node_present():
            return False
        try:
            self.open()
        except DeviceError as e:
            self.problem = str(e)
            return False
        log.warning("audio input back: %s", self.endpoint.label)
        return True

    # -- chunks ----------------------------------------------------------------------------
    def capture_time(self, pts: float) -> float | None:
        """Monotonic wall time at which the sample at ``pts`` entered the input, if known."""
        if self._anchor is None:
            return None
        wall, clock = self._anchor
        return wall - self.input_latency + (pts * self.sample_rate - clock) / self.sample_rate

    def chunks(self) -> Iterator[AudioChunk]:
        """Captured audio forever (until :meth:`close`), silence while the input is lost."""
        if self._stream is None and not self._closed.is_set():
            self.open()
        rate = self.sample_rate
        clock = 0  # samples handed out: the pts clock
        watch_every, next_watch = 1.0, time.monotonic() + 1.0
        lost_since: tuple[float, int] | None = None
        next_retry = 0.0
        while not self._closed.is_set():
            now = time.monotonic()
            if self.state == "live":
                self._data.wait(0.05)
                self._data.clear()
                cb_wall, cb_written = self._last_callback
                _, pcm = self.ring.read_into()
                if len(pcm):
                    self._anchor = (cb_wall, clock + len(pcm) + (cb_written - self.ring.read))
                    peak = float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))
                    self.level_db = 20 * np.log10(max(peak, 1e-6))
                    yield AudioChunk(clock / rate, pcm, rate)
                    clock += len(pcm)
                why = self._gone()
                if why is None and now >= next_watch:
                    next_watch = now + watch_every
                    if not self._node_present():
                        why = f"{self.endpoint.pulse_name} disappeared"
                if why is not None:
                    self._lose(why)
                    lost_since = (time.monotonic(), clock)
                    next_retry = time.monotonic() + self.retry_s
                continue
            # Lost: keep the clock going on silence at the wall clock's pace.
            assert lost_since is not None
            self._closed.wait(0.02)
            now = time.monotonic()
            due = lost_since[1] + round((now - lost_since[0]) * rate)
            if due > clock:
                self.level_db = -120.0
                yield AudioChunk(clock / rate, np.zeros(due - clock, np.float32), rate)
                clock = due
            if now >= next_retry:
                next_retry = now + self.retry_s
                if self._try_reopen():
                    lost_since = None
