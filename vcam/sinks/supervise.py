"""Failing outputs are loud and contained: a sink that fails is reported once, then
stopped (a recording: what was written is kept) or retried (a camera), while the other
sinks and the voice go on. The run ends with a non-zero exit status if any sink failed.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from engine.frames import AudioChunk, VideoFrame

from .base import Sink

log = logging.getLogger(__name__)


class SupervisedSink:
    """Wraps a sink; its failures become a state (``ok``, ``retrying``, ``stopped``) and a
    one-line ``problem`` instead of an exception that ends the run.

    A sink with ``recover()`` (the camera) is tried again every ``retry_s`` seconds: the
    device is reopened and the current frame sent; others stop at their first failure.
    Attributes not defined here are the wrapped sink's.
    """

    def __init__(self, sink: Sink, spec: str, retry_s: float = 2.0) -> None:
        self.sink = sink
        self.spec = spec
        self.name = sink.name
        self.retry_s = retry_s
        self.state = "ok"
        self.problem: str | None = None  # the first failure, one line
        self.failed_at: float | None = None  # pts (s) of the first failure
        self.failures = 0  # times it went from ok to failed
        self.recoveries = 0
        self._next_try = 0.0
        self._down_since = 0.0
        self._lock = threading.Lock()  # send (presenter) and audio (engine) threads

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sink, name)

    @property
    def failed(self) -> bool:
        return self.failures > 0

    def open(self, width: int, height: int, fps: int) -> None:
        self.sink.open(width, height, fps)

    def send(self, frame: VideoFrame) -> None:
        with self._lock:
            if self.state == "ok":
                try:
                    self.sink.send(frame)
                except Exception as e:
                    self._fail(e, frame.pts)
            elif self.state == "retrying" and time.monotonic() >= self._next_try:
                self._retry(frame)

    def audio(self, chunk: AudioChunk) -> None:
        with self._lock:
            if self.state != "ok":
                return
            try:
                self.sink.audio(chunk)
            except Exception as e:
                self._fail(e, chunk.pts)

    def close(self) -> None:
        self.sink.close()

    def abort(self) -> None:
        abort = getattr(self.sink, "abort", None)
        (abort or self.sink.close)()

    def _fail(self, e: BaseException, pts: float) -> None:
        why = " ".join((str(e) or type(e).__name__).split())
        self.failures += 1
        if self.problem is None:
            self.problem, self.failed_at = why, pts
        self._down_since = time.monotonic()
        if hasattr(self.sink, "recover"):
            self.state = "retrying"
            self._next_try = self._down_since + self.retry_s
            log.warning("%s failed at %.1f s (%s); the other outputs go on, retrying it "
                        "every %g s", self.spec, pts, why, self.retry_s)
        else:
            self.state = "stopped"
            log.warning("%s stopped at %.1f s: %s; the other outputs go on", self.spec, pts,
                        why)
        log.debug("%s failure", self.spec, exc_info=(type(e), e, e.__traceback__))

    def _retry(self, frame: VideoFrame) -> None:
        self._next_try = time.monotonic() + self.retry_s
        try:
            self.sink.recover()
            self.sink.send(frame)
        except Exception as e:
            log.debug("%s still failing: %s", self.spec, e)
            return
        self.state = "ok"
        self.recoveries += 1
        log.warning("%s is back after %.1f s without frames", self.spec,
                    time.monotonic() - self._down_since)

    def status(self) -> str:
        """'ok', or the state and the first problem in a few words (status line, API)."""
        if self.state == "ok" and not self.failures:
            return "ok"
        if self.state == "ok":
            return f"back (failed {self.failures}x, first at {self.failed_at:.1f} s)"
        head = "FAILED, retrying" if self.state == "retrying" else "STOPPED"
        return f"{head}: {self.problem}"


def sink_states(sinks: list[Any]) -> dict[str, str]:
    """{spec: status} of the supervised sinks that are not plainly ok."""
    return {s.spec: s.status() for s in sinks
            if isinstance(s, SupervisedSink) and s.status() != "ok"}
