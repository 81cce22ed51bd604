"""OBS controller: obs-websocket 5 through obsws-python, in its own thread.

- OBS scene -> expression: entering a mapped scene sets its expression, leaving restores
  the one before (unless someone changed it meanwhile).
- Avatar state -> OBS scene: ``talking_scene`` while speaking, ``idle_scene`` after
  ``hold_s`` of silence. Only switches while the program scene is one of those two, so a
  "BRB" or "Starting soon" scene is never taken away from the streamer.
- CustomEvent ``{"avatar-vcam": {"expression": NAME}}`` sets an expression (obs_scripts/).
- OBS scene -> avatar and CustomEvent ``{"avatar-vcam": {"avatar": NAME}}``: the target's
  ``use_avatar`` (live switch, see .obs_avatars).
- Survives OBS going away: keepalive ``GetVersion`` with a timeout (a frozen OBS counts as
  gone), reconnect with backoff capped at ``max_backoff_s``; ``status()`` tells the state.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import DeviceError

log = logging.getLogger(__name__)

EVENT_KEY = "avatar-vcam"


class ObsError(DeviceError):
    """OBS is unreachable or refused a request."""


_SECRET = re.compile(r"(password=)(?:'.*?'(?= subs=)|'[^']*'|\S+)")  # obsws' connect line


class _Quiet(logging.Handler):
    """Forwards obsws_python's records as one debug line each, without tracebacks, and
    without the password (obsws logs its connect parameters, password included)."""

    def emit(self, record: logging.LogRecord) -> None:
        log.debug("obsws: %s", _SECRET.sub(r"\1***", record.getMessage()))


def quiet_obsws_logger() -> None:
    """Stop obsws_python from printing a traceback for every failed request or connect."""
    lg = logging.getLogger("obsws_python")
    if not any(isinstance(h, _Quiet) for h in lg.handlers):
        lg.addHandler(_Quiet())
    lg.propagate = False


def describe(exc: BaseException, url: str, timeout: float) -> str:
    """One line for an obsws-python / websocket / socket failure."""
    from obsws_python.error import OBSSDKError, OBSSDKRequestError, OBSSDKTimeoutError
    from websocket import (
        WebSocketAddressException,
        WebSocketBadStatusException,
        WebSocketConnectionClosedException,
        WebSocketTimeoutException,
    )

    text = str(exc)
    if isinstance(exc, ConnectionRefusedError):
        return (f"OBS is not reachable at {url} (connection refused; is OBS running, with "
                f"Tools -> WebSocket Server Settings -> Enable WebSocket server on?)")
    if isinstance(exc, WebSocketAddressException):
        return f"OBS is not reachable at {url}: cannot resolve the host name"
    if isinstance(exc, (OBSSDKTimeoutError, WebSocketTimeoutException, TimeoutError)):
        return f"OBS at {url} did not answer within {timeout:g} s (frozen?)"
    if isinstance(exc, OBSSDKRequestError):
        return f"OBS refused {exc.req_name}: {text.split('With message: ')[-1]}"
    if isinstance(exc, OBSSDKError):
        if "no password" in text:
            return f"OBS at {url} wants a password: pass --obs-password-env VAR"
        if "identify" in text:
            return (f"OBS at {url} refused the password (check --obs-password-env and OBS's "
                    f"Tools -> WebSocket Server Settings)")
        return f"OBS at {url}: {text}"
    if isinstance(exc, WebSocketConnectionClosedException):
        return f"lost the connection to OBS at {url}"
    if isinstance(exc, WebSocketBadStatusException):
        return f"{url} is not an obs-websocket server ({text.splitlines()[0]})"
    if isinstance(exc, OSError):
        return f"OBS is not reachable at {url}: {exc.strerror or text}"
    return f"OBS at {url}: {type(exc).__name__}: {text}"


class _Lost(Exception):
    """The connection is no longer usable (message is the reason)."""


class SpeakingSwitch:
    """Which scene the avatar's speaking state asks for; hold time on the pts clock."""

    def __init__(self, talking: str | None, idle: str | None, hold_s: float) -> None:
        self.talking, self.idle, self.hold_s = talking, idle, hold_s
        self.state: str | None = None  # "talking" | "idle"
        self.last_voice: float | None = None
        self.wanted: str | None = None
        self.seq = 0  # bumps whenever ``wanted`` changes

    def update(self, speaking: bool, pts: float) -> bool:
        """Feed one frame's flag; True when the wanted scene changed."""
        if speaking:
            self.last_voice = pts
            new = "talking"
        elif self.state == "idle":
            return False
        elif self.last_voice is None or pts - self.last_voice >= self.hold_s:
            new = "idle"
        else:
            if pts < self.last_voice:  # the clock restarted (new source)
                self.last_voice = pts
            return False
        if new == self.state:
            return False
        self.state = new
        scene = self.talking if new == "talking" else self.idle
        if scene is None:
            return False
        self.wanted = scene
        self.seq += 1
        return True


