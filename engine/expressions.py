"""Expression presets (channel weights) and their timed blending.

Presets are defaults; an avatar's ``expressions`` section in avatar.json overrides or adds
presets by name, so a face that already smiles in its photo can use a smaller smile.
"""

from __future__ import annotations

import numpy as np

from . import motion
from .errors import AvatarError

PRESETS: dict[str, dict[str, float]] = {
    "neutral": {},
    "smile": {"mouthSmileLeft": 0.8, "mouthSmileRight": 0.8, "cheekSquintLeft": 0.4,
              "cheekSquintRight": 0.4, "eyeSquintLeft": 0.2, "eyeSquintRight": 0.2},
    "laugh": {"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0, "jawOpen": 0.35,
              "cheekSquintLeft": 0.7, "cheekSquintRight": 0.7, "eyeSquintLeft": 0.5,
              "eyeSquintRight": 0.5, "browInnerUp": 0.2, "pitch": 4.0},
    "surprised": {"browInnerUp": 1.0, "browOuterUpLeft": 1.0, "browOuterUpRight": 1.0,
                  "eyeWideLeft": 0.8, "eyeWideRight": 0.8, "jawOpen": 0.5, "mouthFunnel": 0.3},
    "sad": {"browInnerUp": 1.0, "mouthFrownLeft": 0.6, "mouthFrownRight": 0.6,
            "eyeSquintLeft": 0.1, "eyeSquintRight": 0.1, "pitch": -1.5},
    "angry": {"browDownLeft": 0.9, "browDownRight": 0.9, "eyeSquintLeft": 0.3,
              "eyeSquintRight": 0.3, "mouthPressLeft": 0.5, "mouthPressRight": 0.5,
              "noseSneerLeft": 0.3, "noseSneerRight": 0.3},
    "wink": {"eyeBlinkLeft": 1.0, "mouthSmileLeft": 0.5, "mouthSmileRight": 0.3,
             "cheekSquintLeft": 0.4},
    "thinking": {"browDownLeft": 0.3, "browOuterUpRight": 0.4, "mouthPucker": 0.3,
                 "mouthLeft": 0.3, "eyeLookUpLeft": 0.4, "eyeLookUpRight": 0.4, "roll": 4.0,
                 "yaw": -5.0},
    "skeptical": {"browDownLeft": 0.6, "browOuterUpRight": 0.7, "mouthPressLeft": 0.3,
                  "mouthRight": 0.2, "eyeSquintLeft": 0.3, "roll": -3.0},
}


#: Largest |weight| an avatar.json preset may give a channel, by kind of channel. The
#: limits are what the renderers can show: blendshapes are clipped to 0..1 after the
#: layers add up (mixer.py), so +-2 leaves room to cancel or saturate another layer; head
#: pose stops where the warp renderer stays clean (motion.POSE_LIMITS: yaw 20, pitch 15,
#: roll 10 degrees, tx/ty 0.15 face widths; the renderer clamps there). The built-in
#: presets stay inside (|blendshape| <= 1, pose <= 5 degrees) and the bundled avatars add
#: none. Anything beyond (NaN, Infinity, 1e30) is a mistake that would corrupt frames and,
#: through blending, every later expression.
WEIGHT_LIMITS: dict[str, tuple[float, str]] = {
    **{n: (2.0, "a blendshape, 0..1 when shown") for n in motion.BLENDSHAPES},
    **{n: (motion.POSE_LIMITS[n], "degrees") for n in ("yaw", "pitch", "roll")},
    **{n: (motion.POSE_LIMITS[n], "face widths") for n in ("tx", "ty")},
}


def _check_weight(channel: str, w: object) -> None:
    motion.channel_index(channel)  # KeyError naming the known channels
    if not isinstance(w, (int, float)) or isinstance(w, bool):
        raise ValueError(f"weights must be numbers, got {channel!r}: {w!r}")
    limit, unit = WEIGHT_LIMITS[channel]
    if not -limit <= w <= limit:  # False for NaN too
        raise ValueError(f"{channel!r} must be a finite number in {-limit:g}..{limit:g} "
                         f"({unit}), got {w!r}")


def preset_table(overrides: dict[str, dict[str, float]] | None = None) -> dict[str, np.ndarray]:
    """Channel vectors of every preset, with an avatar's overrides applied.

    A bad override (unknown channel, non-number or out-of-range weight) raises AvatarError
    naming it."""
    merged = {**PRESETS, **(overrides or {})}
    table = {}
    for name, weights in merged.items():
        try:
            for channel, w in weights.items():
                _check_weight(channel, w)
            table[name] = motion.vector(weights)
        except (KeyError, ValueError, AttributeError) as e:
            msg = e.args[0] if e.args else str(e)
            raise AvatarError(f"expression {name!r} in avatar.json: {msg}") from None
    return table


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


class ExpressionBlender:
    """Current expression as a channel vector, blending to a new preset over ``blend_s``.

    Time is the engine's pts (audio sample clock), so blends are reproducible and
    independent of wall-clock jitter.
    """

    def __init__(self, presets: dict[str, np.ndarray], blend_s: float = 0.2) -> None:
        self.presets = presets
        self.blend_s = blend_s
        self.name = "neutral"
        self._from = motion.zeros()
        self._to = motion.zeros()
        self._start: float | None = None

    def set(self, name: str, pts: float) -> None:
        """Start blending toward preset ``name`` at ``pts`` (a finite number: a NaN
        start would make every later blend NaN)."""
        pts = motion.finite_pts(pts)
        if name not in self.presets:
            raise KeyError(f"unknown expression {name!r}; known: {', '.join(sorted(self.presets))}")
        self._from = self.value_at(pts)
        self._to = self.presets[name]
        self._start = pts
        self.name = name

    def value_at(self, pts: float) -> np.ndarray:
        """The blended expression vector at ``pts``."""
        if self._start is None:
            return self._to.copy()
        if self.blend_s <= 0:
            return self._to.copy()
        a = _smoothstep((pts - self._start) / self.blend_s)
        return (1.0 - a) * self._from + a * self._to
