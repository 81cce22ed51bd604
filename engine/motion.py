"""MotionFrame: renderer-agnostic face motion, named after ARKit's 52 blendshapes.

Every source of motion (Audio2Motion, expression presets, idle life, webcam driving)
speaks this one language; renderers translate it into their own parameters.
Blendshapes are 0..1. Head pose: ``yaw``/``pitch``/``roll`` in degrees (yaw > 0 turns the
head to the viewer's right, pitch > 0 tilts the chin up, roll > 0 tilts clockwise on
screen), ``tx``/``ty`` in fractions of the face width (x right, y down).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

BLENDSHAPES: tuple[str, ...] = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight",
    "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight",
    "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight",
    "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)
POSE: tuple[str, ...] = ("yaw", "pitch", "roll", "tx", "ty")
CHANNELS: tuple[str, ...] = BLENDSHAPES + POSE
CHANNEL_INDEX: dict[str, int] = {name: i for i, name in enumerate(CHANNELS)}
N_CHANNELS = len(CHANNELS)

#: Largest |value| of each head-pose channel that renders cleanly. The warp renderer clamps
#: to these (beyond them its inverse warp folds: at roll 30 or tx 0.5, 13-15% of the head
#: grid is off by more than 5 px; at these limits none is), and avatar.json presets and
#: idle settings are checked against them. Degrees for angles, face widths for offsets.
POSE_LIMITS: dict[str, float] = {"yaw": 20.0, "pitch": 15.0, "roll": 10.0, "tx": 0.15,
                                 "ty": 0.15}

assert len(BLENDSHAPES) == 52


def finite_pts(pts: object, what: str = "pts") -> float:
    """``pts`` as a float, or ValueError if it is not a finite number of seconds.

    The one check for every layer that takes a time (engine, expressions, idle life): a
    NaN or infinite pts poisons blends for good or makes blink generation run for ever.
    """
    try:
        value = float(pts)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number of seconds, got {pts!r}")
    return value


def channel_index(name: str) -> int:
    """Index of a channel by name, with a helpful error for typos."""
    try:
        return CHANNEL_INDEX[name]
    except KeyError:
        raise KeyError(f"unknown motion channel {name!r}; known: {', '.join(CHANNELS)}") from None


def zeros() -> np.ndarray:
    """A neutral channel vector (float32, all blendshapes 0, pose 0)."""
    return np.zeros(N_CHANNELS, np.float32)


def vector(values: dict[str, float]) -> np.ndarray:
    """Channel vector from a ``{name: value}`` dict; unknown names raise KeyError."""
    v = zeros()
    for name, value in values.items():
        v[channel_index(name)] = value
    return v


@dataclass
class MotionFrame:
    """Motion of the face at one instant ``pts`` (seconds on the audio sample clock)."""

    pts: float
    values: np.ndarray = field(default_factory=zeros)
    speaking: bool = False

    def __getitem__(self, name: str) -> float:
        return float(self.values[channel_index(name)])

    def __setitem__(self, name: str, value: float) -> None:
        self.values[channel_index(name)] = value

    def as_dict(self, nonzero: bool = True) -> dict[str, float]:
        """Channels as a dict (only the non-zero ones by default)."""
        pairs = zip(CHANNELS, self.values, strict=True)
        return {n: float(v) for n, v in pairs if v != 0 or not nonzero}


def stack(frames: list[MotionFrame]) -> np.ndarray:
    """(N, N_CHANNELS) float32 array of a batch of frames."""
    if not frames:
        return np.zeros((0, N_CHANNELS), np.float32)
    return np.stack([f.values for f in frames]).astype(np.float32, copy=False)