class SceneExpressions:
    """OBS program scene -> expression, restoring the previous expression on leave."""

    def __init__(self, mapping: dict[str, str], set_expression: Callable[[str], None],
                 current_expression: Callable[[], str | None]) -> None:
        self.mapping = dict(mapping)
        self.set_expression = set_expression
        self.current_expression = current_expression
        self._restore: str | None = None
        self._applied: str | None = None
        self._lock = threading.Lock()

    def scene_changed(self, scene: str | None) -> None:
        with self._lock:
            expr = self.mapping.get(scene) if scene is not None else None
            if expr is not None:
                if self._applied is None:
                    self._restore = self.current_expression() or "neutral"
                self.set_expression(expr)
                self._applied = expr
            elif self._applied is not None:
                if self.current_expression() == self._applied and self._restore:
                    self.set_expression(self._restore)
                self._applied = self._restore = None


class ObsController:
    """Keeps a connection to OBS and applies the scene/expression rules.

    ``target`` needs ``set_expression(name)``, ``expressions()`` and ``status()`` (with an
    ``"expression"`` key). Call :meth:`on_speaking` once per rendered frame.
    """

    def __init__(self, url: str, password: str, target: Any,
                 scene_expressions: dict[str, str] | None = None,
                 talking_scene: str | None = None, idle_scene: str | None = None,
                 hold_s: float = 1.0, timeout: float = 2.0, *, keepalive_s: float = 1.0,
                 max_backoff_s: float = 1.0,
                 notify: Callable[[str], None] | None = None,
                 scene_avatars: dict[str, str] | None = None) -> None:
        from .settings import parse_ws_url

        self.url = url
        self.host, self.port = parse_ws_url(url)
        self.password = password or ""
        self.target = target
        self.timeout = timeout
        self.keepalive_s = keepalive_s
        self.max_backoff_s = max_backoff_s
        self.notify = notify or (lambda msg: log.warning("%s", msg))
        mapping = dict(scene_expressions or {})
        known = set(target.expressions())
        for scene, expr in mapping.items():
            if expr not in known:
                raise ObsError(f"scene {scene!r} maps to unknown expression {expr!r}; "
                               f"known: {', '.join(sorted(known))}")
        self.scenes = SceneExpressions(mapping, self._set_expression, self._expression)
        from .obs_avatars import SceneAvatars

        self.scene_avatars = SceneAvatars(scene_avatars or {}, self._use_avatar,
                                          self._avatar, self.notify)
        self.speaking = SpeakingSwitch(talking_scene, idle_scene, hold_s)
        self._speak_lock = threading.Lock()
        self._applied_seq = 0
        self._req: Any = None
        self._evc: Any = None
        self._req_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._exiting = threading.Event()
        self._thread: threading.Thread | None = None
        self._state = "connecting"
        self._error: str | None = None
        self._scene: str | None = None
        self._scene_list: list[str] = []
        self._version: str | None = None
        self._connects = 0
        self._since = time.monotonic()
        self.last_event_error: str | None = None
        quiet_obsws_logger()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> ObsController:
        self._thread = threading.Thread(target=self._run, name="obs-controller", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self.timeout + 2)
        self._drop()

    def __enter__(self) -> ObsController:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public API ------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._state == "connected"

    def status(self) -> dict[str, Any]:
        """State for ``avatar-vcam status``: connected, error, scene, version, reconnects."""
        return {"url": self.url, "connected": self.connected, "state": self._state,
                "error": self._error, "scene": self._scene, "obs_version": self._version,
                "connects": self._connects,
                "for_s": round(time.monotonic() - self._since, 1),
                "last_event_error": self.last_event_error}

    def on_speaking(self, flag: bool, pts: float) -> None:
        """The avatar's speaking flag for the frame at ``pts`` (cheap; never blocks)."""
        with self._speak_lock:
            changed = self.speaking.update(bool(flag), float(pts))
        if changed:
            self._wake.set()

    def set_scene(self, name: str) -> None:
        """Switch OBS's program scene now; ObsError with one line if it cannot."""
        from obsws_python.error import OBSSDKRequestError

        if not self._req_lock.acquire(timeout=self.timeout * 2):
            raise ObsError(f"OBS at {self.url} is busy (frozen?)")
        try:
            req = self._req
            if req is None or not self.connected:
                raise ObsError(f"not connected to OBS: {self._error or 'connecting'}")
            try:
                req.set_current_program_scene(name)
            except OBSSDKRequestError as e:
                if e.code == 600:
                    known = self._scenes_or_empty(req)
                    raise ObsError(f"OBS has no scene {name!r}; scenes: "
                                   f"{', '.join(known) or '(none)'}") from None
                raise ObsError(describe(e, self.url, self.timeout)) from None
            except Exception as e:
                self._broken(describe(e, self.url, self.timeout))
                raise ObsError(describe(e, self.url, self.timeout)) from None
            self._scene = name
        finally:
            self._req_lock.release()

    # -- target helpers --------------------------------------------------------------------
    def _expression(self) -> str | None:
        try:
            return self.target.status().get("expression")
        except Exception:  # a broken status() must not stop scene handling
            return getattr(self.target, "expression", None)

    def _set_expression(self, name: str) -> None:
        try:
            self.target.set_expression(name)
        except KeyError as e:
            self.last_event_error = str(e.args[0]) if e.args else f"unknown expression {name!r}"
            self.notify(f"OBS asked for {self.last_event_error}")

    def _avatar(self) -> str | None:
        switcher = getattr(self.target, "switcher", None)
        if switcher is None:
            return None
        st = switcher.status()
        return st.get("pending") or st.get("avatar")

    def _use_avatar(self, name: str) -> None:
        switcher = getattr(self.target, "switcher", None)
        if switcher is None:
            self.notify(f"OBS asked for avatar {name!r}, but this run cannot switch avatars")
            return
        switcher.request(name)

    # -- event handlers (run in obsws-python's event thread) ----------------------------------
    def on_current_program_scene_changed(self, data: Any) -> None:
        scene = getattr(data, "scene_name", None)
        self._scene = scene
        try:
            self.scenes.scene_changed(scene)
            self.scene_avatars.scene_changed(scene)
        except Exception as e:  # never let the event thread die
            log.warning("scene %r: %s", scene, e)
        self._wake.set()

    def on_custom_event(self, data: Any) -> None:
        payload = getattr(data, EVENT_KEY, None)
        if not isinstance(payload, dict):
            return
        avatar = payload.get("avatar")
        if isinstance(avatar, str) and avatar:
            try:
                self._use_avatar(avatar)
            except KeyError as e:
                self.last_event_error = str(e)
                self.notify(f"OBS asked for {self.last_event_error}")
            except Exception as e:
                log.warning("CustomEvent %r: %s", payload, e)
        expr = payload.get("expression")
        if isinstance(expr, str) and expr:
            try:
                self._set_expression(expr)
            except Exception as e:
                log.warning("CustomEvent %r: %s", payload, e)

    def on_exit_started(self, data: Any) -> None:
        self._exiting.set()
        self._wake.set()

    # -- connection loop -------------------------------------------------------------------
    def _set_state(self, state: str, error: str | None) -> None:
        changed = (state, error) != (self._state, self._error)
        if state != self._state:
            self._since = time.monotonic()
        self._state, self._error = state, error
        if not changed:
            return
        if state == "connected":
            self.notify(f"OBS connected: {self.url} (OBS {self._version}, scene "
                        f"{self._scene!r})")
        elif error:
            self.notify(f"{error}; retrying (the avatar keeps running)")

    def _broken(self, reason: str) -> None:
        self._error = reason
        self._exiting.set()
        self._wake.set()

    def _run(self) -> None:
        delay = 0.25
        while not self._stop.is_set():
            try:
                self._connect()
            except Exception as e:
                self._drop()
                self._set_state("disconnected", describe(e, self.url, self.timeout))
                self._stop.wait(delay)
                delay = min(delay * 2, self.max_backoff_s)
                continue
            delay = 0.25
            self._set_state("connected", None)
            try:
                self._serve()
                reason = None
            except _Lost as e:
                reason = str(e)
            except Exception as e:
                reason = describe(e, self.url, self.timeout)
            self._drop()
            if not self._stop.is_set():
                self._set_state("disconnected", reason or f"lost the connection to {self.url}")
                self._stop.wait(0.1)
        self._state = "closed"

    def _connect(self) -> None:
        import obsws_python as obsws

        self._exiting.clear()
        kw = {"host": self.host, "port": self.port, "password": self.password,
              "timeout": self.timeout}
        req = obsws.ReqClient(**kw)
        with self._req_lock:
            self._req = req
        version = req.get_version()
        self._version = version.obs_version
        self._scene_list = self._scenes_or_empty(req)
        self._warn_missing_scenes()
        self._evc = obsws.EventClient(**kw)
        self._evc.callback.register([self.on_current_program_scene_changed,
                                     self.on_custom_event, self.on_exit_started])
        scene = req.get_current_program_scene().current_program_scene_name
        self._scene = scene
        self._connects += 1
        self.scenes.scene_changed(scene)
        self.scene_avatars.scene_changed(scene)

    def _warn_missing_scenes(self) -> None:
        wanted = [*self.scenes.mapping, *self.scene_avatars.mapping, self.speaking.talking,
                  self.speaking.idle]
        for scene in dict.fromkeys(s for s in wanted if s):
            if self._scene_list and scene not in self._scene_list:
                self.notify(f"OBS has no scene {scene!r} (configured for avatar-vcam); "
                            f"scenes: {', '.join(self._scene_list)}")

    def _scenes_or_empty(self, req: Any) -> list[str]:
        try:
            return [s["sceneName"] for s in reversed(req.get_scene_list().scenes)]
        except Exception:
            return []

    def _serve(self) -> None:
        next_ping = time.monotonic() + self.keepalive_s
        while not self._stop.is_set():
            evc = self._evc
            if evc is None or not evc.worker.is_alive():
                raise _Lost(f"lost the connection to OBS at {self.url}")
            if self._exiting.is_set():
                raise _Lost(self._error or f"OBS at {self.url} is shutting down")
            self._apply_speaking()
            now = time.monotonic()
            if now >= next_ping:
                with self._req_lock:
                    self._req.get_version()
                next_ping = time.monotonic() + self.keepalive_s
            self._wake.wait(min(0.25, max(0.0, next_ping - time.monotonic())))
            self._wake.clear()

    def _apply_speaking(self) -> None:
        with self._speak_lock:
            seq, wanted = self.speaking.seq, self.speaking.wanted
        if seq == self._applied_seq or wanted is None:
            return
        self._applied_seq = seq
        auto = {self.speaking.talking, self.speaking.idle}
        if self._scene is not None and self._scene not in auto:
            return  # the streamer picked another scene (BRB...): leave it alone
        if wanted == self._scene:
            return
        from obsws_python.error import OBSSDKRequestError

        try:
            with self._req_lock:
                self._req.set_current_program_scene(wanted)
        except OBSSDKRequestError as e:  # e.g. no such scene: say so, stay connected
            self.notify(describe(e, self.url, self.timeout))
            return
        self._scene = wanted

    def _drop(self) -> None:
        """Close both clients without waiting on a frozen OBS."""
        evc, self._evc = self._evc, None
        with self._req_lock:
            req, self._req = self._req, None
        for client in (evc, req):
            if client is None:
                continue
            ws = client.base_client.ws
            try:
                ws.abort()  # wakes a thread blocked in recv
                ws.shutdown()
            except Exception as e:
                log.debug("closing obs client: %s", e)
        if evc is not None:
            evc.worker.join(1.0)
