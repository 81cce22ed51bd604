"""WindowSink: a preview window (pygame/SDL)."""

from __future__ import annotations

import os
import sys

import numpy as np

from ...engine.frames import AudioChunk, VideoFrame
from ..errors import DeviceError


def display_available() -> bool:
    """True when a window can be opened (an X11/Wayland display on Linux)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class WindowSink:
    """Show frames in a window titled after the avatar; closing the window stops the run."""

    name = "window"

    def __init__(self, title: str = "avatar-vcam") -> None:
        self.title = title
        self.closed_by_user = False
        self._screen = None

    def open(self, width: int, height: int, fps: int) -> None:
        if not display_available():
            raise DeviceError("no display for the preview window (DISPLAY is not set); use "
                              "--sink file:out.mp4 or --sink vcam instead")
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        import pygame

        try:
            pygame.display.init()
            self._screen = pygame.display.set_mode((width, height))
        except pygame.error as e:
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
