"""VirtualCameraSink: frames to a virtual webcam through pyvirtualcam.

pyvirtualcam's v4l2loopback backend does not raise when a frame cannot be written: its
native code prints ``error writing frame: <why>`` on stderr (no newline) and returns, so
a broken camera printed hundreds of such lines while the run counted frames as sent. On
Linux each send therefore takes the native code's stderr for its duration: that message
becomes a :class:`CameraWriteError` (one line, which the run reports once), and anything
else printed meanwhile is passed on to the real stderr unchanged.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator

import numpy as np

from engine.frames import AudioChunk, VideoFrame

from ..errors import DeviceError

_WRITE_ERROR = re.compile(rb"error writing frame: (.*?)(?=error writing frame: |\n|$)", re.S)


class CameraWriteError(DeviceError):
    """The virtual camera did not take a frame."""


class _NativeStderr:
    """Takes fd 2 for the length of a native call (the GIL is held through pyvirtualcam's
    send, so only threads outside Python can print meanwhile; their text is passed on)."""

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)  # a full pipe drops native text, never blocks
        self._saved = os.dup(2)

    @contextlib.contextmanager
    def taken(self) -> Iterator[list[str]]:
        """``with taken() as errors:`` the write errors printed inside the block."""
        errors: list[str] = []
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(self._w, 2)
        try:
            yield errors
        finally:
            os.dup2(self._saved, 2)
            text = self._drain()
            if text:
                for m in _WRITE_ERROR.finditer(text):
                    errors.append(m.group(1).decode(errors="replace").strip() or "unknown")
                rest = _WRITE_ERROR.sub(b"", text)
                if rest.strip():
                    with contextlib.suppress(OSError):
                        os.write(2, rest)

    def _drain(self) -> bytes:
        chunks = []
        while True:
            try:
                data = os.read(self._r, 65536)
            except BlockingIOError:
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)

    def close(self) -> None:
        for fd in (self._r, self._w, self._saved):
            with contextlib.suppress(OSError):
                os.close(fd)


def how_to_get_a_virtual_camera() -> str:
    """The platform's fix for a missing virtual camera, in one sentence."""
    if sys.platform.startswith("linux"):
        return ("install v4l2loopback and run: sudo modprobe v4l2loopback devices=1 "
                "exclusive_caps=1 card_label=\"Avatar Cam\"")
    if sys.platform == "darwin":
        return "install OBS Studio and start its Virtual Camera once (OBS > Start Virtual Camera)"
    return "install OBS Studio (its Virtual Camera) or Unity Capture"


class VirtualCameraSink:
    """Publish frames on a virtual camera (v4l2loopback, OBS Virtual Camera, Unity Capture)."""

    name = "vcam"
    watched_live = True  # people watch it as it plays: file sources are paced

    def __init__(self, device: str | None = None) -> None:
        self.device = device
        self._cam = None
        self._stderr: _NativeStderr | None = None
        self._opened_with: tuple[int, int, int] | None = None

    def open(self, width: int, height: int, fps: int) -> None:
        import pyvirtualcam

        self._opened_with = (width, height, fps)
        if sys.platform.startswith("linux") and self._stderr is None:
            self._stderr = _NativeStderr()

        try:
            self._cam = pyvirtualcam.Camera(width, height, fps, device=self.device,
                                            fmt=pyvirtualcam.PixelFormat.RGB)
        except (RuntimeError, OSError, ValueError) as e:
            where = f" {self.device}" if self.device else ""
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DeviceError(f"no usable virtual camera{where} ({detail}); "
                              f"{how_to_get_a_virtual_camera()}") from None

    @property
    def device_name(self) -> str | None:
        return self._cam.device if self._cam is not None else self.device

    def send(self, frame: VideoFrame) -> None:
        """Hand the frame to the camera; CameraWriteError when the device refused it."""
        image = np.ascontiguousarray(frame.image)
        if self._stderr is None:
            self._cam.send(image)
            return
        with self._stderr.taken() as errors:
            self._cam.send(image)
        if errors:
            raise CameraWriteError(f"error writing frame to {self.device_name}: {errors[-1]}")

    def recover(self) -> None:
        """Open the camera again (after write errors); DeviceError while it cannot be."""
        if self._cam is not None:
            with contextlib.suppress(Exception):
                self._cam.close()
            self._cam = None
        assert self._opened_with is not None, "open() first"
        self.open(*self._opened_with)

    def audio(self, chunk: AudioChunk) -> None:
        pass

    def close(self) -> None:
        if self._cam is not None:
            self._cam.close()
            self._cam = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
