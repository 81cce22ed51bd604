"""Local control API of the daemon: HTTP + JSON on 127.0.0.1, guarded by a random token.

The server writes ``control.json`` = {port, token, pid} (mode 0600) into the user's runtime
folder (``platformdirs.user_runtime_path("avatar-vcam")``; ``AVATAR_VCAM_RUNTIME_DIR``
overrides) and removes it on close. Clients send ``Authorization: Bearer <token>``.

    GET  /v1/status                       -> target.status()
    GET  /v1/expressions                  -> {"expressions": [...], "expression": current}
    POST /v1/expression {"name": "smile"} -> {"ok": true, "expression": "smile"}
    POST /v1/scene      {"name": "BRB"}   -> {"ok": true, "scene": "BRB"}
    GET  /v1/avatars                      -> {"avatars": [...], "avatar": shown, ...}
    POST /v1/avatar     {"name": "grace"} -> {"ok": true, "avatar": "grace", "state": ...}
    GET  /v1/audio  (WebSocket)           -> streamed PCM and TTS timings (.audio_ws)
    GET  /v1/obs-url                      -> {"url": the browser source page, "width",
                                              "height": the frame size} (--sink obs)
    GET  /obs?k=PAGE_TOKEN, /obs/ws       -> that page and its frames (.page)

Connections are bounded so that no local process can hurt the stream: at most
``MAX_CONNECTIONS`` open at once (``MAX_PER_CLIENT`` from one address; more are answered
503 and closed at once), each must deliver a whole request within ``REQUEST_TIMEOUT_S``
of opening or of its previous reply (a reaper shuts it otherwise), and running out of
file descriptors pauses accepting instead of spinning. Problems are one log line per
kind, rate-limited; the render, capture and voice threads never wait on this server.
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import http.client
import ipaddress
import json
import logging
import os
import secrets
import socket
import stat
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import platformdirs

from engine import jsonfile
from engine.errors import EngineError

from ..errors import DeviceError
from ..problems import Problems

log = logging.getLogger(__name__)

APP = "avatar-vcam"
RUNTIME_ENV = "AVATAR_VCAM_RUNTIME_DIR"
CONTROL_FILE = "control.json"
NOT_RUNNING = "no avatar-vcam daemon is running; start one with `avatar-vcam --source mic`"
RUNTIME_FIX = (f"set XDG_RUNTIME_DIR to a private folder of yours (mode 0700), or {RUNTIME_ENV} "
               "to a folder for control.json")
MAX_BODY = 64 * 1024
MAX_BODY_DEPTH = 8  # {"name": "..."} is 1 deep
MAX_RUNTIME_FILE = 64 * 1024  # control.json is ~150 bytes
MAX_CONNECTIONS = 32  # open at once, all clients together (each holds a thread)
MAX_PER_CLIENT = 8  # open at once from one address
REQUEST_TIMEOUT_S = 5.0  # a whole request (line, headers, body) after open or last reply
ACCEPT_PAUSE_S = 0.25  # out of file descriptors: no accept() for this long
_OUT_OF_FDS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_BUSY_BODY = b'{"error": "the control API has too many open connections; try again soon"}'
_BUSY_REPLY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
               % (len(_BUSY_BODY), _BUSY_BODY))


class ControlError(DeviceError):
    """The control API cannot be served or reached, or it refused a request."""


class Target(Protocol):
    """What the control API drives (the daemon)."""

    def set_expression(self, name: str) -> None: ...  # KeyError for an unknown name
    def expressions(self) -> list[str]: ...
    def status(self) -> dict[str, Any]: ...


def control_dir() -> Path:
    """The folder holding control.json (``AVATAR_VCAM_RUNTIME_DIR`` overrides).

    ControlError when it exists but is not private to this user (see :func:`check_private`).
    """
    env = os.environ.get(RUNTIME_ENV)
    if env:
        folder = Path(env).expanduser()
    else:
        try:
            with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
                warnings.simplefilter("ignore")
                folder = platformdirs.user_runtime_path(APP)
        except OSError as e:  # e.g. /tmp/runtime-<uid> belongs to another user
            raise ControlError(f"no usable runtime folder for the control API "
                               f"({_one_line(e)}); {RUNTIME_FIX}") from None
    check_private(folder)
    return folder


def check_private(folder: Path) -> None:
    """ControlError if ``folder`` exists and another user owns it or may write into it.

    control.json there holds the token and names the port clients send it to: a folder
    another user controls would let them read the token or plant a fake daemon's file.
    A folder that does not exist yet is created 0700 by the daemon (and checked again).
    """
    try:
        st = folder.stat()
    except (FileNotFoundError, NotADirectoryError):  # 'not a folder' is told where it is used
        return
    except OSError as e:
        raise ControlError(f"cannot use {folder} for control.json ({_one_line(e)}); "
                           f"{RUNTIME_FIX}") from None
    if not stat.S_ISDIR(st.st_mode):
        return  # reported where control.json is read or written ('not a folder')
    uid = os.geteuid()
    if st.st_uid != uid:
        raise ControlError(f"runtime folder {folder} belongs to uid {st.st_uid}, not to you "
                           f"(uid {uid}): another user could read the control token or fake "
                           f"the daemon; {RUNTIME_FIX}")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ControlError(f"runtime folder {folder} is writable by other users (mode "
                           f"{stat.S_IMODE(st.st_mode):04o}), so they could fake the daemon; "
                           f"make it private with `chmod 700 {folder}`, or {RUNTIME_FIX}")


def _one_line(e: BaseException) -> str:
    text = (e.strerror if isinstance(e, OSError) else None) or str(e) or type(e).__name__
    return " ".join(text.split())


def _read_runtime_file(path: Path) -> dict[str, Any]:
    """control.json as a dict (OSError, or ValueError for content that is not one)."""
    info = jsonfile.read(path, max_bytes=MAX_RUNTIME_FILE, max_depth=2)
    if not isinstance(info, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return info


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _error_text(e: BaseException) -> str:
    if isinstance(e, KeyError) and e.args:
        return str(e.args[0])
    return str(e) or type(e).__name__


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 5.0  # a client that sends nothing cannot hold a thread forever

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("control %s %s", self.address_string(), format % args)

    def handle(self) -> None:
        """Requests until the connection closes; each next one is due within
        ``REQUEST_TIMEOUT_S`` of the previous reply (an idle keep-alive is reaped)."""
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection:
            self.server.expect_request(self.connection)
            self.handle_one_request()

    def parse_request(self) -> bool:
        self._body_consumed = False
        ok = super().parse_request()
        if ok and not self._body_unread():  # the whole request is in: no deadline while
            self.server.request_read(self.connection)  # it is served (a body: once read)
        return ok

    def _reply(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        if self._body_unread():
            # an early reply (401, 403, 404, bad length...) leaves the request body in the
            # stream, where it would be read as the next request: end the connection
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def _body_unread(self) -> bool:
        if getattr(self, "_body_consumed", False):
            return False
        return bool(self.headers.get("Transfer-Encoding")
                    or self.headers.get("Content-Length", "0").strip() not in ("", "0"))

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            self._reply(401, {"error": "missing token (Authorization: Bearer <token>)"})
            return False
        if not hmac.compare_digest(token.strip().encode(), self.server.token.encode()):
            self._reply(403, {"error": "wrong token"})
            return False
        return True

    def _body(self) -> dict[str, Any] | None:
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            n = -1
        if self.headers.get("Transfer-Encoding"):
            self._reply(411, {"error": "send the body with a Content-Length"})
            return None
        if not 0 <= n <= MAX_BODY:
            self._reply(400, {"error": "bad Content-Length"})
            return None
        raw = self.rfile.read(n)
        self._body_consumed = True
        self.server.request_read(self.connection)
        try:
            body = jsonfile.loads(raw or b"{}", max_bytes=MAX_BODY, max_depth=MAX_BODY_DEPTH)
        except jsonfile.JsonError as e:
            self._reply(400, {"error": f"body is {e}; send {{\"name\": \"<name>\"}}"})
            return None
        if not isinstance(body, dict):
            self._reply(400, {"error": "body must be a JSON object"})
            return None
        return body

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._body_consumed = False
        from . import page

        if page.handles(self.path):  # the browser source: its own token (.page)
            page.serve(self)
            return
        if not self._authorized():
            return
        target = self.server.target
        if self.path == "/v1/status":
            self._call(lambda: {**target.status(), "pid": os.getpid()})
        elif self.path == "/v1/expressions":
            self._call(lambda: {"expressions": list(target.expressions()),
                                "expression": target.status().get("expression")})
        elif self.path == "/v1/avatars":  # live avatar switching (..live.avatar_switch)
            self._call(lambda: _switcher(target).listing())
        elif self.path == "/v1/obs-url":  # the browser source's URL (--sink obs)
            self._call(lambda: page.url_of(self.server))
        elif self.path.partition("?")[0] == "/v1/audio":  # WebSocket: PCM and TTS timings
            from .audio_ws import serve_audio

            serve_audio(self)
        else:
            self._reply(404, {"error": f"no such endpoint: GET {self.path}"})

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        self._body_consumed = False
        if not self._authorized():
            return
        body = self._body()
        if body is None:
            return
        name = body.get("name")
        if self.path not in ("/v1/expression", "/v1/scene", "/v1/avatar"):
            self._reply(404, {"error": f"no such endpoint: POST {self.path}"})
            return
        if not isinstance(name, str) or not name:
            self._reply(400, {"error": 'body must be {"name": "<name>"}'})
            return
        target = self.server.target
        if self.path == "/v1/avatar":
            self._call(lambda: _switcher(target).request(name))
            return
        if self.path == "/v1/expression":
            self._call(lambda: (target.set_expression(name),
                                {"ok": True, "expression": name})[1])
            return
        set_scene = getattr(target, "set_scene", None)
        if set_scene is None:
            self._reply(501, {"error": "OBS is not configured; start the daemon with "
                                       "--obs ws://127.0.0.1:4455"})
            return
        self._call(lambda: (set_scene(name), {"ok": True, "scene": name})[1])

    def _call(self, fn: Any) -> None:
        try:
            body = fn()
        except KeyError as e:
            self._reply(404, {"error": _error_text(e)})
        except (EngineError, ValueError) as e:
            self._reply(409, {"error": _error_text(e)})
        except Exception as e:  # the daemon keeps running whatever a request does
            self.server.problems.report(f"request {type(e).__name__}",
                                        f"control API: {self.command} {self.path} failed: "
                                        f"{type(e).__name__}: {e}", exc=e)
            self._reply(500, {"error": f"{type(e).__name__}: {e}"})
        else:
            self._reply(200, body)


def _switcher(target: Any) -> Any:
    """The target's avatar switcher; ValueError (409) when this run has none."""
    switcher = getattr(target, "switcher", None)
    if switcher is None:
        raise ValueError("this run cannot switch avatars")
    return switcher


