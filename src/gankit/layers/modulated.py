"""Modulated convolution with weight demodulation and per-pixel noise inputs, the layers of
StyleGAN2's synthesis network (Karras et al. 2020, section 2.2, eq. 1-3).

A style s [N, in] (an affine map of w) scales the input channels of the convolution weight
per sample, w'_ijk = s_i * w_ijk; demodulation divides each output channel's weights by
their norm, w''_ijk = w'_ijk / sqrt(sum_ik w'_ijk^2 + eps), so an input of independent
unit-variance entries gives unit-variance outputs (eq. 3). Both are applied to the
activations around one shared convolution, which equals convolving with the per-sample
weights (convolution is linear in them). Noise: a single-channel map of N(0, 1) per sample,
scaled by a learned per-layer strength (initialised at 0) and added before the bias and
activation; in eval mode a fixed map drawn at construction (a buffer, saved with the
weights) is used, so sampling draws nothing.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gankit.layers.equalized import EqualizedLinear, scaled_lrelu

DEMOD_EPS = 1e-8  # eq. 3's epsilon


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Bilinear 2x upsampling [N, C, H, W] -> [N, C, 2H, 2W] (in place of the paper's
    transposed convolution with a [1, 3, 3, 1] low-pass filter)."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     demodulate: bool = True) -> torch.Tensor:
    """x [N, in, H, W], weight [out, in, k, k] (already scaled), styles [N, in] ->
    [N, out, H, W] ('same' padding), each sample with its own modulated weights."""
    # Computed as scale input -> shared convolution -> scale output, which equals the
    # per-sample weights of eq. 1-3 (convolution is linear in the weights) and runs as one
    # ordinary batched convolution instead of N grouped ones: several times faster on CPUs.
    y = F.conv2d(x * styles[:, :, None, None].to(x.dtype), weight.to(x.dtype),
                 padding=weight.shape[-1] // 2)
    if demodulate:
        # sum_ik (w_ijk s_i)^2 = sum_i s_i^2 (sum_k w_ijk^2): [N, in] @ [in, out]
        norms = styles.square() @ weight.square().sum(dim=(2, 3)).t()  # [N, out]
        y = y * torch.rsqrt(norms + DEMOD_EPS)[:, :, None, None].to(y.dtype)
    return y


class ModulatedConv2d(nn.Module):
    """(x [N, in, H, W], w [N, w_dim]) -> [N, out, H', W']; ``up`` upsamples x 2x first."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int,
                 demodulate: bool = True, up: bool = False) -> None:
        super().__init__()
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)  # styles start at 1
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size,
                                               kernel_size))
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.demodulate, self.up = demodulate, up

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = upsample2x(x)
        return modulated_conv2d(x, self.weight * self.scale, self.affine(w), self.demodulate)


class StyleLayer(nn.Module):
    """Modulated 3x3 convolution, + noise * strength, + bias, scaled LeakyReLU:
    (x [N, in, H, W], w [N, w_dim]) -> [N, out, side, side]."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, side: int,
                 up: bool = False, noise: bool = True) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, up=up)
        self.use_noise = noise
        if noise:
            self.noise_strength = nn.Parameter(torch.zeros(()))
            self.register_buffer("noise_const", torch.randn(1, 1, side, side))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor,
                noise_generator: torch.Generator | None = None) -> torch.Tensor:
        y = self.conv(x, w)
        if self.use_noise:
            if self.training:  # fresh noise; the global RNG (seeded, checkpointed) by default
                noise = torch.randn(y.shape[0], 1, *y.shape[2:], device=y.device,
                                    dtype=y.dtype, generator=noise_generator)
            else:
                noise = self.noise_const
            y = y + noise * self.noise_strength
        return scaled_lrelu(y + self.bias[None, :, None, None])


class ToRGB(nn.Module):
    """Modulated 1x1 convolution without demodulation, + bias: [N, in, H, W] -> [N, C, H, W]."""

    def __init__(self, in_channels: int, channels: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None]
