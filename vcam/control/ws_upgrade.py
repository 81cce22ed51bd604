"""Turn a request the control API's HTTP server has already parsed into a WebSocket.

The server (http.server) reads the request line and headers before a route sees them; the
`websockets` library's sans-I/O protocol is handed those same bytes, so its parser checks
the handshake itself and moves on to frames. Shared by ``/v1/audio`` and the browser page.
"""

from __future__ import annotations

import socket
from typing import Any


def accept_websocket(handler: Any, *, max_size: int, close_timeout: float, max_queue: int,
                     not_websocket: str) -> Any | None:
    """A ``websockets.sync`` Connection on the handler's socket, or None once an error
    reply has been sent (``not_websocket``: the 426 text for a plain HTTP request)."""
    handler.close_connection = True
    if "websocket" not in handler.headers.get("Upgrade", "").lower():
        handler._reply(426, {"error": not_websocket})
        return None
    from websockets.http11 import Request
    from websockets.server import ServerProtocol
    from websockets.sync.connection import Connection

    sock: socket.socket = handler.connection
    protocol = ServerProtocol(max_size=max_size)
    head = [handler.requestline, *(f"{k}: {v}" for k, v in handler.headers.items()), "", ""]
    protocol.receive_data("\r\n".join(head).encode("latin-1", "replace"))
    request = next((e for e in protocol.events_received() if isinstance(e, Request)), None)
    if request is None:
        handler._reply(400, {"error": "malformed WebSocket handshake"})
        return None
    response = protocol.accept(request)
    protocol.send_response(response)
    sock.sendall(b"".join(protocol.data_to_send()))
    if response.status_code != 101:  # a malformed handshake: websockets said why
        return None
    sock.settimeout(None)  # the session keeps its own deadlines
    return Connection(sock, protocol, ping_interval=None, close_timeout=close_timeout,
                      max_queue=max_queue)
