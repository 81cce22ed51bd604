"""Audio from programs (WebSocket clients, a pipe) mixed into the daemon's sample clock.

A program's stream has its own rate, channels and clock (sample index / its rate, from
its first sample). :class:`AudioStream` decodes its PCM, fills gaps its timestamps leave
with silence, resamples to the daemon's rate and queues it. The engine thread calls
:meth:`AudioInjector.mix` on every captured block: queued samples are added to the block
there, so they reach Audio2Motion, the sinks and the voice delay line exactly as a mic's
would, and their pts is the daemon's sample clock. Each placement is told to the stream's
:class:`~engine.audio2motion.timed.TimedTrack`, so TTS timings land on the same samples.

A stream starts playing once ``prebuffer_s`` is queued (or it has ended); when its queue
runs dry mid-stream (the program stalls), silence stands in and it buffers again. The
avatar idles through both. Nothing here blocks the engine thread.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from typing import Any

import numpy as np

from engine.audio2motion.timed import TimedTrack
from engine.frames import AudioChunk

log = logging.getLogger(__name__)

FORMATS = {"s16le": ("<i2", 2), "f32le": ("<f4", 4)}
MAX_RATE = 384_000
MAX_CHANNELS = 32


class StreamError(ValueError):
    """What a program sent cannot be played (the message says what to send instead)."""


class Flood(StreamError):
    """A program sent audio much faster than it plays."""


class Busy(StreamError):
    """Too many programs stream at once."""


def check_format(fmt: Any, rate: Any, channels: Any) -> tuple[str, int, int]:
    """Validated ``(format, rate, channels)``; StreamError saying what is allowed."""
    if fmt not in FORMATS:
        raise StreamError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if isinstance(rate, bool) or not isinstance(rate, int) or not 4000 <= rate <= MAX_RATE:
        raise StreamError(f"rate must be a whole number of Hz from 4000 to {MAX_RATE}, "
                          f"got {rate!r}")
    if isinstance(channels, bool) or not isinstance(channels, int) \
            or not 1 <= channels <= MAX_CHANNELS:
        raise StreamError(f"channels must be a whole number from 1 to {MAX_CHANNELS}, "
                          f"got {channels!r}")
    return fmt, rate, channels


class _Resampler:
    """Streaming resampler to mono float32 at ``dst`` Hz (swresample through PyAV)."""

    def __init__(self, src: int, dst: int) -> None:
        self.src, self.dst = src, dst
        self._r = None
        if src != dst:
            import av

            self._r = av.AudioResampler(format="flt", layout="mono", rate=dst)

    def __call__(self, x: np.ndarray | None) -> np.ndarray:
        """Resample ``x`` (None: flush what the filter holds)."""
        if self._r is None:
            return np.zeros(0, np.float32) if x is None else x
        import av

        frame = None
        if x is not None:
            if len(x) == 0:
                return np.zeros(0, np.float32)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[None, :]), format="flt",
                                               layout="mono")
            frame.sample_rate = self.src
        out = [f.to_ndarray().reshape(-1) for f in self._r.resample(frame)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


class AudioStream:
    """One program's audio on its way onto the daemon's clock (see the module docstring)."""

    def __init__(self, injector: AudioInjector, fmt: str, rate: int, channels: int,
                 track: TimedTrack | None, name: str) -> None:
        self.injector = injector
        self.format, self.rate, self.channels = check_format(fmt, rate, channels)
        self.dtype, self.width = FORMATS[fmt]
        self.track = track
        self.name = name
        self._resample = _Resampler(rate, injector.rate)
        self._queue: deque[np.ndarray] = deque()
        self._queued = 0  # samples at the daemon's rate
        self._in_pos = 0  # samples received (stream rate): the stream clock
        self._played = 0  # samples mixed in (daemon rate): stream time of the next one
        self.state = "buffering"  # buffering | playing | done
        self.finished = False  # no more audio will come
        self.aborted = False
        self.underruns = 0
        self.started_pts: float | None = None  # daemon pts of the first sample played
        self.ended_pts: float | None = None
        self.done = threading.Event()
        self.opened = time.monotonic()

    # -- the program's side ------------------------------------------------------------------
    @property
    def queued_s(self) -> float:
        """Seconds of audio received but not yet mixed in."""
        return self._queued / self.injector.rate

    @property
    def received_s(self) -> float:
        return self._in_pos / self.rate

    def decode(self, data: bytes) -> np.ndarray:
        """Interleaved PCM bytes -> mono float32; StreamError for what is not PCM."""
        frame = self.width * self.channels
        if len(data) % frame:
            raise StreamError(f"{len(data)} bytes is not a whole number of {self.format} "
                              f"samples x {self.channels} channel(s) ({frame} bytes each)")
        x = np.frombuffer(data, self.dtype)
        if self.format == "s16le":
            x = x.astype(np.float32) / 32768.0
        else:
            x = x.astype(np.float32)
            if not np.isfinite(x).all():
                raise StreamError("f32le audio holds NaN or infinite samples")
            x = np.clip(x, -1.0, 1.0)
        if self.channels > 1:
            x = x.reshape(-1, self.channels).mean(axis=1, dtype=np.float32)
        return x

    def write(self, data: bytes, pts: float | None = None) -> None:
        """Queue PCM ``data``; with ``pts`` (seconds on the stream clock) a gap before it is
        silence and audio overlapping what came already is dropped."""
        if self.finished:
            raise StreamError("audio after the end of the stream")
        x = self.decode(data)
        if pts is not None:
            if not math.isfinite(pts) or pts < 0:
                raise StreamError(f"timestamp must be finite seconds >= 0, got {pts!r}")
            s = round(pts * self.rate)
            if s > self._in_pos:
                gap = s - self._in_pos
                if gap > self.injector.max_gap_s * self.rate:
                    raise StreamError(f"timestamp {pts:.3f} s jumps {gap / self.rate:.1f} s "
                                      f"past the audio sent (at most "
                                      f"{self.injector.max_gap_s:g} s)")
                x = np.concatenate([np.zeros(gap, np.float32), x])
            elif s < self._in_pos:
                x = x[self._in_pos - s:]
        if not len(x):
            return
        if self.queued_s + len(x) / self.rate > self.injector.max_queue_s:
            raise Flood(f"flood: more than {self.injector.max_queue_s:g} s of audio queued "
                        "ahead of playback; send at most that far ahead of real time")
        self._in_pos += len(x)
        self._put(self._resample(x))

    def _put(self, y: np.ndarray) -> None:
        if len(y):
            with self.injector.lock:
                self._queue.append(y)
                self._queued += len(y)

    def finish(self) -> None:
        """No more audio: what is queued plays out, then the stream is done."""
        if not self.finished:
            self._put(self._resample(None))
            self.finished = True

    def abort(self) -> None:
        """Drop what is queued now (the program went away mid-utterance)."""
        with self.injector.lock:
            self.aborted = True
            self.finished = True
            self._queue.clear()
            self._queued = 0

    # -- the engine thread's side ------------------------------------------------------------
    def _take(self, n: int) -> np.ndarray:
        parts, need = [], n
        while need and self._queue:
            head = self._queue[0]
            if len(head) <= need:
                parts.append(self._queue.popleft())
                need -= len(head)
            else:
                parts.append(head[:need])
                self._queue[0] = head[need:]
                need = 0
        self._queued -= n - need
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def _mix(self, out: np.ndarray, pts: float) -> None:
        """Add this stream's next samples into ``out`` (daemon pts ``pts``); lock held."""
        rate = self.injector.rate
        if self.state == "buffering":
            if not (self.finished or self.queued_s >= self.injector.prebuffer_s):
                return
            self.state = "playing"
        y = self._take(len(out))
        if len(y):
            out[:len(y)] += y
            if self.started_pts is None:
                self.started_pts = pts
            if self.track is not None:
                self.track.place(self._played / rate, pts, len(y) / rate)
            self._played += len(y)
        if len(y) < len(out):
            if self.finished:
                self.state = "done"
                self.ended_pts = pts + len(y) / rate
                self.done.set()
            else:
                self.underruns += 1
                self.state = "buffering"
                # the stream clock jumps the silence: timings after it stay on their audio
                log.debug("%s: queue ran dry at %.3f s", self.name, pts + len(y) / rate)


