"""Live avatar switching for the daemon: ``avatar-vcam avatar use NAME``, OBS scenes, hotkeys.

A request names an avatar (see ``avatar-vcam avatars``); a worker thread, at a lower CPU
priority than the render thread, loads and prepares it (:func:`engine.switch.prepare_avatar`)
and hands it to the engine, which takes it at its next frame boundary: the camera and every
other sink go on getting one frame per tick, the old face up to the switch and the new one
from it, and the voice and its delay D are not touched.

With a renderer on the CPU the preparing runs in a helper process
(:mod:`.prepare_process`, started with the daemon at niceness 10), so its many small numpy
steps never hold this process's GIL while frames are rendered.

A request while another is loading **replaces** it: the newest request wins (the one being
loaded finishes, is kept in the small cache, and the newest is loaded next). Asking for the
avatar already shown cancels a pending switch. The last few avatars prepared are cached, so
switching back (scene A -> B -> A) is instant.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.switch import PreparedAvatar

log = logging.getLogger(__name__)

CACHE = 3  # prepared avatars kept (the one shown is not counted)
WORKER_NICE = 10  # the worker's niceness: the render thread always gets the CPU first
# While preparing (mostly small numpy steps that hold the GIL), Python hands the GIL over
# every millisecond instead of every 5: the render and presenter threads wait less for it.
PREPARE_SWITCH_INTERVAL_S = 0.001


class AvatarSwitchError(KeyError):
    """An avatar that cannot be used (unknown name); the message lists the available ones."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown avatar"


def available_avatars() -> dict[str, Path]:
    """``{name: folder}`` of the avatars a daemon can switch to (user ones shadow bundled)."""
    from avatars import available

    return {n: p for n, (p, _kind) in sorted(available().items())}


