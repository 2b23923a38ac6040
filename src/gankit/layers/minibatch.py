"""Layers that let D look at a whole minibatch, against mode collapse.

- `MinibatchDiscrimination`: Salimans et al. 2016, section 3.2. Features f [N, A] are
  projected by a tensor T to M [N, B, C]; for each kernel b, o_b(x_i) = sum_j
  exp(-||M_i,b - M_j,b||_L1), and o(x_i) [N, B] is appended to the features. (Self-pairs
  contribute exp(0) = 1, as in the paper's sum over all j.)
- `MinibatchStdDev`: Karras et al. 2018 (ProGAN), section 3: the standard deviation of each
  feature over groups of G samples, averaged to one number per group, appended as an extra
  feature. Here it acts on D's flattened features, just before the output layer.
"""

from __future__ import annotations

import torch
from torch import nn


class MinibatchDiscrimination(nn.Module):
    """[N, A] -> [N, A + num_kernels]."""

    def __init__(self, in_features: int, num_kernels: int, kernel_dim: int = 16) -> None:
        super().__init__()
        self.num_kernels, self.kernel_dim = num_kernels, kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, num_kernels * kernel_dim) * 0.1)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        m = (f @ self.T).view(-1, self.num_kernels, self.kernel_dim)  # [N, B, C]
        l1 = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(3)  # [N, N, B]
        o = torch.exp(-l1).sum(1)  # [N, B]
        return torch.cat([f, o], dim=1)


class MinibatchStdDev(nn.Module):
    """[N, A] -> [N, A + 1]; groups of ``group_size`` samples (the whole batch if it does
    not divide N)."""

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        self.group_size = group_size

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return torch.cat([f, group_stddev(f, self.group_size)], dim=1)


def group_stddev(f: torch.Tensor, group_size: int) -> torch.Tensor:
    """[N, ...] -> [N, 1]: each sample's group's feature standard deviation, averaged over
    the features (``MinibatchStdDev``'s statistic; StyleGAN2's D appends it as a channel)."""
    n = f.shape[0]
    g = group_size if n % group_size == 0 else n
    grouped = f.reshape(g, n // g, -1)  # sample i is in group i % (n // g), as ProGAN
    # the variance written out: torch's var over this outer dimension takes a slow path
    # on CPU, many times slower
    centred = grouped - grouped.mean(dim=0)
    std = (centred.square().mean(dim=0) + 1e-8).sqrt().mean(dim=1)  # [n // g]
    return std.repeat(g).unsqueeze(1)


def batch_features(in_features: int, minibatch_discrimination: int,
                   minibatch_stddev: int) -> tuple[nn.Module, int]:
    """The optional minibatch layers between D's features and its head, and their width."""
    layers: list[nn.Module] = []
    width = in_features
    if minibatch_discrimination > 0:
        layers.append(MinibatchDiscrimination(width, minibatch_discrimination))
        width += minibatch_discrimination
    if minibatch_stddev > 0:
        layers.append(MinibatchStdDev(minibatch_stddev))
        width += 1
    return nn.Sequential(*layers), width
