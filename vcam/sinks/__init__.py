"""Frame sinks: ``file:PATH`` (mp4), ``window``, ``vcam`` / ``vcam:/dev/videoN``, ``obs``
(alias ``browser``: a page for an OBS Browser Source, with alpha)."""

from __future__ import annotations

from pathlib import Path

from ..errors import DeviceError
from .base import Sink
from .mp4 import Mp4Sink
from .vcam import VirtualCameraSink
from .window import WindowSink, display_available


def parse_sink(spec: str, title: str = "avatar-vcam") -> Sink:
    """Build a sink from its command-line form."""
    kind, _, arg = spec.partition(":")
    if kind == "file" and arg:  # "file:~/x.mp4": no shell expands the ~ after "file:"
        return Mp4Sink(Path(arg).expanduser())
    if kind == "window" and not arg:
        return WindowSink(title)
    if kind == "vcam":
        return VirtualCameraSink(arg or None)
    if kind in ("obs", "browser") and not arg:
        from .browser import BrowserSink

        return BrowserSink()
    raise DeviceError(f"unknown sink {spec!r}; use file:PATH.mp4, window, vcam, "
                      "vcam:/dev/videoN or obs (a transparent OBS browser source)")


__all__ = ["Mp4Sink", "Sink", "VirtualCameraSink", "WindowSink", "display_available",
           "parse_sink"]
