"""A single-producer single-consumer ring buffer of float32 samples.

The audio callback is the only writer and only copies; the engine thread is the only
reader. Counters only grow, so ``written`` doubles as the input's sample clock.
"""

from __future__ import annotations

import numpy as np


class RingBuffer:
    """Fixed-capacity sample ring; overflow drops the oldest samples (and counts them)."""

    def __init__(self, capacity: int) -> None:
        self._buf = np.zeros(capacity, np.float32)
        self.capacity = capacity
        self.written = 0  # total samples ever written (producer)
        self.read = 0  # total samples ever read (consumer)
        self.overruns = 0  # samples lost because the reader fell behind

    def write(self, samples: np.ndarray) -> None:
        """Copy ``samples`` in (called from the audio callback: no allocation, no locks)."""
        n = len(samples)
        if n > self.capacity:
            samples = samples[-self.capacity :]
            n = self.capacity
        start = self.written % self.capacity
        first = min(n, self.capacity - start)
        self._buf[start : start + first] = samples[:first]
        self._buf[: n - first] = samples[first:]
        self.written += n

    def available(self) -> int:
        return self.written - self.read

    def read_into(self, max_samples: int | None = None) -> tuple[int, np.ndarray]:
        """``(first_sample_index, samples)`` of everything new (a copy), oldest first."""
        written = self.written  # snapshot: the producer may keep writing
        if written - self.read > self.capacity:
            self.overruns += written - self.read - self.capacity
            self.read = written - self.capacity
        n = written - self.read
        if max_samples is not None:
            n = min(n, max_samples)
        start = self.read % self.capacity
        first = min(n, self.capacity - start)
        out = np.concatenate([self._buf[start : start + first], self._buf[: n - first]])
        index = self.read
        self.read += n
        return index, out
