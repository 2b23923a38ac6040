"""Progressively grown generator and discriminator, Karras et al. 2018, "Progressive Growing
of GANs for Improved Quality, Stability, and Variation" (PGGAN / ProGAN), at a configurable
scale.

Both networks are built for the target resolution R = 4 * 2^L with every block present,
and carry a growth state: a ``level`` k (0 = 4x4, L = R x R) and a fade-in ``alpha``
(section 3, Figure 2) that say which blocks are active. `set_growth` changes it; the
``growth`` hook (`gankit.hooks.growth`) sets it from the training step.

- G (Table 2): the latent (with the label code under ``concat``) normalised to unit mean
  square, a dense layer to a 4x4 map and a 3x3 convolution, then per level a nearest 2x
  upsampling and two 3x3 convolutions; LeakyReLU(0.2) and pixelwise feature normalisation
  (`gankit.layers.pixelnorm`) after every convolution; a 1x1 toRGB per level. At level k
  with alpha a the image is (1 - a) * up2(toRGB_{k-1}(h_{k-1})) + a * toRGB_k(h_k), at side
  r_k = 4 * 2^k.
- D mirrors it: a 1x1 fromRGB per level, per level two 3x3 convolutions and 2x2 average
  pooling; at level k, h = (1 - a) * fromRGB_{k-1}(pool(x)) + a * block_k(fromRGB_k(x));
  at 4x4 the minibatch standard deviation (Karras et al. 2018, section 3) as an extra
  channel, a 3x3 convolution, a dense 4x4 -> 1 layer (the features) and the linear logit.
- Every layer has an equalised learning rate (`gankit.layers.equalized`, section 4.1).

Fixed-size interface (a choice of gankit, not in the paper): G always returns R x R
images, its r_k x r_k output nearest-upsampled by repetition, and D average-pools its
R x R input down to r_k x r_k first; so the loop, augmentations, sample grids, metrics and
export see one shape for the whole run while the networks compute at the current
resolution, as the paper trains. The real images are brought to the current resolution
(and blended during a fade-in) by `real_images_at`. D's pooling to r_k passes the gradient
of subsampling (`critic_pool`), so on these block-constant images a gradient penalty or R1
at R x R measures exactly the gradient norm with respect to the r_k x r_k pixels, the
paper's penalty, and G's gradient is exact.

Departures at this scale: channels ``width`` at the target side doubled per halving up to
``max_channels`` (the paper: min(16384 / side, 512)); G's output goes through tanh
(``output_scale``) so samples lie in [-1, 1] like every gankit generator (the paper's is
linear; the fade blends the toRGB outputs before it). Class conditioning: G ``concat``
(a label code beside z, as the paper's CIFAR-10 runs), D any of gankit's modes on its
features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from gankit.layers.conditioning import DiscriminatorConditioning, GeneratorConditioning
from gankit.layers.equalized import (
    EqualizedConv2d,
    EqualizedLinear,
    scaled_lrelu,
    spectral_instead_of_equalized,
)
from gankit.layers.minibatch import group_stddev
from gankit.layers.output import BoundedOutput, output_bounds
from gankit.layers.pixelnorm import pixel_norm
from gankit.layers.spectral import apply_spectral_norm
from gankit.models._base import (
    Discriminator,
    EqualizedDiscriminatorOptions,
    Generator,
)
from gankit.registry import DISCRIMINATORS, GENERATORS
from gankit.utils.checks import at_least, one_of

G_CONDITIONING = ("none", "concat")
MIN_SIDE, MAX_SIDE = 8, 1024  # one level above 4x4 at least; the paper's largest side


# -- resolutions --------------------------------------------------------------------------------
def num_levels(shape: tuple) -> int | None:
    """L for square images [C, R, R] with R = 4 * 2^L in 8..1024, None otherwise."""
    shape = tuple(shape)
    if len(shape) != 3 or shape[1] != shape[2]:
        return None
    side = shape[1]
    if not (MIN_SIDE <= side <= MAX_SIDE) or side & (side - 1):
        return None
    return side.bit_length() - 3  # 8 -> 1, 32 -> 3, 256 -> 6


def _levels_or_error(shape: tuple, who: str) -> int:
    levels = num_levels(shape)
    if levels is None:
        raise ValueError(f"{who} pggan needs square images [C, R, R] with R a power of 2 from "
                         f"{MIN_SIDE} to {MAX_SIDE}, got sample shape {tuple(shape)}; set "
                         f"data.resolution to one of them (e.g. 32)")
    return levels


def side_at(level: int) -> int:
    """The image side of ``level``: 4 * 2^level."""
    return 4 * 2 ** level


def upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """[N, C, H, W] -> [N, C, factor * H, factor * W], each pixel repeated (nearest)."""
    return x if factor == 1 else F.interpolate(x, scale_factor=factor, mode="nearest")


def downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """[N, C, H, W] -> [N, C, H / factor, W / factor] by average pooling."""
    return x if factor == 1 else F.avg_pool2d(x, factor)


def critic_pool(x: torch.Tensor, factor: int) -> torch.Tensor:
    """`downsample`'s value with the gradient of subsampling (the top-left pixel of each
    block): for an image whose factor x factor blocks are constant (every input D gets in
    training) both are the same function, and with this gradient ||dD/dx|| at R x R equals
    ||dD/dy|| at the current side (average pooling's would be 1 / factor of it), so
    WGAN-GP's and R1's penalties are the paper's at every level."""
    if factor == 1:
        return x
    picked = x[:, :, ::factor, ::factor]
    return picked + (F.avg_pool2d(x, factor) - picked).detach()


def real_images_at(real: torch.Tensor, level: int, alpha: float, levels: int) -> torch.Tensor:
    """The real batch [N, C, R, R] as D sees it at (``level``, ``alpha``) (section 3 and
    the authors' code): average-pooled to the current side r, during a fade-in blended as
    (1 - alpha) * up2(pool2(x_r)) + alpha * x_r, then nearest-upsampled back to R x R."""
    factor = 2 ** (levels - level)
    x = downsample(real, factor)
    if level > 0 and alpha < 1:
        low = upsample(downsample(x, 2), 2)
        x = low + alpha * (x - low)
    return upsample(x, factor)


# -- growth state -------------------------------------------------------------------------------
class Growing:
    """The growth state of a progressively grown network: ``level`` (0 = 4x4, ``levels`` =
    the target side) and fade-in ``alpha`` in [0, 1], plain Python numbers that the forward
    pass reads (so tracing and export fix them), mirrored in a float64 buffer ``growth``
    ([level, alpha]) that checkpoints carry. A fresh network is fully grown (level
    ``levels``, alpha 1). Level k at alpha 0 computes level k - 1 at alpha 1 (the same
    images)."""

    levels: int
    level: int
    alpha: float

    def _init_growth(self, levels: int) -> None:
        self.levels = levels
        self.register_buffer("growth", torch.tensor([float(levels), 1.0], dtype=torch.float64))
        self.level, self.alpha = levels, 1.0

    def set_growth(self, level: int, alpha: float) -> None:
        """Make ``level`` (0..levels) the current one with fade-in ``alpha`` in [0, 1]
        (level 0 has no fade-in: alpha 1)."""
        if isinstance(level, bool) or not isinstance(level, int) or not \
                0 <= level <= self.levels:
            raise ValueError(f"growth level must be an integer in 0..{self.levels} (4x4 to "
                             f"{side_at(self.levels)}x{side_at(self.levels)}), got {level!r}")
        if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
            raise ValueError(f"growth alpha must lie in [0, 1], got {alpha!r}")
        if level == 0 and alpha != 1:
            raise ValueError(f"growth level 0 (4x4) has no fade-in: alpha must be 1, got "
                             f"{alpha!r}")
        self.level, self.alpha = level, float(alpha)
        with torch.no_grad():
            self.growth.copy_(torch.tensor([float(level), float(alpha)], dtype=torch.float64))

    @property
    def resolution(self) -> int:
        """The side the network computes at now (4 * 2^level)."""
        return side_at(self.level)

    def _active(self) -> tuple[int, float]:
        """(level, alpha) to compute: level k at alpha 0 is level k - 1 at alpha 1."""
        if self.level > 0 and self.alpha == 0:
            return self.level - 1, 1.0
        return self.level, self.alpha

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        level, alpha = self.growth.tolist()  # the loaded buffer's values become the state
        self.level, self.alpha = int(level), float(alpha)

    def _idle(self, modules: list[tuple[str, nn.Module]]) -> set[str]:
        """The parameter names of ``modules`` ((attribute path, module) pairs)."""
        return {f"{path}.{name}" for path, module in modules
                for name, _ in module.named_parameters()}


# -- generator ----------------------------------------------------------------------------------
def _channels(width: int, max_channels: int, levels: int) -> list[int]:
    """Channels per level, 4x4 first: ``width`` at the target side, doubled per halving, at
    most ``max_channels``."""
    return [min(width * 2 ** (levels - j), max_channels) for j in range(levels + 1)]


class _UpBlock(nn.Module):
    """[N, in, H, W] -> [N, out, 2H, 2W]: nearest 2x, then two 3x3 convolutions, each with
    LeakyReLU(0.2) and pixel norm."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3, activate=True)
        self.conv2 = EqualizedConv2d(out_channels, out_channels, 3, activate=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pixel_norm(self.conv1(upsample(x, 2)))
        return pixel_norm(self.conv2(x))


@GENERATORS.register("pggan", "progressively grown G: pixel norm, equalised lr, fade-in "
                              "(Karras 2018)")
class PGGANGenerator(Growing, Generator):
    """(z [N, z_dim], c [N]) -> images [N, C, R, R] in [-1, 1], computed at the current
    level's side and nearest-upsampled to R (see the module docstring)."""

    test_options: ClassVar[dict] = {"width": 8, "max_channels": 16}

    @dataclass(frozen=True)
    class Options:
        width: int = 64  # channels at the target side; doubled per halving up to max_channels
        max_channels: int = 256  # channel cap (the paper's 512)
        conditioning: str = "none"  # none or concat (a label code beside z)
        embed_dim: int = 0  # concat: size of a learned label embedding; 0 = one-hot
        output_scale: float = 1.0  # >1: clamp(scale*tanh, -1, 1), exact -1/+1 reachable

        def __post_init__(self) -> None:
            at_least("width", self.width, 1)
            at_least("max_channels", self.max_channels, 1)
            one_of("conditioning", self.conditioning, G_CONDITIONING)
            at_least("embed_dim", self.embed_dim, 0, " (0 = one-hot)")
            output_bounds(self.output_scale)

    def __init__(self, z_dim: int, out_shape: tuple[int, ...], bounded: bool = True,
                 num_classes: int = 0, options: Options | None = None, **values) -> None:
        super().__init__(options, values)
        o = self.options
        levels = _levels_or_error(out_shape, "generator")
        self._init_growth(levels)
        self.cond = GeneratorConditioning(o.conditioning, num_classes, o.embed_dim)
        self.conditional = self.cond.conditional
        ch = _channels(o.width, o.max_channels, levels)
        self.start_channels = ch[0]
        # the paper's 4x4 "convolution" of the 1x1 latent: a dense layer, one bias per channel
        self.dense = EqualizedLinear(z_dim + self.cond.z_extra, ch[0] * 16, bias=False)
        self.dense_bias = nn.Parameter(torch.zeros(ch[0]))
        self.start_conv = EqualizedConv2d(ch[0], ch[0], 3, activate=True)
        self.blocks = nn.ModuleList([_UpBlock(ch[j - 1], ch[j]) for j in range(1, levels + 1)])
        self.to_rgb = nn.ModuleList([EqualizedConv2d(c, out_shape[0], 1) for c in ch])
        self.output = BoundedOutput(o.output_scale) if bounded else nn.Identity()

    @classmethod
    def supports(cls, shape: tuple) -> bool:
        return num_levels(shape) is not None

    def features(self, z: torch.Tensor, c: torch.Tensor | None, level: int) -> torch.Tensor:
        """h_level [N, ch, r, r]: the feature map of ``level``'s block (before toRGB)."""
        x = pixel_norm(self.cond.latent(z, c))  # the latent on the unit-mean-square sphere
        h = self.dense(x).view(-1, self.start_channels, 4, 4) + self.dense_bias[:, None, None]
        h = pixel_norm(scaled_lrelu(h))
        h = pixel_norm(self.start_conv(h))
        for block in self.blocks[:level]:
            h = block(h)
        return h

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        c = self.cond.labels(c, z)
        level, alpha = self._active()
        if alpha < 1:  # fade-in: the previous level's image beside the new block's
            prev = self.features(z, c, level - 1)
            low = upsample(self.to_rgb[level - 1](prev), 2)
            img = self.to_rgb[level](self.blocks[level - 1](prev))
            img = low + alpha * (img - low)
        else:
            img = self.to_rgb[level](self.features(z, c, level))
        return upsample(self.output(img), 2 ** (self.levels - level))

    def idle_parameters(self) -> set[str]:
        level, alpha = self._active()
        used_rgb = {level} | ({level - 1} if alpha < 1 else set())
        return self._idle([(f"blocks.{j}", b) for j, b in enumerate(self.blocks) if j >= level]
                          + [(f"to_rgb.{j}", m) for j, m in enumerate(self.to_rgb)
                             if j not in used_rgb])


# -- discriminator ------------------------------------------------------------------------------
class _DownBlock(nn.Module):
    """[N, in, H, W] -> [N, out, H/2, W/2]: two 3x3 convolutions with LeakyReLU(0.2), then
    2x2 average pooling."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = EqualizedConv2d(in_channels, in_channels, 3, activate=True)
        self.conv2 = EqualizedConv2d(in_channels, out_channels, 3, activate=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return downsample(self.conv2(self.conv1(x)), 2)


@DISCRIMINATORS.register("pggan", "progressively grown D: fromRGB per level, fade-in, "
                                  "minibatch stddev (Karras 2018)")
class PGGANDiscriminator(Growing, Discriminator):
    """(images [N, C, R, R], c [N]) -> logits [N], judged at the current level's side;
    ``score`` also gives the features [N, F]."""

    test_options: ClassVar[dict] = {"width": 8, "max_channels": 16}

    @dataclass(frozen=True)
    class Options(EqualizedDiscriminatorOptions):
        width: int = 64  # channels at the target side; doubled per halving up to max_channels

    def __init__(self, in_shape: tuple[int, ...], num_classes: int = 0,
                 options: Options | None = None, **values) -> None:
        super().__init__(options, values)
        o = self.options
        levels = _levels_or_error(in_shape, "discriminator")
        self._init_growth(levels)
        self.cond = DiscriminatorConditioning(o.conditioning, num_classes, o.embed_dim,
                                              channel_maps=True)
        self.conditional = self.cond.conditional
        ch = _channels(o.width, o.max_channels, levels)
        in_channels = in_shape[0] + self.cond.input_extra
        self.from_rgb = nn.ModuleList([EqualizedConv2d(in_channels, c, 1, activate=True)
                                       for c in ch])
        # blocks[j - 1] takes level j's side to level j - 1's
        self.blocks = nn.ModuleList([_DownBlock(ch[j], ch[j - 1]) for j in range(1, levels + 1)])
        self.group_size = o.minibatch_stddev
        self.final_conv = EqualizedConv2d(ch[0] + (1 if self.group_size else 0), ch[0], 3,
                                          activate=True)
        self.dense = EqualizedLinear(ch[0] * 16, ch[0], activate=True)  # the paper's 4x4 conv
        self.out = EqualizedLinear(ch[0], 1)
        self.cond.build_output(ch[0])
        if o.spectral_norm:
            spectral_instead_of_equalized(self)
            apply_spectral_norm(self.cond)

    @classmethod
    def supports(cls, shape: tuple) -> bool:
        return num_levels(shape) is not None

    def score(self, x: torch.Tensor, c: torch.Tensor | None = None) -> dict:
        level, alpha = self._active()
        x = critic_pool(self.cond.attach(x, c), 2 ** (self.levels - level))  # [N, C', r, r]
        h = self.from_rgb[level](x)
        if level > 0:
            h = self.blocks[level - 1](h)
            if alpha < 1:  # fade-in: the previous level's fromRGB on the pooled image
                low = self.from_rgb[level - 1](downsample(x, 2))
                h = low + alpha * (h - low)
        for j in range(level - 1, 0, -1):
            h = self.blocks[j - 1](h)  # [N, ch0, 4, 4] at the end
        if self.group_size:
            std = group_stddev(h, self.group_size)  # [N, 1]
            h = torch.cat([h, std[:, :, None, None].expand(-1, 1, *h.shape[2:])], dim=1)
        features = self.dense(self.final_conv(h).flatten(1))  # [N, ch0]
        logits = self.out(features).squeeze(1)
        return self.cond.finish({"logits": logits, "features": features}, c)

    def idle_parameters(self) -> set[str]:
        level, alpha = self._active()
        used_rgb = {level} | ({level - 1} if alpha < 1 else set())
        return self._idle([(f"blocks.{j}", b) for j, b in enumerate(self.blocks) if j >= level]
                          + [(f"from_rgb.{j}", m) for j, m in enumerate(self.from_rgb)
                             if j not in used_rgb])
