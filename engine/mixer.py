"""MotionMixer: the one place where motion layers add up.

idle life + expression preset (blended) + speech gestures (head beats, brows, blinks from
prosody) + speech (Audio2Motion owns the mouth while it speaks) + external drivers -> one
MotionFrame per video pts.
"""

from __future__ import annotations

import numpy as np

from . import motion
from .audio2motion.gestures import SpeechGestures
from .expressions import ExpressionBlender
from .idle import IdleLife
from .motion import MotionFrame

#: Channels Audio2Motion produces; while speaking they replace the other layers' values.
SPEECH_CHANNELS = ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker",
                   "mouthStretchLeft", "mouthStretchRight", "mouthRollLower")
_SPEECH = np.array([motion.CHANNEL_INDEX[n] for n in SPEECH_CHANNELS])
_BLEND = np.array([i for i, n in enumerate(motion.CHANNELS) if n in motion.BLENDSHAPES])


class MotionMixer:
    """Combine the motion layers for one avatar."""

    def __init__(self, idle: IdleLife | None, expressions: ExpressionBlender,
                 gestures: SpeechGestures | None = None) -> None:
        self.idle = idle
        self.expressions = expressions
        self.gestures = gestures
        self.external: np.ndarray | None = None  # e.g. webcam driving, set by the app

    def mix(self, speech: MotionFrame) -> MotionFrame:
        """Motion at ``speech.pts`` from all layers; ``speech`` carries the mouth channels."""
        pts = speech.pts
        v = self.expressions.value_at(pts)
        if self.idle is not None:
            v = v + self.idle.value_at(pts)
        if self.gestures is not None:
            v = v + self.gestures.value_at(pts)
        if self.external is not None:
            v = v + self.external
        # Speech owns the mouth shape while speaking (the preset keeps smiles, frowns,
        # brows and eyes); in silence the preset's mouth shows.
        s = speech.values[_SPEECH]
        v[_SPEECH] = s if speech.speaking else v[_SPEECH] + s
        v[_BLEND] = np.clip(v[_BLEND], 0.0, 1.0)
        return MotionFrame(pts=pts, values=v.astype(np.float32), speaking=speech.speaking)
