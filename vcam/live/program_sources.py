"""Sources for audio that programs send: ``idle`` (the clock alone) and ``pipe:`` (stdin).

``--source idle`` is a live input of silence paced by the wall clock: a daemon that only
speaks what programs stream to it over ``/v1/audio``. ``--source pipe:FORMAT:RATE[:CH]``
reads raw PCM from standard input (``piper ... | avatar-vcam --source pipe:s16le:22050``):
watched live (camera, window, voice output) it runs on that clock too, so the avatar idles
while the program thinks and ends once the pipe has closed and its audio has played;
rendered into a file it is read as fast as it comes, like a file.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

import numpy as np

from engine.frames import AudioChunk

from ..errors import DeviceError
from .inject import FORMATS, AudioInjector, AudioStream, StreamError, check_format

log = logging.getLogger(__name__)

PIPE_HELP = ("use pipe:FORMAT:RATE[:CHANNELS] with FORMAT s16le or f32le, e.g. "
             "`piper ... | avatar-vcam --source pipe:s16le:22050`")


class ClockSource:
    """Silence on a wall-paced sample clock: a live input with nothing of its own."""

    live = True

    def __init__(self, rate: int = 48000, block: int = 480, name: str = "idle") -> None:
        self.sample_rate = rate
        self.block = block
        self.name = name
        self.state = "live"
        self.problem: str | None = None
        self.level_db = -120.0
        self.losses = 0
        self.input_latency = 0.0  # no device between the sound and the clock
        self._closed = threading.Event()
        self._t0: float | None = None

    def capture_time(self, pts: float) -> float | None:
        """Monotonic time of the sample at ``pts`` (the clock is the wall's)."""
        return None if self._t0 is None else self._t0 + pts

    def close(self) -> None:
        self._closed.set()

    def ticks(self, until: Callable[[], bool] = lambda: False) -> Iterator[AudioChunk]:
        """Blocks of silence as the wall clock reaches them, until ``until()`` or close."""
        rate, block = self.sample_rate, self.block
        self._t0 = t0 = time.monotonic()
        clock = 0
        while not self._closed.is_set() and not until():
            due = round((time.monotonic() - t0) * rate)
            while due - clock >= block:
                yield AudioChunk(clock / rate, np.zeros(block, np.float32), rate)
                clock += block
            self._closed.wait(max(0.0, t0 + (clock + block) / rate - time.monotonic()))

    def chunks(self) -> Iterator[AudioChunk]:
        return self.ticks()


def parse_pipe(spec: str) -> tuple[str, int, int]:
    """``pipe:FORMAT:RATE[:CHANNELS]`` -> (format, rate, channels); DeviceError if malformed."""
    parts = spec.split(":")[1:]
    if len(parts) not in (2, 3) or not all(parts):
        raise DeviceError(f"--source {spec}: {PIPE_HELP}")
    fmt = parts[0]
    try:
        rate = int(parts[1])
        channels = int(parts[2]) if len(parts) == 3 else 1
    except ValueError:
        raise DeviceError(f"--source {spec}: rate and channels are whole numbers; "
                          f"{PIPE_HELP}") from None
    try:
        return check_format(fmt, rate, channels)
    except StreamError as e:
        raise DeviceError(f"--source {spec}: {e}; {PIPE_HELP}") from None


def _stdin(stream: BinaryIO | None) -> BinaryIO:
    src = stream if stream is not None else sys.stdin.buffer
    if stream is None and sys.stdin.isatty():
        raise DeviceError("--source pipe: reads audio from standard input, which is a "
                          f"terminal; {PIPE_HELP}")
    return src


class PipeSource(ClockSource):
    """Raw PCM from standard input (see the module docstring)."""

    def __init__(self, spec: str, realtime: bool, stdin: BinaryIO | None = None,
                 read_bytes: int = 8192, ahead_s: float = 2.0) -> None:
        fmt, rate, channels = parse_pipe(spec)
        super().__init__(rate, max(1, rate // 100), name=spec)
        self.live = realtime
        self.duration: float | None = None
        self._in = _stdin(stdin)
        self.read_bytes = read_bytes
        self.ahead_s = ahead_s  # reading pauses (the writer waits) this far ahead of playback
        self.injector = AudioInjector(rate, prebuffer_s=0.1, max_queue_s=ahead_s + 60)
        self.stream: AudioStream = self.injector.open(fmt, rate, channels, name=spec)
        self._reader: threading.Thread | None = None

    def _read(self) -> Iterator[bytes]:
        """Whole-sample blocks of stdin until EOF (a partial sample at the end is dropped)."""
        frame = self.stream.width * self.stream.channels
        rest = b""
        read = getattr(self._in, "read1", self._in.read)
        while not self._closed.is_set():
            data = read(self.read_bytes)
            if not data:
                if rest:
                    log.warning("%s: %d trailing byte(s) are not a whole sample; dropped",
                                self.name, len(rest))
                return
            data = rest + data
            cut = len(data) - len(data) % frame
            rest = data[cut:]
            if cut:
                yield data[:cut]

    def _feed(self) -> None:
        try:
            for data in self._read():
                while self.stream.queued_s > self.ahead_s and not self._closed.is_set():
                    time.sleep(0.02)  # the pipe's writer waits: no unbounded queue
                self.stream.write(data)
        except (OSError, StreamError) as e:
            log.warning("%s: %s", self.name, e)
            self.problem = str(e)
        finally:
            self.stream.finish()

    def chunks(self) -> Iterator[AudioChunk]:
        if not self.live:
            yield from self._offline()
            return
        self._reader = threading.Thread(target=self._feed, name="avatar-vcam-stdin",
                                        daemon=True)
        self._reader.start()
        for chunk in self.ticks(until=self.stream.done.is_set):
            yield self.injector.mix(chunk)

    def _offline(self) -> Iterator[AudioChunk]:
        clock = 0
        for data in self._read():
            x = self.stream.decode(data)
            yield AudioChunk(clock / self.sample_rate, x, self.sample_rate)
            clock += len(x)
        self.duration = clock / self.sample_rate


__all__ = ["FORMATS", "ClockSource", "PipeSource", "parse_pipe"]
