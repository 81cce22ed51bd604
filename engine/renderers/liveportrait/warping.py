"""Warping module W: dense motion from keypoints, then warp + project the feature volume."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import DownBlock3d, GridCache, SameBlock2d, UpBlock3d

KP_VARIANCE = 0.01


@dataclass(frozen=True)
class DenseMotionConfig:
    """Official ``dense_motion_params``."""

    block_expansion: int = 32
    max_features: int = 1024
    num_blocks: int = 5
    reshape_depth: int = 16
    compress: int = 4


@dataclass(frozen=True)
class WarpingConfig:
    """Official ``warping_module_params``."""

    num_kp: int = 21
    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    reshape_channel: int = 32
    estimate_occlusion_map: bool = True
    dense_motion: DenseMotionConfig = field(default_factory=DenseMotionConfig)


class Hourglass(nn.Module):
    """3-D U-Net: ``num_blocks`` (1, 2, 2) down blocks, mirrored up blocks with skips."""

    def __init__(self, n_in: int, expansion: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        self.encoder = nn.Module()
        self.decoder = nn.Module()
        chans = [min(max_features, expansion * 2 ** (i + 1)) for i in range(num_blocks)]
        self.encoder.down_blocks = nn.ModuleList(
            DownBlock3d(n_in if i == 0 else chans[i - 1], chans[i]) for i in range(num_blocks)
        )
        ups = []
        for i in reversed(range(num_blocks)):
            n_up_in = chans[i] * (1 if i == num_blocks - 1 else 2)
            ups.append(UpBlock3d(n_up_in, min(max_features, expansion * 2**i)))
        self.decoder.up_blocks = nn.ModuleList(ups)
        self.out_channels = expansion + n_in
        self.decoder.conv = nn.Conv3d(self.out_channels, self.out_channels, 3, padding=1)
        self.decoder.norm = nn.BatchNorm3d(self.out_channels)

    def forward(self, x: Tensor) -> Tensor:
        skips = [x]
        for block in self.encoder.down_blocks:
            skips.append(block(skips[-1]))
        out = skips.pop()
        for block in self.decoder.up_blocks:
            out = torch.cat([block(out), skips.pop()], dim=1)
        return F.relu(self.decoder.norm(self.decoder.conv(out)))


class DenseMotionNetwork(nn.Module):
    """Keypoints + compressed feature volume -> deformation (B, D, H, W, 3) and occlusion."""

    def __init__(self, num_kp: int, feature_channel: int, cfg: DenseMotionConfig,
                 estimate_occlusion_map: bool = True) -> None:
        super().__init__()
        self.num_kp = num_kp
        n_in = (num_kp + 1) * (cfg.compress + 1)
        self.hourglass = Hourglass(n_in, cfg.block_expansion, cfg.num_blocks, cfg.max_features)
        n_out = self.hourglass.out_channels
        self.mask = nn.Conv3d(n_out, num_kp + 1, kernel_size=7, padding=3)
        self.compress = nn.Conv3d(feature_channel, cfg.compress, kernel_size=1)
        self.norm = nn.BatchNorm3d(cfg.compress)
        self.occlusion = (
            nn.Conv2d(n_out * cfg.reshape_depth, 1, kernel_size=7, padding=3)
            if estimate_occlusion_map else None
        )
        self.grids = GridCache()

    def forward(self, feature: Tensor, kp_driving: Tensor,
                kp_source: Tensor) -> tuple[Tensor, Tensor | None]:
        """feature (B, C, D, H, W), keypoints (B, K, 3) -> (deformation, occlusion or None)."""
        feature = F.relu(self.norm(self.compress(feature)))
        b, c, d, h, w = feature.shape
        k = self.num_kp
        grid = self.grids.get(d, h, w, feature.device, feature.dtype)  # (D, H, W, 3)

        # sparse motions: identity for the background, then one shift per keypoint
        kd = kp_driving.reshape(b, k, 1, 1, 1, 3)
        ks = kp_source.reshape(b, k, 1, 1, 1, 3)
        to_source = grid - kd + ks  # (B, K, D, H, W, 3)
        sparse = torch.cat([grid.expand(b, 1, d, h, w, 3), to_source], dim=1)

        # warp the compressed feature once per motion: stack the K+1 grids along depth
        deformed = F.grid_sample(feature, sparse.reshape(b, (k + 1) * d, h, w, 3),
                                 align_corners=False)
        deformed = deformed.reshape(b, c, k + 1, d, h, w).transpose(1, 2)

        # gaussian heat-map difference, with a zero channel for the background
        g_d = torch.exp(-0.5 * (grid - kd).square().sum(-1) / KP_VARIANCE)
        g_s = torch.exp(-0.5 * (grid - ks).square().sum(-1) / KP_VARIANCE)
        heatmap = F.pad(g_d - g_s, (0, 0, 0, 0, 0, 0, 1, 0)).unsqueeze(2)

        x = torch.cat([heatmap, deformed], dim=2).reshape(b, -1, d, h, w)
        prediction = self.hourglass(x)
        mask = F.softmax(self.mask(prediction), dim=1)  # (B, K+1, D, H, W)
        deformation = (sparse * mask.unsqueeze(-1)).sum(dim=1)  # (B, D, H, W, 3)

        occlusion = None
        if self.occlusion is not None:
            occlusion = torch.sigmoid(self.occlusion(prediction.reshape(b, -1, h, w)))
        return deformation, occlusion


class WarpingNetwork(nn.Module):
    """feature_3d (B, 32, 16, h, w), kp_driving / kp_source (B, 21, 3) ->
    dict ``out`` (B, 256, h, w), ``occlusion_map`` (B, 1, h, w), ``deformation``."""

    def __init__(self, cfg: WarpingConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or WarpingConfig()
        self.cfg = cfg
        self.dense_motion_network = DenseMotionNetwork(
            cfg.num_kp, cfg.reshape_channel, cfg.dense_motion, cfg.estimate_occlusion_map
        )
        n = cfg.block_expansion * 2**cfg.num_down_blocks
        self.third = SameBlock2d(cfg.max_features, n, lrelu=True)
        self.fourth = nn.Conv2d(n, n, kernel_size=1)

    def forward(self, feature_3d: Tensor, kp_driving: Tensor,
                kp_source: Tensor) -> dict[str, Tensor]:
        deformation, occlusion = self.dense_motion_network(feature_3d, kp_driving, kp_source)
        out = F.grid_sample(feature_3d, deformation, align_corners=False)
        b, c, d, h, w = out.shape
        out = self.fourth(self.third(out.reshape(b, c * d, h, w)))
        result = {"out": out, "deformation": deformation}
        if occlusion is not None:
            result["out"] = out * occlusion
            result["occlusion_map"] = occlusion
        return result
