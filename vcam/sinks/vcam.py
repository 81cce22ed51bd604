"""VirtualCameraSink: frames to a virtual webcam through pyvirtualcam."""

from __future__ import annotations

import sys

import numpy as np

from engine.frames import AudioChunk, VideoFrame

from ..errors import DeviceError


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

    def open(self, width: int, height: int, fps: int) -> None:
        import pyvirtualcam

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
        self._cam.send(np.ascontiguousarray(frame.image))

    def audio(self, chunk: AudioChunk) -> None:
        pass

    def close(self) -> None:
        if self._cam is not None:
            self._cam.close()
            self._cam = None
