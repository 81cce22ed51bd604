"""Frame sinks: ``file:PATH`` (mp4), ``window``, ``vcam`` / ``vcam:/dev/videoN``."""

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
    raise DeviceError(f"unknown sink {spec!r}; use file:PATH.mp4, window, vcam or "
                      "vcam:/dev/videoN")


__all__ = ["Mp4Sink", "Sink", "VirtualCameraSink", "WindowSink", "display_available",
           "parse_sink"]
