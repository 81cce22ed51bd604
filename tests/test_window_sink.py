"""The preview window on a real X server (Xvfb): its own thread owns the window."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from engine.frames import VideoFrame
from vcam.sinks.window import WindowSink


@pytest.fixture
def on_xvfb(xvfb_display, monkeypatch):
    monkeypatch.setenv("DISPLAY", xvfb_display)
    monkeypatch.setenv("SDL_VIDEODRIVER", "x11")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def _frame(k: int, value: int) -> VideoFrame:
    return VideoFrame(k / 25, k, np.full((64, 64, 3), value, np.uint8))


def test_frames_from_any_thread_reach_the_window_thread(on_xvfb):
    """send() from another thread than open() (the presenter's), and it never waits for a
    flip: every SDL call happens on the window's own thread."""
    sink = WindowSink("test")
    sink.open(64, 64, 25)
    calls: set[str] = set()
    import pygame

    flip = pygame.display.flip

    def recording_flip() -> None:
        calls.add(threading.current_thread().name)
        flip()

    pygame.display.flip = recording_flip
    try:
        sender = threading.Thread(target=lambda: [sink.send(_frame(k, 10 * k))
                                                  for k in range(10)], name="presenter")
        sender.start()
        sender.join(2)
        time.sleep(0.2)
        sink.close()
    finally:
        pygame.display.flip = flip
    assert calls == {"avatar-vcam-window"}


def test_closing_the_window_is_seen_between_frames(on_xvfb):
    """The window answers its close button while no frame comes (before, events were only
    read inside send())."""
    import pygame

    sink = WindowSink("test")
    sink.open(64, 64, 25)
    try:
        pygame.event.post(pygame.event.Event(pygame.QUIT))  # SDL's event queue is shared
        deadline = time.monotonic() + 2
        while not sink.closed_by_user and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sink.closed_by_user
    finally:
        sink.close()
    assert not any(t.name == "avatar-vcam-window" for t in threading.enumerate())


def test_no_display_is_one_error_and_no_thread_left(monkeypatch):
    from vcam.errors import DeviceError

    monkeypatch.setenv("DISPLAY", ":97")  # no X server there
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not os.path.exists("/tmp/.X11-unix/X97")
    with pytest.raises(DeviceError, match="no display"):
        WindowSink().open(64, 64, 25)
    assert not any(t.name == "avatar-vcam-window" for t in threading.enumerate())


def test_where_the_main_thread_must_draw_the_caller_draws(on_xvfb, monkeypatch):
    """macOS' mode (own_thread False), run here on X11: open, draw and close on the
    caller's thread, no window thread."""
    import pygame

    monkeypatch.setattr(WindowSink, "own_thread", False)
    flip, calls = pygame.display.flip, []
    monkeypatch.setattr(pygame.display, "flip",
                        lambda: (calls.append(threading.current_thread().name), flip()))
    sink = WindowSink("test")
    sink.open(64, 64, 25)
    for k in range(3):
        sink.send(_frame(k, 50 * k))
    sink.close()
    assert calls == [threading.current_thread().name] * 3
    assert not any(t.name == "avatar-vcam-window" for t in threading.enumerate())
