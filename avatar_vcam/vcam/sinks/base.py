"""The sink protocol: where frames (and, for recordings, the voice) go."""

from __future__ import annotations

from typing import Protocol

from ...engine.frames import AudioChunk, VideoFrame


class Sink(Protocol):
    """A frame consumer. ``open`` fails early with a DeviceError that says what to do."""

    name: str

    def open(self, width: int, height: int, fps: int) -> None: ...

    def send(self, frame: VideoFrame) -> None: ...

    def audio(self, chunk: AudioChunk) -> None:
        """The voice that belongs with the frames (same pts); sinks without audio ignore it."""
        ...

    def close(self) -> None: ...