@dataclass
class _Conn:
    """An open connection: who it is from, and by when its next request must be in."""

    host: str
    deadline: float | None


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer with a bound on connections (and so on threads), deadlines for
    requests enforced by a reaper in the serving thread, one-line errors and a pause in
    accepting while file descriptors run out."""

    daemon_threads = True
    block_on_close = False
    # a restarted daemon takes its port back at once (Linux: only over TIME_WAIT leftovers
    # of the browser page's connections, never beside a live listener)
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr: tuple[str, int], target: Target, token: str) -> None:
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.target = target
        self.token = token
        self.problems = Problems(log)
        self._conns: dict[socket.socket, _Conn] = {}
        self._conns_lock = threading.Lock()
        super().__init__(addr, _Handler)

    # -- accepting -------------------------------------------------------------------------
    def get_request(self) -> tuple[socket.socket, Any]:
        try:
            return super().get_request()
        except OSError as e:
            if e.errno in _OUT_OF_FDS:  # the listening socket stays readable: without a
                self.problems.report("accept", f"control API: cannot accept a connection "
                                     f"({_one_line(e)}); pausing new connections")
                time.sleep(ACCEPT_PAUSE_S)  # pause, serve_forever would spin on it
            raise  # socketserver drops the attempt

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """Admit the connection unless the total or this address's limit is reached."""
        host = str(client_address[0])
        with self._conns_lock:
            total = len(self._conns)
            mine = sum(1 for c in self._conns.values() if c.host == host)
            if total < MAX_CONNECTIONS and mine < MAX_PER_CLIENT:
                self._conns[request] = _Conn(host, time.monotonic() + REQUEST_TIMEOUT_S)
                return True
        which = (f"{MAX_PER_CLIENT} from {host}" if mine >= MAX_PER_CLIENT
                 else f"{MAX_CONNECTIONS} in all")
        self.problems.report("refused", f"control API: too many open connections ({which}); "
                             "refusing new ones until some close")
        with contextlib.suppress(OSError):
            request.send(_BUSY_REPLY, getattr(socket, "MSG_DONTWAIT", 0))
        return False  # socketserver closes it

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.pop(request, None)
        super().shutdown_request(request)

    # -- deadlines -------------------------------------------------------------------------
    def expect_request(self, conn: socket.socket) -> None:
        """The next request on ``conn`` must be in within ``REQUEST_TIMEOUT_S``."""
        self._set_deadline(conn, time.monotonic() + REQUEST_TIMEOUT_S)

    def request_read(self, conn: socket.socket) -> None:
        """The request on ``conn`` is in: no deadline while it is served (or upgraded)."""
        self._set_deadline(conn, None)

    def _set_deadline(self, conn: socket.socket, deadline: float | None) -> None:
        with self._conns_lock:
            c = self._conns.get(conn)
            if c is not None:
                c.deadline = deadline

    def service_actions(self) -> None:
        """Shut connections whose request is overdue (their thread then reads EOF)."""
        now = time.monotonic()
        with self._conns_lock:
            late = [s for s, c in self._conns.items()
                    if c.deadline is not None and c.deadline < now]
            for s in late:
                self._conns[s].deadline = None
        for s in late:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        if late:
            log.debug("control API: closed %d connection(s) with no request within %g s",
                      len(late), REQUEST_TIMEOUT_S)

    @property
    def open_connections(self) -> int:
        with self._conns_lock:
            return len(self._conns)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line per kind of problem (a client that vanished is not one), no traceback."""
        e = sys.exc_info()[1]
        if e is None or isinstance(e, (ConnectionError, TimeoutError)):
            log.debug("control API: connection from %s ended: %r", client_address, e)
            return
        self.problems.report(f"connection {type(e).__name__}",
                             f"control API: a connection failed ({type(e).__name__}: "
                             f"{_one_line(e)})", exc=e)


class ControlServer:
    """Serves the control API for ``target`` on a loopback address in a thread."""

    def __init__(self, target: Target, host: str = "127.0.0.1", port: int = 0,
                 runtime_dir: Path | str | None = None) -> None:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ControlError(f"the control API only binds a loopback address, not {host!r}")
        self.target = target
        self.host = host
        self.requested_port = port
        self.dir = Path(runtime_dir) if runtime_dir is not None else None
        self._path: Path | None = None
        self.token = secrets.token_urlsafe(32)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> Path:
        """The runtime file this server writes (ControlError if there is no runtime folder)."""
        if self._path is None:
            self._path = (self.dir or control_dir()) / CONTROL_FILE
        return self._path

    @property
    def port(self) -> int:
        if self._server is None:
            raise ControlError("control server is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> ControlServer:
        """Bind, write control.json (0600) and serve in a daemon thread."""
        path = self.path  # resolved once: ControlError here when there is no runtime folder
        check_private(path.parent)
        self._refuse_second_daemon()
        try:
            self._server = _Server((self.host, self.requested_port), self.target, self.token)
        except OSError as e:
            raise ControlError(f"cannot serve the control API on {self.host}:"
                               f"{self.requested_port}: {e.strerror or e}; choose another "
                               "--control-port (0: any free one) or --no-control") from None
        try:
            self._write_runtime_file()
        except ControlError:
            self._server.server_close()
            self._server = None
            raise
        except OSError as e:
            self._server.server_close()
            self._server = None
            raise ControlError(f"cannot write {path}: {_one_line(e)}; {RUNTIME_FIX}, "
                               "or run with --no-control") from None
        self._thread = threading.Thread(target=self._server.serve_forever, name="control-api",
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        log.info("control API on %s (token in %s)", self.url, self.path)
        return self

    def close(self) -> None:
        """Stop serving and remove control.json if it is still ours."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        with contextlib.suppress(OSError, ValueError):
            info = _read_runtime_file(self.path)
            if info.get("token") == self.token:
                self.path.unlink()

    def __enter__(self) -> ControlServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _refuse_second_daemon(self) -> None:
        refuse_second_daemon(self.path.parent)

    def _write_runtime_file(self) -> None:
        folder = self.path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        check_private(folder)  # it may have been made by someone else since control_dir()
        data = json.dumps({"port": self.port, "token": self.token, "pid": os.getpid(),
                           "host": self.host}).encode()
        tmp = folder / f".{CONTROL_FILE}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)


