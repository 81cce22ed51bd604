"""Session: one stream of audio in and frames out on the audio sample clock.

The simplest way to drive an :class:`~engine.Engine` from a program (and the model the C
ABI in :mod:`engine.capi` exposes): push mono audio as it comes, pull frames as they
become ready. Time is the sample clock: the n-th frame of a session is at ``n / fps``
seconds of pushed audio, and it is ready once audio up to that instant plus the engine's
look-ahead has been pushed.

    with Engine("leo") as e:
        s = Session(e, sample_rate=16000)
        s.push(block)                      # float32 mono, any length
        while (frame := s.pull()) is not None:
            show(frame.image)              # (H, W, 3) uint8 RGB at frame.pts

Pushed audio is queued and fed to the engine only as far as the next frame needs, so a
caller may push a whole file at once and pull its frames afterwards (the engine itself
keeps only a few seconds of motion history).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from .audio.pcm import as_float_pcm
from .engine import Engine
from .frames import VideoFrame

#: audio is fed to the engine in blocks of at most this many seconds
FEED_BLOCK_S = 0.04


class Session:
    """A sample-clock stream over one :class:`Engine` (which must be fresh: no audio yet)."""

    def __init__(self, engine: Engine, sample_rate: int = 16000,
                 max_queued_s: float = 600.0) -> None:
        if not 8000 <= int(sample_rate) <= 192000:
            raise ValueError(f"sample_rate must be in 8000..192000 Hz, got {sample_rate}")
        self.engine = engine
        self.sample_rate = int(sample_rate)
        self.max_queued_s = float(max_queued_s)
        self._queue: deque[np.ndarray] = deque()
        self._queued = 0  # samples in the queue
        self._fed = 0  # samples given to the engine
        self._frames = 0  # frames pulled

    @property
    def samples_pushed(self) -> int:
        """Samples pushed so far (queued or fed)."""
        return self._fed + self._queued

    @property
    def next_pts(self) -> float:
        """pts of the frame the next :meth:`pull` returns."""
        return self._frames / self.engine.config.fps

    def push(self, pcm: np.ndarray) -> None:
        """Append mono audio at ``sample_rate`` (float in [-1, 1] or integer PCM).

        ValueError when more than ``max_queued_s`` seconds would wait unpulled; nothing is
        appended then."""
        a = np.asarray(pcm)
        n = max(a.shape, default=0)  # checked before any copy: a huge block costs nothing
        if (self._queued + n) / self.sample_rate > self.max_queued_s:
            raise ValueError(f"more than {self.max_queued_s:g} s of audio pushed ahead of the "
                             "frames pulled; pull frames while pushing")
        x = as_float_pcm(a)
        if len(x):
            self._queue.append(x.copy())
            self._queued += len(x)

    def ready(self) -> bool:
        """True when :meth:`pull` would return a frame (feeds queued audio as needed)."""
        pts = self.next_pts
        block = max(1, round(FEED_BLOCK_S * self.sample_rate))
        while self.engine.ready_until() < pts - 1e-9 and self._queue:
            head = self._queue[0]
            part, rest = head[:block], head[block:]
            if len(rest):
                self._queue[0] = rest
            else:
                self._queue.popleft()
            self._queued -= len(part)
            self.engine.push_audio(part, self._fed / self.sample_rate, self.sample_rate)
            self._fed += len(part)
        return self.engine.ready_until() >= pts - 1e-9

    def pull(self) -> VideoFrame | None:
        """The next frame (at :attr:`next_pts`) once its motion is final, else None."""
        if not self.ready():
            return None
        frame = self.engine.frame_at(self.next_pts)
        self._frames += 1
        return frame
