"""WindowSink: a preview window (pygame/SDL)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

from engine.frames import AudioChunk, VideoFrame

from ..errors import DeviceError


def display_available() -> bool:
    """True when a window can be opened: on Linux, a Wayland socket or an X11 display
    whose local socket exists (a stale ``DISPLAY`` does not count)."""
    if not sys.platform.startswith("linux"):
        return True
    wayland = os.environ.get("WAYLAND_DISPLAY")
    if wayland and (Path(wayland).is_absolute() or
                    (Path(os.environ.get("XDG_RUNTIME_DIR", "/nonexistent")) / wayland).exists()):
        return True
    display = os.environ.get("DISPLAY", "")
    host, _, number = display.partition(":")
    if not display or not number:
        return False
    if host not in ("", "unix"):  # a remote display (ssh -X): only opening it will tell
        return True
    return Path(f"/tmp/.X11-unix/X{number.split('.')[0]}").exists()


class WindowSink:
    """Show frames in a window titled after the avatar; closing the window stops the run.

    SDL wants the window opened, drawn and its events read on one thread. With a voice
    output, frames come from the presenter thread, without one from the engine thread, so
    the window has a thread of its own: :meth:`send` hands it the newest frame and returns
    at once (a slow flip never holds up the caller), and the window keeps answering
    (moving, closing) between frames. macOS only lets the main thread own windows: there
    the caller draws, as it opened the window (untested here: no macOS machine).
    """

    name = "window"
    watched_live = True  # people watch it as it plays: file sources are paced
    own_thread = sys.platform != "darwin"

    def __init__(self, title: str = "avatar-vcam") -> None:
        self.title = title
        self.closed_by_user = False
        self._frame: VideoFrame | None = None
        self._wake = threading.Condition()
        self._stop = False
        self._opened = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._screen = None

    def open(self, width: int, height: int, fps: int) -> None:
        if not display_available():
            what = (f"DISPLAY={os.environ['DISPLAY']} does not answer"
                    if os.environ.get("DISPLAY") else "DISPLAY is not set")
            raise DeviceError(f"no display for the preview window ({what}); use "
                              "--sink file:out.mp4 or --sink vcam instead")
        if not self.own_thread:
            self._pg = self._open_display(width, height)
            return
        self._thread = threading.Thread(target=self._run, args=(width, height), daemon=True,
                                        name="avatar-vcam-window")
        self._thread.start()
        self._opened.wait()
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error

    def send(self, frame: VideoFrame) -> None:
        if not self.own_thread:
            self._draw(self._pg, frame)
            return
        if self._error is not None:
            raise self._error
        with self._wake:
            self._frame = frame
            self._wake.notify()

    def audio(self, chunk: AudioChunk) -> None:
        pass

    def close(self) -> None:
        """Show the last frame sent, then close the window."""
        if not self.own_thread:
            if self._screen is not None:
                self._pg.display.quit()
                self._screen = None
            return
        thread, self._thread = self._thread, None
        if thread is None:
            return
        with self._wake:
            self._stop = True
            self._wake.notify()
        thread.join(5.0)

    # -- the window's thread ---------------------------------------------------------------
    def _run(self, width: int, height: int) -> None:
        try:
            pg = self._open_display(width, height)
        except BaseException as e:  # reported by open() on the caller's thread
            self._error = e
            self._opened.set()
            return
        self._opened.set()
        try:
            while True:
                with self._wake:
                    if self._frame is None and not self._stop:
                        self._wake.wait(0.05)  # read events at least 20 times a second
                    frame, self._frame, stop = self._frame, None, self._stop
                self._draw(pg, frame)
                if stop:
                    break
        except BaseException as e:  # the next send() raises it on the caller's thread
            self._error = DeviceError(f"preview window failed: {e}")
        finally:
            pg.display.quit()

    def _draw(self, pg: Any, frame: VideoFrame | None) -> None:
        """Read the window's events, then show ``frame`` (if any)."""
        for event in pg.event.get():
            if event.type == pg.QUIT:
                self.closed_by_user = True
        if frame is not None:
            image = np.ascontiguousarray(frame.image.swapaxes(0, 1))
            self._screen.blit(pg.surfarray.make_surface(image), (0, 0))
            pg.display.flip()

    def _open_display(self, width: int, height: int):  # noqa: ANN202 - pygame module
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        import pygame

        try:
            pygame.display.init()
            self._screen = pygame.display.set_mode((width, height))
            # SDL falls back to an invisible window when no display answers
            driver = pygame.display.get_driver()
            if driver in ("offscreen", "dummy") and not os.environ.get("SDL_VIDEODRIVER"):
                pygame.display.quit()
                raise pygame.error(f"no display answered (SDL chose its {driver} driver)")
        except pygame.error as e:
            raise DeviceError(f"cannot open a preview window: {e}; check DISPLAY or use "
                              "--sink file:out.mp4") from None
        pygame.display.set_caption(self.title)
        return pygame
