"""``/v1/audio``: programs stream PCM (and TTS timings) into the running daemon over a
WebSocket on the control API's port, with its token (``Authorization: Bearer``).

The protocol (docs/tts-timings.md has the full schema):

1. client -> text ``{"format": "s16le"|"f32le", "rate": 22050, "channels": 1,
   "timestamps": false, "alphabet": "arpabet"}``; server -> ``{"type": "ready", ...}``.
2. client -> binary PCM frames (interleaved; with ``"timestamps": true`` each starts with
   its first sample's time on the stream clock, float64 little-endian seconds), and text
   timing events ``{"type": "phones"|"visemes"|"weights", ...}`` on the same clock.
3. client -> ``{"type": "end"}``; once the audio has played the server sends
   ``{"type": "done", ...}`` and closes with 1000.

One connection is one stream. A client that sends garbage (1007), breaks the protocol or
floods (1008), sends a message over ``MAX_MESSAGE`` (1009), stalls for ``stall_s`` (1008)
or comes while ``max_streams`` play (1013) gets a text ``{"type": "error"}`` saying what to
do, then that close code. One that disconnects mid-utterance has its unplayed audio
dropped. The avatar idles meanwhile; nothing a client does stops the daemon.
"""

from __future__ import annotations

import json
import logging
import math
import struct
from typing import Any

from engine import jsonfile

from ..live.inject import AudioInjector, AudioStream, Busy, Flood, StreamError
from .ws_upgrade import accept_websocket

log = logging.getLogger(__name__)

PATH = "/v1/audio"
MAX_MESSAGE = 1 << 20  # bytes; ~5 s of 48 kHz stereo s16le
MAX_TEXT = 256 * 1024
OPEN_TIMEOUT_S = 5.0
OPENING_HELP = ('open with a JSON text message such as {"format": "s16le", "rate": 22050, '
                '"channels": 1}')
GARBAGE, POLICY, TOO_BIG, TRY_LATER, INTERNAL, NORMAL = 1007, 1008, 1009, 1013, 1011, 1000


class Refusal(Exception):
    """End the session with ``code`` after telling the client ``text``."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code, self.text = code, text


def serve_audio(handler: Any) -> None:
    """Take over ``handler``'s (authorised) connection for ``/v1/audio``."""
    handler.close_connection = True
    injector: AudioInjector | None = getattr(handler.server.target, "audio_in", None)
    if injector is None:
        handler._reply(409, {"error": "this run takes no streamed audio (a file render); "
                                      "start the daemon with a live --source such as idle "
                                      "or mic"})
        return
    conn = accept_websocket(handler, max_size=MAX_MESSAGE, close_timeout=2.0, max_queue=64,
                            not_websocket=f"{PATH} is a WebSocket: connect with a WebSocket "
                                          "client (Upgrade: websocket)")
    if conn is None:
        return
    session = _Session(conn, injector, handler.client_address[0])
    try:
        session.run()
    finally:
        conn.close()


