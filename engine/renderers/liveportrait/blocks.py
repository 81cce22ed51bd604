"""Small building blocks shared by the LivePortrait networks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SameBlock2d(nn.Module):
    """conv3x3 -> BatchNorm -> ReLU (or LeakyReLU 0.01); keeps resolution."""

    def __init__(self, n_in: int, n_out: int, lrelu: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(n_in, n_out, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm2d(n_out)
        self.lrelu = lrelu

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(self.conv(x))
        return F.leaky_relu(x) if self.lrelu else F.relu(x)


class DownBlock2d(nn.Module):
    """conv3x3 -> BatchNorm -> ReLU -> 2x2 average pool."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(n_in, n_out, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm2d(n_out)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(F.relu(self.norm(self.conv(x))), 2)


class DownBlock3d(nn.Module):
    """conv3x3x3 -> BatchNorm -> ReLU -> (1, 2, 2) average pool (depth is kept)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(n_in, n_out, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(n_out)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool3d(F.relu(self.norm(self.conv(x))), (1, 2, 2))


class UpBlock3d(nn.Module):
    """(1, 2, 2) nearest upsample -> conv3x3x3 -> BatchNorm -> ReLU."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(n_in, n_out, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(n_out)

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=(1.0, 2.0, 2.0))
        return F.relu(self.norm(self.conv(x)))


class ResBlock3d(nn.Module):
    """Pre-activation 3-D residual block: x + conv(relu(bn(conv(relu(bn(x))))))."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(n, n, kernel_size=3, padding=1)
        self.conv2 = nn.Conv3d(n, n, kernel_size=3, padding=1)
        self.norm1 = nn.BatchNorm3d(n)
        self.norm2 = nn.BatchNorm3d(n)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        return x + self.conv2(F.relu(self.norm2(out)))


class GridCache:
    """Normalised (x, y, z) coordinate grids in [-1, 1], built once per shape, device, dtype.

    Grids are made on the target device (no host-to-device copy), so callers stay free
    of host syncs and CUDA-graph capturable once the grid for a shape exists.
    """

    def __init__(self) -> None:
        self._grids: dict[tuple, Tensor] = {}

    def get(self, d: int, h: int, w: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        """Grid of shape (d, h, w, 3); last axis is (x right, y down, z in)."""
        key = (d, h, w, device, dtype)
        grid = self._grids.get(key)
        if grid is None:
            def axis(n: int) -> Tensor:
                return 2 * (torch.arange(n, device=device, dtype=dtype) / (n - 1)) - 1

            z, y, x = torch.meshgrid(axis(d), axis(h), axis(w), indexing="ij")
            grid = torch.stack([x, y, z], dim=-1).contiguous()
            self._grids[key] = grid
        return grid

    def clear(self) -> None:
        """Drop every cached grid."""
        self._grids.clear()
