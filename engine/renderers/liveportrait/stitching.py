"""Stitching and retargeting MLPs: small corrections to the driving keypoints."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class MLPConfig:
    """One MLP of ``stitching_retargeting_module_params``."""

    input_size: int
    hidden_sizes: tuple[int, ...]
    output_size: int


STITCHING = MLPConfig(126, (128, 128, 64), 65)
LIP = MLPConfig(65, (128, 128, 64), 63)
EYE = MLPConfig(66, (256, 256, 128, 128, 64), 63)

# checkpoint dict entry -> attribute of :class:`Retargeting`
CHECKPOINT_PARTS = {
    "retarget_shoulder": "stitching",
    "retarget_mouth": "lip",
    "retarget_eye": "eye",
}


class RetargetingMLP(nn.Module):
    """Linear/ReLU stack; keys ``mlp.{0,2,4,...}``."""

    def __init__(self, cfg: MLPConfig) -> None:
        super().__init__()
        sizes = (cfg.input_size, *cfg.hidden_sizes)
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], cfg.output_size))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(x)


class Retargeting(nn.Module):
    """The three MLPs of ``stitching_retargeting_module.pth`` plus how they are applied."""

    def __init__(self) -> None:
        super().__init__()
        self.stitching = RetargetingMLP(STITCHING)
        self.lip = RetargetingMLP(LIP)
        self.eye = RetargetingMLP(EYE)

    def stitch(self, kp_source: Tensor, kp_driving: Tensor) -> Tensor:
        """Driving keypoints (B, K, 3) corrected so the head pastes back seamlessly."""
        b, k, _ = kp_driving.shape
        delta = self.stitching(torch.cat([kp_source.reshape(b, -1), kp_driving.reshape(b, -1)], 1))
        shift = F.pad(delta[:, 3 * k:3 * k + 2], (0, 1)).reshape(b, 1, 3)  # (tx, ty, 0)
        return kp_driving + delta[:, : 3 * k].reshape(b, k, 3) + shift

    def lip_delta(self, kp_source: Tensor, lip_ratios: Tensor) -> Tensor:
        """(B, K, 3) keypoint delta; ``lip_ratios`` (B, 2) = [source, driving]."""
        b, k, _ = kp_source.shape
        return self.lip(torch.cat([kp_source.reshape(b, -1), lip_ratios], 1)).reshape(b, k, 3)

    def eye_delta(self, kp_source: Tensor, eye_ratios: Tensor) -> Tensor:
        """(B, K, 3) keypoint delta; ``eye_ratios`` (B, 3) = [src left, src right, driving]."""
        b, k, _ = kp_source.shape
        return self.eye(torch.cat([kp_source.reshape(b, -1), eye_ratios], 1)).reshape(b, k, 3)
