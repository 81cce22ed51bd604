"""BrowserSink (``--sink obs`` / ``--sink browser``): the avatar over transparency, for an
OBS Browser Source or any browser, served by the control API on its loopback port.

Frames travel as raw RGBA over a WebSocket (``/obs/ws``): each binary message is one
frame, the bounding box of its opaque-or-soft pixels only (``HEADER`` then rows of RGBA,
straight alpha). Raw because encoding costs the daemon nothing (a crop and a copy, well
under a millisecond at 512 px) while WebP with alpha took 8-14 ms a frame with Pillow on
this 2-core machine, the renderer's whole budget; loopback carries the ~0.6 MB a frame
(15 MB/s at 25 fps) without effort, and the page draws it with one ``putImageData``.

Timing is the camera's: the presenter calls ``send`` when the frame's audio is heard
(the voice delay), so the page shows what the camera shows, plus the page's own
latency, which pages report back (``status()``: median and 95th percentile).

Each connected page gets the newest frame: a slow page skips frames and never holds up
the presenter (``send`` only stores the encoded frame and wakes the page threads).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import statistics
import struct
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from engine.frames import AudioChunk, VideoFrame

#: magic, seq, wall time the frame was due (ms since the epoch), frame W, H, box x, y,
#: side (where the square goes in the frame, scaled), square size, crop x, y, w, h
HEADER = struct.Struct("<4sIdHHhhHHHHHH")
MAGIC = b"AVF1"
TOKEN_FILE = "obs-page.json"
DEFAULT_PORT = 47_410  # the page's URL must outlive a restart: a fixed control port


class BrowserSink:
    """Fans the newest RGBA cut-out out to the connected pages."""

    name = "browser"
    watched_live = True  # a file played to it runs at the pace of its audio
    wants_alpha = True

    def __init__(self) -> None:
        self.size = (0, 0)
        self.fps = 25
        self.token = ""
        self._cond = threading.Condition()
        self._message: bytes | None = None
        self._seq = 0
        self._closed = False
        self.pages = 0  # connected now
        self.sent = 0  # frames handed to pages
        self.latency_ms: deque[float] = deque(maxlen=500)  # due -> drawn, as pages saw it
        self.encode_ms: deque[float] = deque(maxlen=500)

    # -- the Sink protocol -------------------------------------------------------------
    def open(self, width: int, height: int, fps: int) -> None:
        self.size, self.fps = (width, height), fps

    def send(self, frame: VideoFrame) -> None:
        if frame.rgba is None:
            raise RuntimeError("the engine gives no RGBA cut-out (Engine.enable_matte)")
        if not self.pages:
            return
        t0 = time.perf_counter()
        msg = encode(frame, self.size, self._seq + 1, time.time() * 1000.0)
        self.encode_ms.append(1000 * (time.perf_counter() - t0))
        with self._cond:
            self._seq += 1
            self._message = msg
            self._cond.notify_all()

    def audio(self, chunk: AudioChunk) -> None:
        """Pages get no sound: the voice goes to the virtual mic, at the same delay."""

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- for the page server -------------------------------------------------------------
    def next_message(self, after: int, timeout: float) -> tuple[int, bytes | None]:
        """The newest frame after ``after`` (its seq and bytes), waiting up to ``timeout``;
        (after, None) on time-out, (-1, None) once closed."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._seq > after, timeout)
            if self._closed:
                return -1, None
            if self._seq > after and self._message is not None:
                return self._seq, self._message
            return after, None

    @contextlib.contextmanager
    def page(self) -> Any:
        """``with sink.page():`` counts a connected page."""
        with self._cond:
            self.pages += 1
        try:
            yield
        finally:
            with self._cond:
                self.pages -= 1

    def shown(self, latency_ms: float) -> None:
        """A page drew a frame ``latency_ms`` after it was due."""
        if 0 <= latency_ms < 10_000:
            self.latency_ms.append(latency_ms)

    def status(self) -> dict[str, Any]:
        """Pages connected and the latency they measured (for /v1/status)."""
        lat = sorted(self.latency_ms)
        enc = list(self.encode_ms)
        return {"pages": self.pages, "frames": self.sent,
                "latency_ms": round(statistics.median(lat), 1) if lat else None,
                "latency_p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 1) if lat else None,
                "encode_ms": round(statistics.median(enc), 2) if enc else None}


def encode(frame: VideoFrame, size: tuple[int, int], seq: int, due_ms: float) -> bytes:
    """One frame message: HEADER, then the RGBA rows of the box around visible pixels."""
    rgba = frame.rgba
    assert rgba is not None
    alpha = rgba[..., 3]
    rows = np.flatnonzero(alpha.any(axis=1))
    if len(rows):
        cols = np.flatnonzero(alpha[rows[0]:rows[-1] + 1].any(axis=0))
        y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    else:
        y0 = y1 = x0 = x1 = 0
    bx, by, side = frame.rgba_box
    head = HEADER.pack(MAGIC, seq, due_ms, size[0], size[1], bx, by, side or rgba.shape[0],
                       rgba.shape[0], x0, y0, x1 - x0, y1 - y0)
    return head + np.ascontiguousarray(rgba[y0:y1, x0:x1]).tobytes()


def page_token(folder: Path) -> str:
    """The page's token, kept in ``folder`` (the private runtime folder, 0600) so that a
    restarted daemon takes the same URL until the user logs out; made on first use."""
    path = folder / TOKEN_FILE
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        token = str(json.loads(path.read_text())["token"])
        if len(token) >= 32:
            return token
    token = secrets.token_urlsafe(32)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = folder / f".{TOKEN_FILE}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps({"token": token}).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return token