class AudioInjector:
    """Mixes programs' audio streams into the daemon's blocks (see the module docstring)."""

    def __init__(self, rate: int, timed: Any = None, prebuffer_s: float = 0.06,
                 max_queue_s: float = 30.0, max_streams: int = 4, stall_s: float = 10.0,
                 max_gap_s: float = 5.0) -> None:
        self.rate = rate
        self.timed = timed  # a TimedAudio2Motion, or None: timings are not followed
        self.prebuffer_s, self.max_queue_s = prebuffer_s, max_queue_s
        self.max_streams, self.stall_s, self.max_gap_s = max_streams, stall_s, max_gap_s
        self.lock = threading.Lock()
        self.streams: list[AudioStream] = []
        self.served = 0
        self.clock_pts = 0.0  # end of the newest block mixed
        self.delay_s = 0.0  # the voice output's delay D (the daemon sets it)

    def open(self, fmt: str, rate: int, channels: int, alphabet: str | None = "espeak",
             name: str = "stream") -> AudioStream:
        """A new stream; Busy when ``max_streams`` play already, StreamError for a bad format."""
        track = None
        if self.timed is not None and alphabet is not None:
            track = TimedTrack(alphabet)
        stream = AudioStream(self, fmt, rate, channels, track, name)
        with self.lock:
            live = [s for s in self.streams if s.state != "done"]
            if len(live) >= self.max_streams:
                raise Busy(f"{len(live)} programs are streaming audio already (at most "
                           f"{self.max_streams}); try again when one ends")
            self.streams = [*live, stream]
            self.served += 1
        if track is not None:
            self.timed.add_track(track)
        return stream

    def mix(self, chunk: AudioChunk) -> AudioChunk:
        """``chunk`` with the playing streams' next samples added (clipped to +-1)."""
        with self.lock:
            self.clock_pts = chunk.end
            active = [s for s in self.streams if s.state != "done"]
            if not active:
                return chunk
            out = np.array(chunk.pcm, np.float32, copy=True)
            for s in active:
                s._mix(out, chunk.pts)
            self.streams = [s for s in self.streams if s.state != "done"]
        np.clip(out, -1.0, 1.0, out=out)
        return AudioChunk(chunk.pts, out, chunk.sample_rate)

    def status(self) -> dict[str, Any]:
        """For ``avatar-vcam status``: programs streaming now and served so far."""
        with self.lock:
            live = [s for s in self.streams if s.state != "done"]
        return {"audio_streams": len(live), "audio_streams_served": self.served}


class MixedSource:
    """A source whose blocks carry the injector's streams mixed in; all else is ``base``'s."""

    def __init__(self, base: Any, injector: AudioInjector) -> None:
        self.base = base
        self.injector = injector

    def __getattr__(self, name: str) -> Any:
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def chunks(self) -> Any:
        for chunk in self.base.chunks():
            yield self.injector.mix(chunk)
