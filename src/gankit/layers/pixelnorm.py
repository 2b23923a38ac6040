"""Pixelwise feature normalisation, Karras et al. 2018 ("Progressive Growing of GANs",
section 4.2): each pixel's feature vector is scaled to unit mean square,
b = a / sqrt(mean_j a_j^2 + 1e-8), over the channels j. It replaces batch normalisation in
the progressively grown generator and keeps the magnitudes in G and D from escalating.
"""

from __future__ import annotations

import torch
from torch import nn

EPSILON = 1e-8  # the paper's epsilon


def pixel_norm(x: torch.Tensor) -> torch.Tensor:
    """[N, C, ...] -> same: each position's C-vector divided by its root mean square."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + EPSILON)


class PixelNorm(nn.Module):
    """`pixel_norm` as a layer (no parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_norm(x)
