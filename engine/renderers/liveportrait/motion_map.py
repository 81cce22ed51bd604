"""MotionFrame channels -> LivePortrait driving keypoints, for one prepared source.

The recipe (all offsets relative to the source's own motion, so a neutral MotionFrame
reproduces the source keypoints, before stitching, exactly):

1. **Expression-row offsets** (``EXP_ROWS``): named controls add fixed vectors to rows
   (keypoints) of the expression code, before rotation. Rows and scales per unit of each
   control are those of the expression editor ``calc_fe`` of ComfyUI-AdvancedLivePortrait
   (PowerHouseMan), which edits the official LivePortrait codes: ``smile`` (editor range
   -0.3..1.3), ``eee`` / ``woo`` (-20..15), ``brow`` (-10..15), ``pupil_x`` / ``pupil_y``
   (-15..15). ``CONTROL_SCALE`` maps a channel value of 1.0 to the strength used here.
2. **Lips** through the lip retargeting MLP: lip-open ratio ``source + LIP_GAIN * open``
   (``open = jawOpen - mouthClose``), and **eyes** through the eye retargeting MLP:
   eye-open ratio ``source * (1 - blink) * (1 + 0.3 * wide)``. The ratios are LivePortrait's
   (``calc_eye_close_ratio`` / ``calc_lip_close_ratio`` in its ``src/utils``: on its
   203-point landmarks, eye = |p6 - p18| / |p0 - p12| and |p30 - p42| / |p24 - p36|,
   lip = |p90 - p102| / |p48 - p66|, i.e. lid or lip gap over eye or mouth width), measured
   here on the avatar's 478 face-mesh landmarks instead (``ratios_from_mesh``). The eye MLP
   gets [source left, source right, driving] and the lip MLP [source, driving], as there.
   Each MLP delta is taken minus its delta at the source's own ratios, so zero motion adds
   nothing.
3. **Head pose** added to the source's pitch/yaw/roll and rotated into R; ``tx``/``ty``
   (fractions of the face width) shift t.
4. **Stitching**: the stitching MLP corrects the keypoints so the shoulders stay put.

The pose signs (``POSE_SIGN``) follow the editor's convention (its yaw is negated); they
could not be checked against the real weights here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ...motion import CHANNEL_INDEX, N_CHANNELS
from .keypoints import rotation_matrix
from .stitching import Retargeting

NUM_KP = 21

# control -> [(keypoint row, axis 0=x 1=y 2=z, offset per editor unit)]
EXP_ROWS: dict[str, list[tuple[int, int, float]]] = {
    "smile": [(20, 1, -0.01), (14, 1, -0.02), (17, 1, 0.0065), (17, 2, 0.003),
              (13, 1, -0.00275), (16, 1, -0.00275), (3, 1, -0.0035), (7, 1, -0.0035)],
    "eee": [(20, 2, -0.001), (20, 1, -0.001), (14, 1, -0.001)],
    "woo": [(14, 1, 0.001), (3, 1, -0.0005), (7, 1, -0.0005), (17, 2, -0.0005)],
    "brow_up": [(1, 1, 0.001), (2, 1, -0.001)],
    # the editor's negative eyebrow branch, written per unit of a positive "down" control
    "brow_down": [(1, 0, 0.001), (2, 0, -0.001), (1, 1, -0.0003), (2, 1, 0.0003)],
    "pupil_right": [(11, 0, 0.0007), (15, 0, 0.001)],
    "pupil_left": [(11, 0, -0.001), (15, 0, -0.0007)],  # per unit of leftward gaze
    "pupil_up": [(11, 1, -0.001), (15, 1, -0.001)],
}
# editor units at channel value 1.0
CONTROL_SCALE = {"smile": 1.0, "eee": 12.0, "woo": 12.0, "brow_up": 12.0, "brow_down": 8.0,
                 "pupil_right": 12.0, "pupil_left": 12.0, "pupil_up": 12.0}
CONTROLS = tuple(EXP_ROWS)

LIP_GAIN = 0.5  # lip-open ratio added at jawOpen 1 (the editor's slider spans 0..0.8)
EYE_WIDE_GAIN = 0.3
POSE_SIGN = {"pitch": 1.0, "yaw": -1.0, "roll": 1.0}


def control_basis() -> np.ndarray:
    """(len(CONTROLS), 21 * 3) expression offsets at channel value 1.0."""
    basis = np.zeros((len(CONTROLS), NUM_KP, 3), np.float32)
    for i, name in enumerate(CONTROLS):
        for row, axis, per_unit in EXP_ROWS[name]:
            basis[i, row, axis] += per_unit * CONTROL_SCALE[name]
    return basis.reshape(len(CONTROLS), -1)


def _ch(m: Tensor, name: str) -> Tensor:
    return m[:, CHANNEL_INDEX[name]]  # a view: no index tensor, so it can be graph-captured


def _clip_blendshapes(m: Tensor) -> Tensor:
    """Blendshapes (the first 52 channels) clipped to 0..1; pose channels as they are."""
    return torch.cat([m[:, :52].clamp(0.0, 1.0), m[:, 52:]], dim=1)


def controls_from_channels(m: Tensor) -> Tensor:
    """(N, N_CHANNELS) MotionFrame values -> (N, len(CONTROLS)) control strengths."""
    return _controls(_clip_blendshapes(m))


def _controls(full: Tensor) -> Tensor:
    """:func:`controls_from_channels` of values whose blendshapes are already clipped."""

    def both(a: str) -> Tensor:
        return 0.5 * (_ch(full, a + "Left") + _ch(full, a + "Right"))

    gaze_right = 0.5 * (_ch(full, "eyeLookOutLeft") + _ch(full, "eyeLookInRight")
                        - _ch(full, "eyeLookInLeft") - _ch(full, "eyeLookOutRight"))
    out = {
        "smile": both("mouthSmile") - 0.3 * both("mouthFrown"),
        "eee": both("mouthStretch"),
        "woo": torch.maximum(_ch(full, "mouthPucker"), _ch(full, "mouthFunnel")),
        "brow_up": torch.maximum(_ch(full, "browInnerUp"), both("browOuterUp")),
        "brow_down": both("browDown"),
        "pupil_right": gaze_right.clamp_min(0.0),
        "pupil_left": (-gaze_right).clamp_min(0.0),
        "pupil_up": both("eyeLookUp") - both("eyeLookDown"),
    }
    return torch.stack([out[k] for k in CONTROLS], dim=1)


def ratios_from_mesh(landmarks: np.ndarray) -> tuple[float, float, float]:
    """(eye-open ratio of image-left eye, of image-right eye, lip-open ratio) from the 478
    face-mesh points: lid gap / eye width (points 159-145 over 33-133, 386-374 over
    362-263), inner-lip gap / mouth width (13-14 over 61-291)."""
    p = np.asarray(landmarks, np.float64)[:, :2]

    def ratio(a: int, b: int, c: int, d: int) -> float:
        return float(np.linalg.norm(p[a] - p[b]) / (np.linalg.norm(p[c] - p[d]) + 1e-6))

    return ratio(159, 145, 33, 133), ratio(386, 374, 362, 263), ratio(13, 14, 61, 291)


@dataclass
class SourceMotion:
    """The source's LivePortrait motion, on the render device (float32)."""

    kp: Tensor  # (1, 21, 3) canonical keypoints
    exp: Tensor  # (1, 21, 3)
    pitch: float
    yaw: float
    roll: float
    t: Tensor  # (1, 3)
    scale: Tensor  # (1, 1)
    x_s: Tensor  # (1, 21, 3) transformed source keypoints
    eye_ratios: tuple[float, float]  # image-left, image-right
    lip_ratio: float
    face_frac: float  # face width / crop side (for tx, ty)


