"""Maxout units, Goodfellow et al. 2013: the maximum over k linear pieces."""

from __future__ import annotations

import torch
from torch import nn


class Maxout(nn.Module):
    """Linear layer with ``pieces`` outputs per unit, reduced by max: [N, in] -> [N, out]."""

    def __init__(self, in_features: int, out_features: int, pieces: int) -> None:
        super().__init__()
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x).view(x.shape[0], self.out_features, self.pieces)
        return y.max(dim=2).values
