"""Audio sources: ``demo``, ``file:PATH``, live ``mic``, ``system``, ``device:NAME``, and
for programs ``idle`` (silence on the clock; programs stream over ``/v1/audio``) and
``pipe:FORMAT:RATE[:CHANNELS]`` (raw PCM on stdin), see :mod:`.live.program_sources`.

A source yields :class:`AudioChunk` blocks whose pts come from its sample counter.
File sources run as fast as the consumer takes them unless ``realtime`` paces them
against the wall clock like a live input.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from engine.audio.decode import decode_audio
from engine.frames import AudioChunk

from .errors import DeviceError
from .live.capture import LiveSource


def demo_clip_path() -> Path:
    """The bundled speech clip used by ``--source demo``."""
    return Path(str(resources.files("vcam") / "assets" / "demo_speech.wav"))


class FileSource:
    """Audio from a file, in blocks of ``block_s`` seconds."""

    live = False

    def __init__(self, path: str | Path, realtime: bool = False, block_s: float = 0.02) -> None:
        self.path = Path(path)
        self.realtime = realtime
        self.block_s = block_s
        self.pcm, self.sample_rate = decode_audio(self.path)
        self.name = f"file:{self.path}"

    @property
    def duration(self) -> float:
        return len(self.pcm) / self.sample_rate

    def chunks(self) -> Iterator[AudioChunk]:
        n = max(1, round(self.block_s * self.sample_rate))
        start = time.monotonic()
        for i in range(0, len(self.pcm), n):
            pts = i / self.sample_rate
            if self.realtime:  # deliver each block when it would have been captured
                delay = start + pts + n / self.sample_rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            yield AudioChunk(pts, self.pcm[i : i + n], self.sample_rate)

    def close(self) -> None:
        pass


LIVE_KINDS = ("mic", "system", "device")


def parse_source(spec: str, realtime: bool = False) -> Any:
    """Build a source from its command-line form (live ones are opened by the caller)."""
    kind, _, arg = spec.partition(":")
    if spec == "demo":
        src = FileSource(demo_clip_path(), realtime=realtime)
        src.name = "demo"
        return src
    if kind == "file" and arg:  # "file:~/x.wav": no shell expands the ~ after "file:"
        return FileSource(Path(arg).expanduser(), realtime=realtime)
    if spec in ("mic", "system") or (kind == "device" and arg):
        from .live.audio_devices import resolve_input

        return LiveSource(resolve_input(spec))
    if spec == "idle":
        from .live.program_sources import ClockSource

        return ClockSource()
    if kind == "pipe":
        from .live.program_sources import PipeSource

        return PipeSource(spec, realtime=realtime)
    raise DeviceError(f"unknown source {spec!r}; use mic, system, device:NAME, demo, "
                      "file:PATH, idle or pipe:FORMAT:RATE[:CHANNELS]")