class AvatarSwitcher:
    """Prepares the next avatar off the render thread and hands it to ``engine``.

    ``available``: where names are looked up (default: the user's and the bundled
    avatars, read afresh at each request so a newly created avatar can be used at once).
    ``notify``: one line per finished or failed switch (the daemon's console).
    ``helper``: with a renderer on the CPU, prepare in a helper process
    (:mod:`.prepare_process`; the GIL stays free for the render thread), else on the
    worker thread with a short GIL switch interval.
    """

    def __init__(self, engine: Any, available: Callable[[], dict[str, Path]] | None = None,
                 notify: Callable[[str], None] | None = None, cache: int = CACHE,
                 helper: bool = True) -> None:
        self.engine = engine
        self.available = available or available_avatars
        self.notify = notify or (lambda msg: log.info("%s", msg))
        self.cache_size = cache
        self._cache: OrderedDict[tuple[str, float], PreparedAvatar] = OrderedDict()
        self._cond = threading.Condition()
        self._wanted: str | None = None  # newest request not yet handed to the engine
        self._requested_at: float | None = None
        self._loading: str | None = None
        self._handed: tuple[str, PreparedAvatar, float] | None = None  # given, maybe not shown
        self._stop = False
        self.switches = 0
        self.replaced = 0
        self.last_error: str | None = None
        self.last_switch: dict[str, Any] | None = None
        self._thread: threading.Thread | None = None
        self._helper: Any = None
        device = str(getattr(engine.renderer, "device", "cpu"))
        if helper and not device.startswith("cuda"):
            from .prepare_process import PrepareProcess

            self._helper = PrepareProcess(engine.config, engine.renderer.name)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> AvatarSwitcher:
        self._thread = threading.Thread(target=self._run, name="avatar-switch", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(10.0)
        if self._helper is not None:
            self._helper.close()

    # -- requests --------------------------------------------------------------------------
    @property
    def current(self) -> str:
        return str(getattr(self.engine.avatar, "name", ""))

    def names(self) -> list[str]:
        return list(self.available())

    def check(self, name: str) -> Path:
        """The folder of avatar ``name``; :class:`AvatarSwitchError` listing the available
        ones when there is no such avatar."""
        found = self.available()
        if name not in found:
            raise AvatarSwitchError(f"no avatar {name!r}; available: "
                                    f"{', '.join(found) or '(none)'} (create one with "
                                    "`avatar-vcam avatar create PHOTO --name NAME`)")
        return found[name]

    def request(self, name: str) -> dict[str, Any]:
        """Switch to avatar ``name`` as soon as it is prepared (returns at once).

        The reply says ``state``: "current" (already shown, nothing to do), "loading" or
        "switching"; ``replaced``: the pending request this one replaced, if any.
        """
        self.check(name)
        with self._cond:
            handed = self._handed is not None and self._handed[1].applied_at is None
            newest = self._wanted or self._loading
            if name == self.current and newest is None and not handed:
                return {"ok": True, "avatar": name, "state": "current", "replaced": None}
            if name == newest:
                return {"ok": True, "avatar": name, "state": "loading", "replaced": None}
            replaced = newest
            if replaced is not None:
                self.replaced += 1
            self._wanted = name
            self._requested_at = time.monotonic()
            self.last_error = None
            self._cond.notify_all()
        log.info("avatar %s requested%s", name, f" (replaces {replaced})" if replaced else "")
        return {"ok": True, "avatar": name, "state": "loading", "replaced": replaced}

    def listing(self) -> dict[str, Any]:
        """GET /v1/avatars: the names that can be used, and :meth:`status`."""
        return {"avatars": self.names(), **self.status()}

    def status(self) -> dict[str, Any]:
        """For /v1/status and /v1/avatars: shown, pending, state, last switch, last error."""
        with self._cond:
            self._note_applied()
            handed = self._handed
            pending = self._wanted or self._loading
            if pending is None and handed is not None and handed[1].applied_at is None:
                pending = handed[0]
            state = ("loading" if (self._wanted or self._loading) else
                     "switching" if pending else "idle")
            return {"avatar": self.current, "pending": pending, "state": state,
                    "switches": self.switches, "replaced": self.replaced,
                    "last_switch": self.last_switch, "error": self.last_error}

    # -- worker ----------------------------------------------------------------------------
    def _run(self) -> None:
        _lower_priority()
        if self._helper is not None:
            try:
                self._helper.start()
            except OSError as e:  # prepared on this thread instead
                log.warning("avatar switch: no helper process (%s)", e)
                self._helper = None
        while True:
            with self._cond:
                while not self._stop and self._wanted is None:
                    self._cond.wait(0.05)
                    self._note_applied()
                if self._stop:
                    return
                name, asked = self._wanted, self._requested_at
                self._wanted, self._loading = None, name
            try:
                prepared = self._prepare(name)
            except Exception as e:  # a broken package: one line, the daemon goes on
                msg = f"cannot switch to avatar {name!r}: {_one_line(e)}"
                with self._cond:
                    self._loading = None
                    if self._wanted is None:
                        self.last_error = msg
                self.notify(msg)
                continue
            with self._cond:
                self._loading = None
                if self._wanted is not None or self._stop:
                    continue  # replaced meanwhile: the newest request is prepared next
                if name == self.current and self.engine.pending_avatar is None:
                    continue  # asked for what is shown (a switch back came first)
                self.engine.use_avatar(prepared)
                self._handed = (name, prepared, asked or time.monotonic())

    def _prepare(self, name: str) -> PreparedAvatar:
        folder = self.check(name)
        key = (name, _stamp(folder))
        hit = self._cache.pop(key, None)
        if hit is not None:
            hit.applied_at = hit.applied_pts = None
            prepared = hit
        elif self._helper is not None:  # CPU renderer: in the helper process (no GIL here)
            matte = getattr(self.engine, "matte", None)
            prepared = self._helper.prepare(folder, None if matte is None else matte.overlay)
        else:
            old = sys.getswitchinterval()
            sys.setswitchinterval(min(old, PREPARE_SWITCH_INTERVAL_S))
            try:
                prepared = self.engine.prepare_avatar(folder)
            finally:
                sys.setswitchinterval(old)
        self._cache[key] = prepared
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return prepared

    def _note_applied(self) -> None:
        """Called with the lock held: record a handed avatar once the engine took it."""
        if self._handed is None:
            return
        name, prepared, asked = self._handed
        if prepared.applied_at is None:
            return
        self._handed = None
        self.switches += 1
        self.last_switch = {"avatar": name, "prepare_ms": round(1000 * prepared.prepare_s),
                            "switch_ms": round(1000 * (prepared.applied_at - asked)),
                            "at_pts": round(float(prepared.applied_pts or 0.0), 3)}
        self.notify(f"avatar {name} shown ({self.last_switch['switch_ms']} ms after the "
                    f"request; prepared in {self.last_switch['prepare_ms']} ms)")


def _stamp(folder: Path) -> float:
    """When the package last changed (a re-created avatar is prepared afresh)."""
    try:
        return max((folder / "avatar.json").stat().st_mtime, folder.stat().st_mtime)
    except OSError:
        return 0.0


def _one_line(e: BaseException) -> str:
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    return " ".join((text or type(e).__name__).split())


def _lower_priority() -> None:
    """Make this thread yield the CPU to the render thread (Linux: per-thread niceness)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)
    except (OSError, AttributeError) as e:
        log.debug("avatar switch worker keeps its priority: %s", e)
