"""The sink protocol: where frames (and, for recordings, the voice) go."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol

from engine.frames import AudioChunk, VideoFrame


class Sink(Protocol):
    """A frame consumer. ``open`` fails early with a DeviceError that says what to do."""

    name: str

    def open(self, width: int, height: int, fps: int) -> None: ...

    def send(self, frame: VideoFrame) -> None: ...

    def audio(self, chunk: AudioChunk) -> None:
        """The voice that belongs with the frames (same pts); sinks without audio ignore it."""
        ...

    def close(self) -> None: ...


def finish_or_abort(sink: Sink, failed: bool) -> None:
    """Close ``sink``; after a failure abort it instead when it can (an mp4 then drops its
    unfinished file, and the file already at its path stays as it was)."""
    abort = getattr(sink, "abort", None)
    if failed and abort is not None:
        abort()
    else:
        sink.close()


@contextlib.contextmanager
def writing(sink: Sink) -> Iterator[Sink]:
    """``with writing(sink):`` closes it at the end, or aborts it if the block raised."""
    try:
        yield sink
    except BaseException:
        finish_or_abort(sink, failed=True)
        raise
    finish_or_abort(sink, failed=False)
