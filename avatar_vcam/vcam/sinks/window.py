"""WindowSink: a preview window (pygame/SDL)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from ...engine.frames import AudioChunk, VideoFrame
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
    """Show frames in a window titled after the avatar; closing the window stops the run."""

    name = "window"

    def __init__(self, title: str = "avatar-vcam") -> None:
        self.title = title
        self.closed_by_user = False
        self._screen = None

    def open(self, width: int, height: int, fps: int) -> None:
        if not display_available():
            what = (f"DISPLAY={os.environ['DISPLAY']} does not answer"
                    if os.environ.get("DISPLAY") else "DISPLAY is not set")
            raise DeviceError(f"no display for the preview window ({what}); use "
                              "--sink file:out.mp4 or --sink vcam instead")
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
            self._screen = None
            raise DeviceError(f"cannot open a preview window: {e}; check DISPLAY or use "
                              "--sink file:out.mp4") from None
        pygame.display.set_caption(self.title)
        self._pygame = pygame

    def send(self, frame: VideoFrame) -> None:
        pg = self._pygame
        for event in pg.event.get():
            if event.type == pg.QUIT:
                self.closed_by_user = True
        surface = pg.surfarray.make_surface(np.ascontiguousarray(frame.image.swapaxes(0, 1)))
        self._screen.blit(surface, (0, 0))
        pg.display.flip()

    def audio(self, chunk: AudioChunk) -> None:
        pass

    def close(self) -> None:
        if self._screen is not None:
            self._pygame.display.quit()
            self._screen = None
