"""Client of ``/v1/audio``: stream PCM and TTS timings into the running daemon.

    with AudioClient.from_runtime_file() as c:
        c.open("f32le", 22050, alphabet="espeak")
        c.send_phones([("h", 0.0, 0.06), ("@", 0.06, 0.11)])
        c.send_pcm(pcm)              # float32 mono, or bytes in the opened format
        done = c.end()               # returns once the daemon has played it all

Errors are :class:`~.api.ControlError` with the daemon's one-line reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .api import ControlClient, ControlError
from .audio_ws import PATH


class AudioClient:
    """One audio stream to the daemon over its control API's WebSocket."""

    def __init__(self, port: int, token: str, host: str = "127.0.0.1",
                 timeout: float = 10.0) -> None:
        self.host, self.port, self.token, self.timeout = host, port, token, timeout
        self.conn: Any = None
        self.ready: dict[str, Any] = {}
        self.format = "f32le"
        self.rate = 0
        self.sent = 0  # samples sent

    @classmethod
    def from_runtime_file(cls, runtime_dir: Path | str | None = None,
                          timeout: float = 10.0) -> AudioClient:
        """Client for the daemon that wrote control.json (ControlError if none runs)."""
        c = ControlClient.from_runtime_file(runtime_dir)
        return cls(c.port, c.token, c.host, timeout)

    def __enter__(self) -> AudioClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self, fmt: str = "f32le", rate: int = 48000, channels: int = 1,
             alphabet: str = "arpabet", timestamps: bool = False) -> dict[str, Any]:
        """Connect and send the opening message; returns the daemon's ``ready`` reply."""
        from websockets.exceptions import InvalidStatus, WebSocketException
        from websockets.sync.client import connect

        host = f"[{self.host}]" if ":" in self.host else self.host
        try:
            conn = connect(f"ws://{host}:{self.port}{PATH}", proxy=None,
                           additional_headers={"Authorization": f"Bearer {self.token}"},
                           open_timeout=self.timeout, ping_interval=None,
                           compression=None, close_timeout=2.0)
            self.conn = conn.__enter__()  # the context-manager form; close() ends it
        except InvalidStatus as e:
            raise ControlError(f"the daemon refused the audio stream: "
                               f"{_http_error(e)}") from None
        except (OSError, TimeoutError, WebSocketException) as e:
            raise ControlError(f"cannot reach the avatar-vcam daemon's {PATH}: "
                               f"{e or type(e).__name__}; is it running?") from None
        self.format, self.rate = fmt, rate
        self._send(json.dumps({"format": fmt, "rate": rate, "channels": channels,
                               "alphabet": alphabet, "timestamps": timestamps}))
        self.ready = self._reply("ready")
        return self.ready

    def send_pcm(self, pcm: np.ndarray | bytes) -> None:
        """Send audio: bytes as they are, or mono float samples in the opened format."""
        if isinstance(pcm, np.ndarray):
            x = np.asarray(pcm, np.float32)
            self.sent += len(x)
            data = (x.astype("<f4") if self.format == "f32le"
                    else (np.clip(x, -1, 1) * 32767).astype("<i2")).tobytes()
        else:
            data = pcm
        self._send(data)

    def send_phones(self, phones: Iterable[tuple[str, float, float | None]],
                    kind: str = "phones") -> None:
        """Phone (or, with ``kind="visemes"``, viseme) timings on the stream clock."""
        key = "phone" if kind == "phones" else "viseme"
        items = [{key: n, "start": s, **({} if e is None else {"end": e})}
                 for n, s, e in phones]
        self._send(json.dumps({"type": kind, kind: items}))

    def stream(self, pcm: np.ndarray, block_s: float = 0.1, ahead_s: float = 5.0) -> None:
        """Send ``pcm`` in blocks, at most ``ahead_s`` ahead of real time."""
        n = max(1, round(block_s * self.rate))
        t0 = time.monotonic()
        for i in range(0, len(pcm), n):
            wait = i / self.rate - ahead_s - (time.monotonic() - t0)
            if wait > 0:
                time.sleep(wait)
            self.send_pcm(pcm[i:i + n])

    def end(self, timeout: float | None = None) -> dict[str, Any]:
        """Say the stream is over; returns the daemon's ``done`` once all has played."""
        self._send(json.dumps({"type": "end"}))
        wait = timeout if timeout is not None else self.sent / max(self.rate, 1) + 15.0
        return self._reply("done", wait)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _send(self, data: str | bytes) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            self.conn.send(data)
        except ConnectionClosed:
            raise ControlError(self._closed_why()) from None

    def _reply(self, kind: str, timeout: float | None = None) -> dict[str, Any]:
        from websockets.exceptions import ConnectionClosed

        try:
            msg = self.conn.recv(timeout=timeout if timeout is not None else self.timeout)
        except ConnectionClosed:
            raise ControlError(self._closed_why()) from None
        except TimeoutError:
            raise ControlError(f"the daemon did not answer {kind!r} within "
                               f"{timeout or self.timeout:g} s") from None
        body = json.loads(msg) if isinstance(msg, str) else {}
        if body.get("type") == "error":
            raise ControlError(f"the daemon refused the audio stream: {body.get('error')}")
        if body.get("type") != kind:
            raise ControlError(f"unexpected reply from the daemon: {str(msg)[:200]}")
        return body

    def _closed_why(self) -> str:
        """The daemon's reason: its error message if one came, else the close frame's."""
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                msg = self.conn.recv(timeout=1.0)
                if isinstance(msg, str) and '"error"' in msg:
                    return f"the daemon refused the audio stream: {json.loads(msg)['error']}"
        except (ConnectionClosed, TimeoutError, ValueError, KeyError):
            pass
        rcvd = getattr(self.conn.protocol, "close_rcvd", None)
        if rcvd is not None and rcvd.reason:
            return f"the daemon closed the audio stream ({rcvd.code}): {rcvd.reason}"
        return "the daemon closed the audio stream"


def _http_error(e: Any) -> str:
    body = getattr(e.response, "body", b"") or b""
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {e.response.status_code}"
