"""SPADE generator G: warped 2-D feature -> RGB frame at 8x the feature resolution.

The official convolutions inside the residual blocks are spectral-normalised. Here they are
plain convolutions; :func:`fold_spectral_norm` turns the checkpoint's ``weight_orig`` /
``weight_u`` / ``weight_v`` triplets into the eval-mode weight once, at load time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SPECTRAL_SUFFIXES = ("weight_orig", "weight_u", "weight_v")


@dataclass(frozen=True)
class SPADEConfig:
    """Official ``spade_generator_params``."""

    upscale: int = 2
    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    out_channels: int = 64
    hidden: int = 128  # SPADE's shared MLP width


class SPADE(nn.Module):
    """Instance norm (no affine) modulated by gamma/beta predicted from the segmap."""

    def __init__(self, n: int, label_nc: int, hidden: int) -> None:
        super().__init__()
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, n, 3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, n, 3, padding=1)

    def forward(self, x: Tensor, seg: Tensor) -> Tensor:
        """``seg`` must already be at x's resolution."""
        actv = self.mlp_shared(seg)
        gamma, beta = self.mlp_gamma(actv), self.mlp_beta(actv)
        return F.instance_norm(x, eps=1e-5) * (1 + gamma) + beta


class SPADEResBlock(nn.Module):
    """Two SPADE -> LeakyReLU(0.2) -> conv3x3 stages; learned 1x1 shortcut if fin != fout."""

    def __init__(self, fin: int, fout: int, label_nc: int, hidden: int) -> None:
        super().__init__()
        fmid = min(fin, fout)
        self.learned_shortcut = fin != fout
        self.conv_0 = nn.Conv2d(fin, fmid, 3, padding=1)
        self.conv_1 = nn.Conv2d(fmid, fout, 3, padding=1)
        self.norm_0 = SPADE(fin, label_nc, hidden)
        self.norm_1 = SPADE(fmid, label_nc, hidden)
        if self.learned_shortcut:
            self.conv_s = nn.Conv2d(fin, fout, 1, bias=False)
            self.norm_s = SPADE(fin, label_nc, hidden)

    def forward(self, x: Tensor, seg: Tensor) -> Tensor:
        shortcut = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return shortcut + dx


class SPADEGenerator(nn.Module):
    """feature (B, 256, h, w) -> RGB (B, 3, 8h, 8w) in [0, 1] (two x2 upsamples + pixel shuffle)."""

    def __init__(self, cfg: SPADEConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or SPADEConfig()
        self.cfg = cfg
        n = min(cfg.max_features, cfg.block_expansion * 2**cfg.num_down_blocks)  # 256
        hid = cfg.hidden
        self.fc = nn.Conv2d(n, 2 * n, 3, padding=1)
        for i in range(6):
            setattr(self, f"G_middle_{i}", SPADEResBlock(2 * n, 2 * n, n, hid))
        self.up_0 = SPADEResBlock(2 * n, n, n, hid)
        self.up_1 = SPADEResBlock(n, cfg.out_channels, n, hid)
        if cfg.upscale is None or cfg.upscale <= 1:
            self.conv_img = nn.Conv2d(cfg.out_channels, 3, 3, padding=1)
        else:
            self.conv_img = nn.Sequential(
                nn.Conv2d(cfg.out_channels, 3 * 4, 3, padding=1), nn.PixelShuffle(2)
            )
        self.middle = [getattr(self, f"G_middle_{i}") for i in range(6)]

    def forward(self, feature: Tensor) -> Tensor:
        seg = feature
        x = self.fc(feature)
        for block in self.middle:
            x = block(x, seg)
        # the segmap is resized (nearest) once per resolution, not once per SPADE layer
        x = F.interpolate(x, scale_factor=2.0)
        x = self.up_0(x, F.interpolate(seg, size=x.shape[2:]))
        x = F.interpolate(x, scale_factor=2.0)
        x = self.up_1(x, F.interpolate(seg, size=x.shape[2:]))
        return torch.sigmoid(self.conv_img(F.leaky_relu(x, 0.2)))

    def spectral_prefixes(self) -> list[str]:
        """State-dict prefixes of the convolutions that are spectral-normalised officially."""
        return [
            f"{name}.{conv}"
            for name, block in self.named_children() if isinstance(block, SPADEResBlock)
            for conv in ("conv_0", "conv_1", "conv_s") if hasattr(block, conv)
        ]

    def checkpoint_shapes(self) -> dict[str, tuple[int, ...]]:
        """Key -> shape as the official checkpoint stores them (weight_orig/_u/_v)."""
        spectral = {p + ".weight" for p in self.spectral_prefixes()}
        shapes: dict[str, tuple[int, ...]] = {}
        for key, t in self.state_dict().items():
            if key in spectral:
                prefix = key[: -len("weight")]
                shapes[prefix + "weight_orig"] = tuple(t.shape)
                shapes[prefix + "weight_u"] = (t.shape[0],)
                shapes[prefix + "weight_v"] = (t[0].numel(),)
            else:
                shapes[key] = tuple(t.shape)
        return shapes


def fold_spectral_norm(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Replace each ``weight_orig``/``weight_u``/``weight_v`` triplet by the eval-mode weight
    ``weight_orig / dot(u, W.reshape(out, -1) @ v)``. Raises KeyError for a partial triplet."""
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        prefix, _, leaf = key.rpartition(".")
        if leaf not in SPECTRAL_SUFFIXES:
            out[key] = value
        elif leaf == "weight_orig":
            w = value
            u = state_dict[f"{prefix}.weight_u"]
            v = state_dict[f"{prefix}.weight_v"]
            sigma = torch.dot(u, w.reshape(w.shape[0], -1) @ v)
            out[f"{prefix}.weight"] = w / sigma
        elif f"{prefix}.weight_orig" not in state_dict:
            out[key] = value  # orphan u/v: left in place so a strict load reports it
    return out