def refuse_second_daemon(runtime_dir: Path | str | None = None) -> None:
    """ControlError if another live daemon's control.json is in the runtime folder.

    Cheap (one file read, one loopback connect): the daemon calls it before it loads the
    engine or opens a device, so a second daemon says so instead of 'camera busy'.
    """
    path = Path(runtime_dir or control_dir()) / CONTROL_FILE
    try:
        info = _read_runtime_file(path)
        pid, port = int(info["pid"]), int(info["port"])
    except NotADirectoryError:  # the daemon could not write control.json there either
        raise ControlError(f"cannot use {path.parent} for control.json: it is not a folder; "
                           f"{RUNTIME_FIX}, or run with --no-control") from None
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return
    if pid == os.getpid() or not _pid_alive(pid):
        return
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        raise ControlError(f"another avatar-vcam daemon is running (pid {pid}, "
                           f"{path}); stop it first, or run this one with "
                           "--no-control")


class ControlClient:
    """Talks to a running daemon's control API."""

    def __init__(self, port: int, token: str, host: str = "127.0.0.1",
                 timeout: float = 5.0) -> None:
        self.host, self.port, self.token, self.timeout = host, port, token, timeout

    @classmethod
    def from_runtime_file(cls, runtime_dir: Path | str | None = None,
                          timeout: float = 5.0) -> ControlClient:
        """Client for the daemon that wrote control.json; ControlError if there is none."""
        path = Path(runtime_dir or control_dir()) / CONTROL_FILE
        try:
            info = _read_runtime_file(path)
            port, token, pid = int(info["port"]), str(info["token"]), int(info["pid"])
        except FileNotFoundError:
            raise ControlError(NOT_RUNNING) from None
        except PermissionError:
            raise ControlError(f"cannot read {path}: permission denied (the daemon runs as "
                               f"another user?)") from None
        except NotADirectoryError:
            raise ControlError(f"cannot read {path}: {path.parent} is not a folder; "
                               f"{RUNTIME_FIX} (the one the daemon uses)") from None
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            raise ControlError(f"{path} is unreadable; {NOT_RUNNING}") from None
        if not _pid_alive(pid):
            raise ControlError(NOT_RUNNING)
        return cls(port, token, host=str(info.get("host") or "127.0.0.1"), timeout=timeout)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None,
                token: str | None = None) -> dict[str, Any]:
        """One JSON request; ControlError with the daemon's one-line message on failure."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        headers = {"Authorization": f"Bearer {self.token if token is None else token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except ConnectionRefusedError:
            raise ControlError(NOT_RUNNING) from None
        except TimeoutError:
            raise ControlError(f"the avatar-vcam daemon did not answer within "
                               f"{self.timeout:g} s") from None
        except http.client.HTTPException:  # before OSError: RemoteDisconnected is both
            raise ControlError(self._not_a_daemon()) from None
        except OSError as e:
            raise ControlError(f"cannot reach the avatar-vcam daemon: {_one_line(e)}") from None
        finally:
            conn.close()
        try:
            reply = jsonfile.loads(raw or b"{}")
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            raise ControlError(self._not_a_daemon(f" (HTTP {resp.status}, not the control API)"))
        if resp.status in (401, 403):
            raise ControlError(f"the daemon refused the token ({reply.get('error')}); "
                               f"restart the daemon")
        if resp.status >= 400:
            raise ControlError(str(reply.get("error") or f"HTTP {resp.status}"))
        return reply

    def _not_a_daemon(self, detail: str = "") -> str:
        return (f"no avatar-vcam daemon answers on {self.host}:{self.port}{detail}; is it "
                f"running? (control.json may be left from one that stopped: start the daemon "
                f"again)")

    def status(self) -> dict[str, Any]:
        return self.request("GET", "/v1/status")

    def expressions(self) -> dict[str, Any]:
        """{"expressions": [...], "expression": current}."""
        return self.request("GET", "/v1/expressions")

    def set_expression(self, name: str) -> dict[str, Any]:
        return self.request("POST", "/v1/expression", {"name": name})

    def set_scene(self, name: str) -> dict[str, Any]:
        return self.request("POST", "/v1/scene", {"name": name})

    def avatars(self) -> dict[str, Any]:
        """{"avatars": [...], "avatar": shown, "pending", "state", "last_switch"...}."""
        return self.request("GET", "/v1/avatars")

    def use_avatar(self, name: str) -> dict[str, Any]:
        """Ask the daemon to switch to avatar ``name`` (it answers before the switch)."""
        return self.request("POST", "/v1/avatar", {"name": name})


class EngineTarget:
    """The daemon's control target: an Engine, plus an optional OBS controller.

    ``extra_status`` adds run-loop figures (frames, fps, source...) to ``status()``.
    """

    def __init__(self, engine: Any, obs: Any = None, extra_status: Any = None) -> None:
        self.engine = engine
        self.obs = obs
        self.extra_status = extra_status
        self.switcher: Any = None  # ..live.avatar_switch.AvatarSwitcher, set by the daemon

    def set_expression(self, name: str) -> None:
        self.engine.set_expression(name)

    def expressions(self) -> list[str]:
        return list(self.engine.expressions)

    def status(self) -> dict[str, Any]:
        avatar = getattr(self.engine, "avatar", None)
        out: dict[str, Any] = {"avatar": getattr(avatar, "name", None),
                               "expression": self.engine.expression,
                               "expressions": self.expressions(),
                               "obs": self.obs.status() if self.obs is not None else None}
        if self.switcher is not None:
            out["avatar_switch"] = self.switcher.status()
        if self.extra_status is not None:
            out.update(self.extra_status())
        return out

    def set_scene(self, name: str) -> None:
        if self.obs is None:
            raise ControlError("OBS is not configured; start the daemon with "
                               "--obs ws://127.0.0.1:4455")
        self.obs.set_scene(name)
