"""What the C ABI does, in Python: the calls of ``avatar_engine.h`` on numpy arrays.

:class:`CEngine` holds the one engine of the process and returns the header's status
codes; :mod:`engine.capi.boot` only turns C pointers into arrays and calls it. Tests can
drive it without a compiler.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..errors import AvatarError
from ..framing import Framer, Framing, parse_size

if TYPE_CHECKING:
    from .. import Avatar, Engine
    from ..session import Session

SAMPLE_RATE = 16000
FPS = 25
MAX_QUEUED_S = 600.0

OK = 0
NO_FRAME = 1
E_ARGUMENT = -1
E_STATE = -2
E_AVATAR = -3
E_BACKLOG = -4
E_PYTHON = -5
E_INTERNAL = -6

#: the header's names of the codes above (tests check the header agrees)
CODES = {"OK": OK, "NO_FRAME": NO_FRAME, "E_ARGUMENT": E_ARGUMENT, "E_STATE": E_STATE,
         "E_AVATAR": E_AVATAR, "E_BACKLOG": E_BACKLOG, "E_PYTHON": E_PYTHON,
         "E_INTERNAL": E_INTERNAL}


class CallError(Exception):
    """A failed call: ``code`` for the caller, the message for ``last_error``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type when it has none)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class CEngine:
    """The process's engine behind the C calls; every method is serialised by one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.avatar: Avatar | None = None
        self.engine: Engine | None = None  # fresh (no audio yet) or the running session's
        self.session: Session | None = None
        self._used = False  # self.engine has had a session
        self._framers: dict[tuple[int, int], Framer] = {}

    # ------------------------------------------------------------------ calls
    def init(self, avatar_root: str) -> None:
        """Load the avatar (folder or name) and a fresh engine for it."""
        from .. import Engine, EngineConfig

        with self._lock:
            if self.session is not None:
                raise CallError(E_STATE, "a session is running: stop_session() before "
                                         "init_avatar_engine()")
            if not avatar_root.strip():
                raise CallError(E_ARGUMENT, "avatar_root is empty: give an avatar folder "
                                            "or name")
            try:
                engine = Engine(avatar_root, EngineConfig(fps=FPS))  # folder or name
            except AvatarError as exc:
                raise CallError(E_AVATAR, one_line(exc)) from exc
            self.avatar, self.engine, self._used = engine.avatar, engine, False
            self._framers.clear()

    def start(self) -> None:
        """Open a session on a fresh engine (the loaded one, or a new one after a session)."""
        from .. import Engine
        from ..session import Session

        with self._lock:
            if self.engine is None:
                raise CallError(E_STATE, "no avatar: call init_avatar_engine() first")
            if self.session is not None:
                raise CallError(E_STATE, "a session is already running: stop_session() "
                                         "first")
            if self._used:  # motion state of the last session: a new engine, same renderer
                old = self.engine
                self.engine = Engine(self.avatar, old.config, renderer=old.renderer)
                old.close()
            self._used = True
            self.session = Session(self.engine, SAMPLE_RATE, MAX_QUEUED_S)

    def push(self, pcm: np.ndarray) -> None:
        """Append mono float32 samples at SAMPLE_RATE to the session."""
        with self._lock:
            session = self._session()
            try:
                session.push(pcm)
            except ValueError as exc:
                raise CallError(E_BACKLOG, one_line(exc)) from exc

    def pull(self, out: np.ndarray) -> int:
        """Write the next frame into ``out`` ((height, width, 4) uint8): OK or NO_FRAME."""
        h, w = out.shape[:2]
        try:
            parse_size((w, h))
        except ValueError as exc:
            raise CallError(E_ARGUMENT, one_line(exc)) from exc
        with self._lock:
            frame = self._session().pull()
            if frame is None:
                return NO_FRAME
            out[..., :3] = self._fit(frame.image, w, h)
            out[..., 3] = 255
            return OK

    def stop(self) -> None:
        """End the session (nothing to do when none runs)."""
        with self._lock:
            self.session = None

    # ------------------------------------------------------------------ helpers
    def _session(self) -> Session:
        if self.session is None:
            what = "no avatar: call init_avatar_engine()" if self.engine is None else \
                "no session: call start_session()"
            raise CallError(E_STATE, f"{what} first")
        return self.session

    def _fit(self, img: np.ndarray, w: int, h: int) -> np.ndarray:
        """The frame at w x h: as it is, scaled (squares) or composed (other shapes)."""
        if img.shape[:2] == (h, w):
            return img
        if w == h:
            return np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR))
        framer = self._framers.get((w, h))
        if framer is None:
            if len(self._framers) >= 4:
                self._framers.clear()
            framer = self._framers[(w, h)] = Framer(self.avatar, Framing(w, h))
        return framer.compose(img[None])[0]


def status(fn: Callable[..., int | None], *args: object) -> tuple[int, str]:
    """Run ``fn(*args)``: (code, "") on success, else (negative code, one-line message)."""
    try:
        result = fn(*args)
    except CallError as exc:
        return exc.code, str(exc)
    except MemoryError:
        return E_INTERNAL, "out of memory"
    except Exception as exc:  # every failure becomes a code, never a crash of the caller
        return E_INTERNAL, f"internal error: {type(exc).__name__}: {one_line(exc)}"
    return (result if isinstance(result, int) else OK), ""
