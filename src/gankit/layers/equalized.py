"""Equalised learning rate (Karras et al. 2018, ProGAN section 4.1; kept by StyleGAN2,
Karras et al. 2020).

Weights are stored as N(0, 1) / ``lr_mul`` and scaled at every forward pass by
``lr_mul / sqrt(fan_in)``, so the effective weights have He's variance 1 / fan_in while
every parameter sees updates of the same size under Adam, whatever its layer's fan-in.
``lr_mul`` < 1 slows a layer down (StyleGAN's mapping network uses 0.01); biases are scaled
by ``lr_mul`` too. `scaled_lrelu` is LeakyReLU(0.2) times sqrt(2), StyleGAN's activation: for
a zero-mean Gaussian input it multiplies the second moment by 2 * (1 + 0.2^2) / 2 = 1.04, so a
stack of equalised layers keeps its activations near unit scale.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

LRELU_GAIN = math.sqrt(2.0)


def scaled_lrelu(x: torch.Tensor) -> torch.Tensor:
    """LeakyReLU(0.2) * sqrt(2)."""
    return F.leaky_relu(x, 0.2) * LRELU_GAIN


class EqualizedLinear(nn.Module):
    """x [N, in] -> [N, out] with runtime-scaled weights (see the module docstring)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 bias_init: float = 0.0, lr_mul: float = 1.0, activate: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_mul)) \
            if bias else None
        self.scale = lr_mul / math.sqrt(in_features)
        self.lr_mul, self.activate = lr_mul, activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        y = F.linear(x, self.weight * self.scale, bias)
        return scaled_lrelu(y) if self.activate else y

    def extra_repr(self) -> str:
        out, inp = self.weight.shape
        return f"{inp} -> {out}, lr_mul={self.lr_mul}, activate={self.activate}"


class EqualizedConv2d(nn.Module):
    """x [N, in, H, W] -> [N, out, H, W] ('same' padding); ``down``: 2x2 average pooling
    first -> [N, out, H/2, W/2]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 bias: bool = True, activate: bool = False, down: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size,
                                               kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding, self.activate, self.down = kernel_size // 2, activate, down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.down:  # low-pass and subsample first, as the paper's filter + stride-2 conv:
            x = F.avg_pool2d(x, 2)  # the convolution then runs at the lower resolution
        y = F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)
        return scaled_lrelu(y) if self.activate else y

    def extra_repr(self) -> str:
        out, inp, k, _ = self.weight.shape
        return f"{inp} -> {out}, kernel={k}, activate={self.activate}, down={self.down}"


def spectral_instead_of_equalized(net: nn.Module) -> None:
    """Spectral normalisation in place of the runtime scale in every equalised layer of
    ``net`` (the effective weights are spectrally normalised, so no scale is applied)."""
    for m in net.modules():
        if isinstance(m, (EqualizedConv2d, EqualizedLinear)):
            m.scale = 1.0
            spectral_norm(m)
