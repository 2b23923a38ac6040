"""Residual blocks of SNGAN (Miyato et al. 2018, appendix B.4) and BigGAN (Brock et al.
2019, figure 15), and the batch norms that condition them.

- `UpBlock` (G): BN -> ReLU -> upsample x2 -> conv3x3 -> BN -> ReLU -> conv3x3, plus a
  shortcut upsample -> conv1x1. Each BN takes the block's condition: nothing (`PlainNorm`),
  class labels (`gankit.layers.conditioning.ConditionalBatchNorm`) or a vector y, BigGAN's
  shared class embedding and/or latent chunk (`LatentBatchNorm`).
- `DownBlock` (D): ReLU -> conv3x3 -> ReLU -> conv3x3 -> 2x2 average pool, plus a shortcut
  conv1x1 (when the channels change or it pools) -> pool. The ``first`` block is Miyato's
  optimised block: no activation before its first conv, its shortcut pools first.

Upsampling is nearest-neighbour; downsampling average pooling, as both papers do.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PlainNorm(nn.BatchNorm2d):
    """BatchNorm2d that ignores the block's condition: (x, cond) -> BN(x)."""

    def forward(self, x: torch.Tensor, cond=None) -> torch.Tensor:  # noqa: ARG002
        return super().forward(x)


class LatentBatchNorm(nn.Module):
    """BigGAN's conditional BatchNorm: BN without affine parameters, then a gain and bias
    that are linear (no bias) in a condition vector y [N, D]:
    ``(1 + W_g y) * BN(x) + W_b y``. At W = 0 it is plain BatchNorm."""

    def __init__(self, num_features: int, cond_dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.gain = nn.Linear(cond_dim, num_features, bias=False)
        self.bias = nn.Linear(cond_dim, num_features, bias=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gain = 1.0 + self.gain(y)[:, :, None, None]
        return gain * self.bn(x) + self.bias(y)[:, :, None, None]


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


class UpBlock(nn.Module):
    """(x [N, C_in, H, W], cond) -> [N, C_out, 2H, 2W]; ``norm(C)`` builds each BN."""

    def __init__(self, in_channels: int, out_channels: int, norm) -> None:
        super().__init__()
        self.bn1 = norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.bn2 = norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, cond=None) -> torch.Tensor:
        h = self.conv1(_up(F.relu(self.bn1(x, cond))))
        h = self.conv2(F.relu(self.bn2(h, cond)))
        return h + self.shortcut(_up(x))


class DownBlock(nn.Module):
    """[N, C_in, H, W] -> [N, C_out, H/2, W/2] (``down``) or [N, C_out, H, W]."""

    def __init__(self, in_channels: int, out_channels: int, down: bool = True,
                 first: bool = False) -> None:
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        learned = first or down or in_channels != out_channels
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1) if learned else None

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.down else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x if self.first else F.relu(x))
        h = self._pool(self.conv2(F.relu(h)))
        if self.first:  # Miyato's optimised block: pool, then the 1x1 conv
            return h + self.shortcut(self._pool(x))
        skip = x if self.shortcut is None else self.shortcut(x)
        return h + self._pool(skip)
