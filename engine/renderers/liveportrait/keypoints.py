"""Head pose and keypoint transform: ``x = scale * (kp @ R + exp) + [tx, ty, 0]``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

NUM_BINS = 66


def pose_to_degrees(pred: Tensor) -> Tensor:
    """(B, 66) bin logits -> (B,) degrees in [-97.5, 97.5]; (B,) or (B, 1) degrees pass through."""
    if pred.ndim > 1 and pred.shape[-1] == NUM_BINS:
        idx = torch.arange(NUM_BINS, device=pred.device, dtype=pred.dtype)
        return (F.softmax(pred, dim=-1) * idx).sum(-1) * 3 - 97.5
    return pred.reshape(pred.shape[0])


def rotation_matrix(pitch: Tensor, yaw: Tensor, roll: Tensor) -> Tensor:
    """Degrees (B,) -> (B, 3, 3) ``(Rz @ Ry @ Rx).T``, to right-multiply row vectors."""
    x, y, z = (a.reshape(-1) * (math.pi / 180) for a in (pitch, yaw, roll))
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    cx, sx, cy, sy, cz, sz = x.cos(), x.sin(), y.cos(), y.sin(), z.cos(), z.sin()

    def mat(*rows: Tensor) -> Tensor:
        return torch.stack(rows, dim=-1).reshape(-1, 3, 3)

    rx = mat(one, zero, zero, zero, cx, -sx, zero, sx, cx)
    ry = mat(cy, zero, sy, zero, one, zero, -sy, zero, cy)
    rz = mat(cz, -sz, zero, sz, cz, zero, zero, zero, one)
    return (rz @ ry @ rx).transpose(1, 2)


def transform_keypoints(kp: Tensor, exp: Tensor, rotation: Tensor, t: Tensor,
                        scale: Tensor) -> Tensor:
    """Canonical kp and exp (B, 63) or (B, K, 3), R (B, 3, 3), t (B, 3), scale (B, 1) ->
    (B, K, 3). The z of ``t`` is not applied."""
    b = kp.shape[0]
    kp, exp = kp.reshape(b, -1, 3), exp.reshape(b, -1, 3)
    shift = F.pad(t.reshape(b, 3)[:, :2], (0, 1)).unsqueeze(1)
    return scale.reshape(b, 1, 1) * (kp @ rotation + exp) + shift


def keypoints_from_motion(motion: dict[str, Tensor]) -> Tensor:
    """Motion-extractor output (pose as logits or degrees) -> transformed keypoints (B, K, 3)."""
    rot = rotation_matrix(*(pose_to_degrees(motion[k]) for k in ("pitch", "yaw", "roll")))
    return transform_keypoints(motion["kp"], motion["exp"], rot, motion["t"], motion["scale"])
