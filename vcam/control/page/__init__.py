"""The browser-source page on the control API's port: ``GET /obs?k=TOKEN`` (the page) and
``GET /obs/ws?k=TOKEN`` (its WebSocket, frames from :class:`~vcam.sinks.browser.BrowserSink`).

Guarded by the page token (not the control API's: the URL sits in OBS's scene file and
can drive nothing), a Host that names this loopback port (no DNS rebinding), and for
the WebSocket an Origin that is this page's own: another web page open in a browser is
refused even if it learns the token.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..ws_upgrade import accept_websocket

log = logging.getLogger(__name__)

PAGE_PATH = "/obs"
WS_PATH = "/obs/ws"
MAX_MESSAGE = 4096  # pages send only small 'shown' notes


def handles(path: str) -> bool:
    """Whether a request path is the page's (served before the control API's token check)."""
    return urlsplit(path).path in (PAGE_PATH, WS_PATH)


def page_url(port: int, token: str, host: str = "127.0.0.1") -> str:
    """The URL to give OBS's Browser Source."""
    return f"http://{host}:{port}{PAGE_PATH}?k={token}"


def serve(handler: Any) -> None:
    """Serve the page or its WebSocket on ``handler``'s connection (a ``GET``)."""
    sink = getattr(handler.server.target, "browser", None)
    parts = urlsplit(handler.path)
    if sink is None:
        handler._reply(409, {"error": "this run has no browser source; start the daemon with "
                                      "--sink obs"})
        return
    token = (parse_qs(parts.query).get("k") or [""])[0]
    if not token or not hmac.compare_digest(token.encode(), sink.token.encode()):
        handler._reply(403, {"error": "wrong or missing page token; get the URL with "
                                      "`avatar-vcam obs-url`"})
        return
    port = handler.server.server_address[1]
    own = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
    if handler.headers.get("Host", "") not in own:
        handler._reply(403, {"error": "the page is served to this machine's loopback only"})
        return
    if parts.path == PAGE_PATH:
        _page(handler)
        return
    origin = handler.headers.get("Origin", "")
    if origin not in {f"http://{h}" for h in own}:
        handler._reply(403, {"error": f"origin {origin or 'none'} may not open the page's "
                                      "WebSocket"})
        return
    _stream(handler, sink)


def _page(handler: Any) -> None:
    data = resources.files(__package__).joinpath("page.html").read_bytes()
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html; charset=utf-8")
    handler.send_header("Content-Length", str(len(data)))
    handler.send_header("Cache-Control", "no-store")
    handler.send_header("Referrer-Policy", "no-referrer")
    handler.send_header("X-Content-Type-Options", "nosniff")
    handler.send_header("Content-Security-Policy",
                        "default-src 'none'; script-src 'unsafe-inline'; "
                        "style-src 'unsafe-inline'; connect-src 'self'")
    handler.end_headers()
    handler.wfile.write(data)


def _stream(handler: Any, sink: Any) -> None:
    """WebSocket: the newest frame whenever there is one; 'shown' notes back."""
    from websockets.exceptions import ConnectionClosed

    conn = accept_websocket(handler, max_size=MAX_MESSAGE, close_timeout=1.0, max_queue=16,
                            not_websocket="this is a WebSocket endpoint")
    if conn is None:
        return
    reader = _Notes(conn, sink)
    try:
        with sink.page():
            reader.start()
            seq = 0
            while reader.alive:
                seq, msg = sink.next_message(seq, timeout=0.5)
                if seq < 0:  # the daemon stops: the page reconnects to the next one
                    conn.close(1001, "the daemon stops")
                    break
                if msg is not None:
                    conn.send(msg)
                    sink.sent += 1
    except (ConnectionClosed, OSError) as e:
        log.debug("browser page left: %r", e)
    finally:
        reader.alive = False
        with contextlib.suppress(Exception):
            conn.close()


class _Notes:
    """Reads the page's 'shown' notes (its latency) on a thread of its own."""

    def __init__(self, conn: Any, sink: Any) -> None:
        import threading

        self.conn, self.sink, self.alive = conn, sink, True
        self._thread = threading.Thread(target=self._run, name="obs-page-notes", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            for msg in self.conn:
                if isinstance(msg, str):
                    with contextlib.suppress(ValueError, TypeError, KeyError):
                        note = json.loads(msg)
                        if note.get("type") == "shown":
                            self.sink.shown(float(note["latency_ms"]))
        except Exception as e:  # the page went away
            log.debug("browser page notes ended: %r", e)
        self.alive = False


def url_of(server: Any) -> dict[str, Any]:
    """``/v1/obs-url``'s reply: the page's URL and the frame size; ValueError when this run
    has no page."""
    sink = getattr(server.target, "browser", None)
    if sink is None:
        raise ValueError("this run has no browser source; start the daemon with --sink obs")
    host = server.server_address[0]
    width, height = getattr(sink, "size", (0, 0))
    return {"url": page_url(server.server_address[1], sink.token,
                            f"[{host}]" if ":" in host else host),
            "width": int(width), "height": int(height)}  # the frame size (OBS's source size)