class _Session:
    """One client's stream, from the opening message to the close."""

    def __init__(self, conn: Any, injector: AudioInjector, peer: str) -> None:
        self.conn, self.injector, self.peer = conn, injector, peer
        self.stream: AudioStream | None = None
        self.timestamps = False

    def run(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            self._open()
            self._loop()
        except Refusal as r:
            self._refuse(r)
        except ConnectionClosed as e:  # the client went away
            self._gone(e)
        except Exception as e:  # never take the daemon down
            log.warning("audio client %s: %s: %s", self.peer, type(e).__name__, e)
            self._refuse(Refusal(INTERNAL, f"internal error: {type(e).__name__}"))

    def _recv(self, timeout: float) -> str | bytes:
        try:
            return self.conn.recv(timeout=timeout)
        except TimeoutError:
            if self.stream is None:
                raise Refusal(POLICY, f"stalled: no opening message within {timeout:g} s; "
                                      f"{OPENING_HELP}") from None
            raise Refusal(POLICY, f"stalled: nothing received for {timeout:g} s; send audio "
                                  'in real time, and {"type": "end"} when done') from None

    def _open(self) -> None:
        msg = self._recv(OPEN_TIMEOUT_S)
        if not isinstance(msg, str):
            raise Refusal(POLICY, f"binary before the opening message; {OPENING_HELP}")
        body = _json(msg, OPENING_HELP)
        fmt, rate = body.get("format"), body.get("rate")
        channels = body.get("channels", 1)
        self.timestamps = body.get("timestamps", False)
        alphabet = body.get("alphabet", "arpabet")
        if not isinstance(self.timestamps, bool):
            raise Refusal(POLICY, "timestamps must be true or false")
        try:
            from engine.audio2motion.timed import ALPHABETS

            if alphabet not in ALPHABETS:
                raise StreamError(f"alphabet must be one of {', '.join(ALPHABETS)}, got "
                                  f"{alphabet!r}")
            self.stream = self.injector.open(fmt, rate, channels, alphabet,
                                             name=f"audio client {self.peer}")
        except Busy as e:
            raise Refusal(TRY_LATER, str(e)) from None
        except StreamError as e:
            raise Refusal(POLICY, f"{e}; {OPENING_HELP}") from None
        delay = getattr(self.injector, "delay_s", 0.0)
        self.conn.send(json.dumps({"type": "ready", "rate": self.injector.rate,
                                   "clock_pts": round(self.injector.clock_pts, 6),
                                   "delay_ms": round(1000 * delay, 1),
                                   "timings": self.stream.track is not None}))

    def _loop(self) -> None:
        stream = self.stream
        assert stream is not None
        while True:
            msg = self._recv(self.injector.stall_s)
            try:
                if isinstance(msg, bytes):
                    self._audio(stream, msg)
                elif self._event(stream, msg):
                    return
            except Flood as e:
                raise Refusal(POLICY, str(e)) from None
            except StreamError as e:
                raise Refusal(GARBAGE, str(e)) from None

    def _audio(self, stream: AudioStream, msg: bytes) -> None:
        pts = None
        if self.timestamps:
            if len(msg) < 8:
                raise StreamError("with timestamps, each binary message starts with its "
                                  "time (8 bytes, float64 little-endian seconds)")
            pts = struct.unpack("<d", msg[:8])[0]
            msg = msg[8:]
        stream.write(msg, pts)

    def _event(self, stream: AudioStream, msg: str) -> bool:
        """Handle one text event; True at the end of the stream."""
        body = _json(msg, 'send {"type": "phones"|"visemes"|"weights"|"end", ...}')
        kind = body.get("type")
        track = stream.track
        try:
            if kind == "end":
                self._finish(stream)
                return True
            if kind in ("phones", "visemes"):
                key, name = ("phones", "phone") if kind == "phones" else ("visemes", "viseme")
                items = _list(body, key)
                rows = [(_field(x, name), _field(x, "start"), x.get("end")) for x in items]
                if track is not None:
                    track.add_phones(rows, "viseme" if kind == "visemes" else None)
            elif kind == "weights":
                items = _list(body, "frames")
                keys = [(_field(x, "t"), {k: v for k, v in x.items() if k != "t"})
                        for x in items]
                if track is not None:
                    track.add_weights(keys)
            else:
                raise StreamError(f"unknown event type {kind!r}; use phones, visemes, "
                                  "weights or end")
        except (TypeError, ValueError) as e:
            raise StreamError(f"{kind} event: {e}") from None
        return False

    def _finish(self, stream: AudioStream) -> None:
        stream.finish()
        wait = stream.queued_s + self.injector.prebuffer_s + 5.0
        if not stream.done.wait(wait):
            raise Refusal(INTERNAL, f"the daemon did not play the stream within {wait:.1f} s")
        rate = self.injector.rate
        self.conn.send(json.dumps({
            "type": "done", "received_s": round(stream.received_s, 6),
            "started_pts": _round(stream.started_pts), "ended_pts": _round(stream.ended_pts),
            "played_s": round(stream._played / rate, 6), "underruns": stream.underruns}))
        self.conn.close(NORMAL, "end of stream")

    def _refuse(self, r: Refusal) -> None:
        if self.stream is not None:
            self.stream.abort()
        log.warning("audio client %s refused: %s", self.peer, r.text)
        try:
            self.conn.send(json.dumps({"type": "error", "code": r.code, "error": r.text}))
            self.conn.close(r.code, _reason(r.text))
        except Exception as e:  # it may be gone already
            log.debug("audio client %s: close failed: %s", self.peer, e)

    def _gone(self, e: Exception) -> None:
        stream = self.stream
        if stream is None or stream.finished:
            return
        left = stream.queued_s
        stream.abort()
        log.warning("audio client %s went away mid-stream (%s); %.2f s unplayed dropped",
                    self.peer, type(e).__name__, left)


def _json(msg: str, help_text: str) -> dict[str, Any]:
    try:
        body = jsonfile.loads(msg.encode(), max_bytes=MAX_TEXT, max_depth=6)
    except (jsonfile.JsonError, ValueError) as e:
        raise Refusal(GARBAGE, f"not JSON ({e}); {help_text}") from None
    if not isinstance(body, dict):
        raise Refusal(GARBAGE, f"not a JSON object; {help_text}")
    return body


def _list(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = body.get(key)
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        raise ValueError(f"{key!r} must be a list of objects")
    return items


def _field(item: dict[str, Any], key: str) -> Any:
    if key not in item:
        raise ValueError(f"each item needs {key!r}")
    return item[key]


def _round(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, 6)


def _reason(text: str) -> str:
    """A close reason fits 123 bytes of UTF-8."""
    raw = text.encode()
    return text if len(raw) <= 123 else raw[:120].decode(errors="ignore") + "..."