class MotionMapper:
    """Batch of MotionFrame vectors -> driving keypoints (B, 21, 3) for one source."""

    def __init__(self, src: SourceMotion, retargeting: Retargeting, stitch: bool = True) -> None:
        self.src = src
        self.net = retargeting
        self.stitch = stitch
        dev = src.kp.device
        self.basis = torch.from_numpy(control_basis()).to(dev)
        x_s = src.x_s
        eyes = torch.tensor([[*src.eye_ratios, float(np.mean(src.eye_ratios))]], device=dev)
        lips = torch.tensor([[src.lip_ratio, src.lip_ratio]], device=dev)
        with torch.no_grad():
            self.eye_zero = self.net.eye_delta(x_s, eyes)
            self.lip_zero = self.net.lip_delta(x_s, lips)

    @torch.no_grad()
    def __call__(self, motions: np.ndarray | Tensor) -> Tensor:
        """MotionFrame vectors (N, N_CHANNELS), on any device -> driving keypoints."""
        m = torch.as_tensor(motions, dtype=torch.float32).reshape(-1, N_CHANNELS)
        return self.map(m.to(self.src.kp.device))

    @torch.no_grad()
    def map(self, m: Tensor) -> Tensor:
        """(B, N_CHANNELS) float32 on the source's device -> (B, 21, 3). Torch ops only and
        no host round trips, so a renderer can capture it in a CUDA graph."""
        src, b = self.src, m.shape[0]
        full = _clip_blendshapes(m)  # once, for the controls and the retargeting
        exp = src.exp + (_controls(full) @ self.basis).reshape(b, NUM_KP, 3)
        rot = rotation_matrix(src.pitch + POSE_SIGN["pitch"] * _ch(m, "pitch"),
                              src.yaw + POSE_SIGN["yaw"] * _ch(m, "yaw"),
                              src.roll + POSE_SIGN["roll"] * _ch(m, "roll"))
        shift = torch.stack([_ch(m, "tx"), _ch(m, "ty")], 1) * (2.0 * src.face_frac)
        x_d = src.scale.reshape(1, 1, 1) * (src.kp @ rot + exp)
        x_d = x_d + torch.nn.functional.pad(src.t[:, :2] + shift, (0, 1)).unsqueeze(1)
        x_d = x_d + self._retarget(full)
        if self.stitch:
            x_d = self.net.stitch(src.x_s.expand(b, -1, -1), x_d)
        return x_d

    def _retarget(self, c: Tensor) -> Tensor:
        """Eye and lip retargeting deltas; ``c``: values with the blendshapes clipped."""
        src, b = self.src, c.shape[0]
        blink = 0.5 * (_ch(c, "eyeBlinkLeft") + _ch(c, "eyeBlinkRight"))
        wide = 0.5 * (_ch(c, "eyeWideLeft") + _ch(c, "eyeWideRight"))
        eye_open = float(np.mean(src.eye_ratios)) * (1 - blink) * (1 + EYE_WIDE_GAIN * wide)
        opened = (_ch(c, "jawOpen") - _ch(c, "mouthClose")).clamp(0.0, 1.0)
        lip = src.lip_ratio + LIP_GAIN * opened
        x_s = src.x_s.expand(b, -1, -1)
        eyes = torch.stack([torch.full_like(eye_open, src.eye_ratios[0]),
                            torch.full_like(eye_open, src.eye_ratios[1]), eye_open], 1)
        lips = torch.stack([torch.full_like(lip, src.lip_ratio), lip], 1)
        return (self.net.eye_delta(x_s, eyes) - self.eye_zero
                + self.net.lip_delta(x_s, lips) - self.lip_zero)
