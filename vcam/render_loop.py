"""The run loop: source -> engine -> sinks, paced by the audio sample clock.

Frames live on the grid ``k / fps``. Frame k is rendered as soon as the engine has the
audio it needs (``ready_until() >= k / fps``). Offline runs render in batches as fast as
possible; live runs never queue latency: when several frames are due at once, only the
newest is rendered and the others count as dropped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from engine import Engine
from engine.frames import AudioChunk

from .sinks.base import Sink


@dataclass
class RunStats:
    """What a run did, for the status line, logs and tests."""

    frames: int = 0
    dropped: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    render_seconds: float = 0.0
    started: float = field(default_factory=time.monotonic)

    @property
    def fps(self) -> float:
        return self.frames / self.wall_seconds if self.wall_seconds > 0 else 0.0


def _trimmed(chunks: Iterable[AudioChunk], duration: float | None) -> Iterator[AudioChunk]:
    for c in chunks:
        if duration is not None and c.end > duration:
            keep = max(0, round((duration - c.pts) * c.sample_rate))
            if keep:
                yield AudioChunk(c.pts, c.pcm[:keep], c.sample_rate)
            return
        yield c


class FramePump:
    """Renders the frames the engine is ready for and hands them to the sinks."""

    def __init__(self, engine: Engine, sinks: list[Sink], live: bool, batch: int = 4) -> None:
        self.engine, self.sinks, self.live, self.batch = engine, sinks, live, batch
        self.next_index = 0
        self.stats = RunStats()

    def pump(self, until: float) -> None:
        """Render every frame with pts <= ``until`` that has not gone out yet."""
        fps = self.engine.config.fps
        last = math.floor(until * fps + 1e-9)
        if last < self.next_index:
            return
        if self.live and last > self.next_index:  # behind: present the newest, drop the rest
            self.stats.dropped += last - self.next_index
            self.next_index = last
        while self.next_index <= last:
            stop = min(last + 1, self.next_index + self.batch)
            t0 = time.perf_counter()
            frames = self.engine.frames_at([k / fps for k in range(self.next_index, stop)])
            self.stats.render_seconds += time.perf_counter() - t0
            for f in frames:
                for s in self.sinks:
                    s.send(f)
            self.stats.frames += len(frames)
            self.next_index = stop


def run(
    engine: Engine,
    chunks: Iterable[AudioChunk],
    sinks: list[Sink],
    *,
    duration: float | None = None,
    live: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[RunStats], None] | None = None,
) -> RunStats:
    """Drive ``engine`` with ``chunks`` until they end, ``duration`` or ``should_stop()``."""
    pump = FramePump(engine, sinks, live)
    stats = pump.stats
    end = 0.0
    rate = 16000
    for chunk in _trimmed(chunks, duration):
        engine.push_audio(chunk.pcm, chunk.pts, chunk.sample_rate)
        for s in sinks:
            s.audio(chunk)
        end, rate = chunk.end, chunk.sample_rate
        stats.audio_seconds = end
        pump.pump(engine.ready_until())
        if on_progress is not None:
            on_progress(stats)
        if should_stop():
            break
    # End of stream: the look-ahead window after the last sample is silence.
    tail = engine.a2m.lookahead + 2.0 / engine.config.fps
    engine.push_audio(np.zeros(math.ceil(tail * rate), np.float32), end, rate)
    last_pts = (math.ceil(end * engine.config.fps - 1e-9) - 1) / engine.config.fps
    pump.live = False
    pump.pump(last_pts)
    stats.wall_seconds = time.monotonic() - stats.started
    return stats
