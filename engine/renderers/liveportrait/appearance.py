"""Appearance feature extractor F: source image -> 3-D feature volume."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from .blocks import DownBlock2d, ResBlock3d, SameBlock2d


@dataclass(frozen=True)
class AppearanceConfig:
    """Official ``appearance_feature_extractor_params``."""

    image_channel: int = 3
    block_expansion: int = 64
    num_down_blocks: int = 2
    max_features: int = 512
    reshape_channel: int = 32
    reshape_depth: int = 16
    num_resblocks: int = 6


class AppearanceFeatureExtractor(nn.Module):
    """(B, 3, H, W) in [0, 1] -> (B, 32, 16, H/4, W/4) feature volume."""

    def __init__(self, cfg: AppearanceConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or AppearanceConfig()
        self.cfg = cfg
        e, m = cfg.block_expansion, cfg.max_features
        self.first = SameBlock2d(cfg.image_channel, e)
        chans = [min(m, e * 2**i) for i in range(cfg.num_down_blocks + 1)]
        self.down_blocks = nn.ModuleList(
            DownBlock2d(chans[i], chans[i + 1]) for i in range(cfg.num_down_blocks)
        )
        self.second = nn.Conv2d(chans[-1], m, kernel_size=1)
        self.resblocks_3d = nn.Sequential()
        for i in range(cfg.num_resblocks):
            self.resblocks_3d.add_module(f"3dr{i}", ResBlock3d(cfg.reshape_channel))

    def forward(self, image: Tensor) -> Tensor:
        x = self.first(image)
        for block in self.down_blocks:
            x = block(x)
        x = self.second(x)
        b, _, h, w = x.shape
        x = x.reshape(b, self.cfg.reshape_channel, self.cfg.reshape_depth, h, w)
        return self.resblocks_3d(x)
