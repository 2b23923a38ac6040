"""StyleGAN2 generator and discriminator, Karras et al. 2020, "Analyzing and Improving the
Image Quality of StyleGAN" (config E/F networks, at a configurable scale).

G = synthesis(mapping(z)):

- mapping: z normalised to unit second moment, then ``mapping_layers`` equalised fully
  connected layers (learning-rate multiplier ``mapping_lr_mul``, 0.01 in the paper) -> w;
- synthesis: a learned constant start x start input, then per resolution a modulated 3x3
  convolution with weight demodulation (the first of each block upsamples 2x), per-pixel
  noise with a learned strength, bias and LeakyReLU; "skip" outputs: a modulated 1x1 toRGB at
  every resolution, upsampled and summed (section 4.1, Figure 7). One w per layer:
  ``num_ws`` = convolutions + 1 (a toRGB shares the w of the next block's first layer);
- style mixing regularisation (section 4 of StyleGAN, Karras et al. 2019; kept in
  StyleGAN2): in training mode, with probability ``mixing_prob`` the layers from a random
  crossover k on take the w of a second latent;
- a tracked average ``w_avg`` (a buffer, EMA of the batches' mean w in training-mode passes,
  decay ``w_avg_beta``) for the truncation trick w' = w_avg + psi (w - w_avg) (`truncated`).

D: the residual architecture (Figure 7c): a 1x1 fromRGB, then per resolution two 3x3
convolutions (the second downsamples) beside a 1x1 downsampled skip, summed and scaled by
1/sqrt(2); at the start side the minibatch standard deviation (group ``minibatch_stddev``,
Karras et al. 2018) as an extra channel, a 3x3 convolution, a fully connected layer (the
features) and the logit. Every layer has an equalised learning rate
(`gankit.layers.equalized`).

Departures at this scale: 2x upsampling is bilinear (then the 3x3 convolution) and 2x
downsampling 2x2 average pooling (before the convolution) instead of the paper's [1, 3, 3, 1]
FIR filters; G's output goes through tanh (``output_scale``) so
samples lie in [-1, 1] like every gankit generator; the start side is 4 or 7, so image sides
4 * 2^k and 7 * 2^k (8, 14, 16, 28, 32, ..., 256) work. Class conditioning: G ``concat``
(a normalised label code beside z into the mapping network, as the authors' later code);
D any of gankit's modes on its features (``projection`` is the authors' choice).
Randomness in training mode (the mixing coin, crossover, second latent and noise) is drawn
from ``noise_generator`` when given, else from torch's global RNG, which gankit seeds and
checkpoints; eval mode draws nothing (fixed noise maps, no mixing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from gankit.layers.conditioning import DiscriminatorConditioning, GeneratorConditioning
from gankit.layers.equalized import (
    EqualizedConv2d,
    EqualizedLinear,
    spectral_instead_of_equalized,
)
from gankit.layers.minibatch import group_stddev
from gankit.layers.modulated import StyleLayer, ToRGB, upsample2x
from gankit.layers.output import BoundedOutput, output_bounds
from gankit.layers.spectral import apply_spectral_norm
from gankit.models._base import (
    Discriminator,
    EqualizedDiscriminatorOptions,
    Generator,
    side_plan,
)
from gankit.registry import DISCRIMINATORS, GENERATORS
from gankit.utils.checks import at_least, fraction, one_of, positive

G_CONDITIONING = ("none", "concat")


def _supports(shape: tuple) -> bool:
    shape = tuple(shape)
    return len(shape) == 3 and shape[1] == shape[2] and side_plan(shape[1]) is not None


def _image_plan(shape: tuple, who: str) -> tuple[int, int, int]:
    """(channels, start side, stages) of a sample shape [C, R, R]; a ValueError otherwise."""
    if not _supports(shape):
        raise ValueError(f"{who} stylegan2 needs square images [C, R, R] with R = 4 * 2^k or "
                         f"7 * 2^k (8, 16, 28, 32, 64, 128, 256, ...), got sample shape "
                         f"{tuple(shape)}; set data.resolution to one of them")
    start, ups = side_plan(shape[1])
    return shape[0], start, ups


def _channels(width: int, max_channels: int, ups: int) -> list[int]:
    """Channels per side, start side first: ``width`` at the image side, doubled per
    halving, at most ``max_channels`` (the paper's min(channel_base / side, 512))."""
    return [min(width * 2 ** (ups - i), max_channels) for i in range(ups + 1)]


def _normalize(x: torch.Tensor) -> torch.Tensor:
    """Each row scaled to unit second moment (the mapping network's input normalisation)."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


@GENERATORS.register("stylegan2", "StyleGAN2 G: mapping, modulated convs, noise, skip "
                                  "outputs (Karras 2020)")
class StyleGAN2Generator(Generator):
    """(z [N, z_dim], c [N]) -> images [N, C, R, R] in [-1, 1]; ``mapping`` (z -> w
    [N, w_dim]) and ``synthesis`` (ws [N, num_ws, w_dim] -> images) are exposed."""

    supports_truncation: ClassVar[bool] = True
    test_options: ClassVar[dict] = {"width": 8, "max_channels": 16, "w_dim": 16,
                                    "mapping_layers": 2}

    @dataclass(frozen=True)
    class Options:
        width: int = 32  # channels at the image side; doubled per halving up to max_channels
        max_channels: int = 256  # channel cap (the paper's 512)
        w_dim: int = 256  # size of w and of the mapping network's layers (the paper's 512)
        mapping_layers: int = 8  # fully connected layers of the mapping network
        mapping_lr_mul: float = 0.01  # learning-rate multiplier of the mapping network
        mixing_prob: float = 0.9  # style mixing probability in training mode
        w_avg_beta: float = 0.995  # decay of the tracked average w used by truncation
        noise: bool = True  # per-pixel noise inputs with learned strengths
        conditioning: str = "none"  # none or concat (a label code beside z, into mapping)
        embed_dim: int = 0  # concat: size of a learned label embedding; 0 = one-hot
        output_scale: float = 1.0  # >1: clamp(scale*tanh, -1, 1), exact -1/+1 reachable

        def __post_init__(self) -> None:
            for name in ("width", "max_channels", "w_dim", "mapping_layers"):
                at_least(name, getattr(self, name), 1)
            positive("mapping_lr_mul", self.mapping_lr_mul)
            if not (isinstance(self.mixing_prob, (int, float)) and 0 <= self.mixing_prob <= 1):
                raise ValueError(f"mixing_prob must lie in [0, 1], got {self.mixing_prob!r}")
            fraction("w_avg_beta", self.w_avg_beta)
            one_of("conditioning", self.conditioning, G_CONDITIONING)
            at_least("embed_dim", self.embed_dim, 0, " (0 = one-hot)")
            output_bounds(self.output_scale)

    def __init__(self, z_dim: int, out_shape: tuple[int, ...], bounded: bool = True,
                 num_classes: int = 0, options: Options | None = None, **values) -> None:
        super().__init__(options, values)
        o = self.options
        channels, start, ups = _image_plan(out_shape, "generator")
        self.cond = GeneratorConditioning(o.conditioning, num_classes, o.embed_dim)
        self.conditional = self.cond.conditional
        self.z_dim, self.w_dim, self.start = z_dim, o.w_dim, start
        dims = [z_dim + self.cond.z_extra] + [o.w_dim] * o.mapping_layers
        self.mapping_net = nn.Sequential(*[
            EqualizedLinear(a, b, lr_mul=o.mapping_lr_mul, activate=True)
            for a, b in zip(dims[:-1], dims[1:])])
        self.register_buffer("w_avg", torch.zeros(o.w_dim))
        ch = _channels(o.width, o.max_channels, ups)
        self.const = nn.Parameter(torch.randn(ch[0], start, start))
        self.convs = nn.ModuleList([StyleLayer(ch[0], ch[0], o.w_dim, start, noise=o.noise)])
        self.to_rgbs = nn.ModuleList([ToRGB(ch[0], channels, o.w_dim)])
        for i in range(1, ups + 1):
            side = start * 2 ** i
            self.convs.append(StyleLayer(ch[i - 1], ch[i], o.w_dim, side, up=True,
                                         noise=o.noise))
            self.convs.append(StyleLayer(ch[i], ch[i], o.w_dim, side, noise=o.noise))
            self.to_rgbs.append(ToRGB(ch[i], channels, o.w_dim))
        self.num_ws = len(self.convs) + 1
        self.output = BoundedOutput(o.output_scale) if bounded else nn.Identity()

    @classmethod
    def supports(cls, shape: tuple) -> bool:
        return _supports(shape)

    def mapping(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """z [N, z_dim] (and labels c [N] when conditional) -> w [N, w_dim]."""
        c = self.cond.labels(c, z)
        x = _normalize(z)
        if self.cond.code is not None:
            x = torch.cat([x, _normalize(self.cond.code(c, z.dtype))], dim=1)
        return self.mapping_net(x)

    def synthesis(self, ws: torch.Tensor,
                  noise_generator: torch.Generator | None = None) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> images [N, C, R, R]. Layer i of ``convs`` takes ws[:, i];
        the toRGB of block b (0 = start side) takes ws[:, 2b + 1]."""
        if ws.dim() != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got "
                             f"{tuple(ws.shape)}")
        x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        x = self.convs[0](x, ws[:, 0], noise_generator)
        img = self.to_rgbs[0](x, ws[:, 1])
        for b in range(1, len(self.to_rgbs)):
            x = self.convs[2 * b - 1](x, ws[:, 2 * b - 1], noise_generator)
            x = self.convs[2 * b](x, ws[:, 2 * b], noise_generator)
            img = upsample2x(img) + self.to_rgbs[b](x, ws[:, 2 * b + 1])
        return self.output(img)

    def styles(self, z: torch.Tensor, c: torch.Tensor | None = None,
               noise_generator: torch.Generator | None = None) -> torch.Tensor:
        """ws [N, num_ws, w_dim] for z: w broadcast to every layer. In training mode it also
        updates ``w_avg`` and mixes styles: it draws (in this order) a coin u ~ U(0, 1), a
        crossover k ~ U{1, ..., num_ws - 1} and a second latent z2; if u < mixing_prob the
        layers k and after take mapping(z2)."""
        w = self.mapping(z, c)
        ws = w.unsqueeze(1).expand(-1, self.num_ws, -1)
        if not self.training:
            return ws
        with torch.no_grad():
            self.w_avg.lerp_(w.detach().float().mean(dim=0), 1.0 - self.options.w_avg_beta)
        if self.options.mixing_prob == 0:
            return ws
        gen, dev = noise_generator, z.device
        coin = torch.rand((), generator=gen, device=dev)
        cut = torch.randint(1, self.num_ws, (), generator=gen, device=dev)
        z2 = torch.randn(z.shape, generator=gen, device=dev, dtype=z.dtype)
        w2 = self.mapping(z2, c)
        # no host sync: the crossover becomes a mask; no mixing is a crossover at num_ws
        cut = torch.where(coin < self.options.mixing_prob, cut, torch.full_like(cut, self.num_ws))
        later = (torch.arange(self.num_ws, device=dev) >= cut)[None, :, None]
        return torch.where(later, w2.unsqueeze(1), ws)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None,
                noise_generator: torch.Generator | None = None) -> torch.Tensor:
        return self.synthesis(self.styles(z, c, noise_generator), noise_generator)

    def truncate_w(self, w: torch.Tensor, psi: float) -> torch.Tensor:
        """w_avg + psi (w - w_avg) for w [..., w_dim], exactly w_avg at psi 0 and w at 1."""
        return torch.lerp(self.w_avg.to(w.dtype).expand_as(w), w, float(psi))

    def truncated(self, z: torch.Tensor, c: torch.Tensor | None, psi: float) -> torch.Tensor:
        """Images of z with the truncation trick, w' = w_avg + psi (w - w_avg) (no mixing,
        no update of w_avg): psi = 1 is plain sampling, psi = 0 gives G's "mean" image."""
        psi = float(psi)
        if not math.isfinite(psi):
            raise ValueError(f"truncation psi must be a finite number (1 = none), got {psi}")
        w = self.truncate_w(self.mapping(z, c), psi)
        return self.synthesis(w.unsqueeze(1).expand(-1, self.num_ws, -1))

    def crossover(self, side: int) -> int:
        """The index of the first w used above image side ``side``: ws[:, :k] are the styles
        of the sides <= ``side`` (the "coarse" styles of a mixing grid at side 8)."""
        k, s = 1, self.start  # ws[:, 0] is the start side's layer
        while s * 2 <= side and k + 2 < self.num_ws:  # keep at least one fine style
            s, k = s * 2, k + 2
        return k


class _ResidualBlock(nn.Module):
    """[N, in, H, W] -> [N, out, H/2, W/2]: (skip + two 3x3 convolutions) / sqrt(2)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = EqualizedConv2d(in_channels, in_channels, 3, activate=True)
        self.conv2 = EqualizedConv2d(in_channels, out_channels, 3, activate=True, down=True)
        self.skip = EqualizedConv2d(in_channels, out_channels, 1, bias=False, down=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.skip(x) + self.conv2(self.conv1(x))) * (1.0 / math.sqrt(2.0))


@DISCRIMINATORS.register("stylegan2", "StyleGAN2 residual D with minibatch stddev "
                                      "(Karras 2020)")
class StyleGAN2Discriminator(Discriminator):
    """(images [N, C, R, R], c [N]) -> logits [N]; ``score`` also gives the features [N, F]."""

    test_options: ClassVar[dict] = {"width": 8, "max_channels": 16}

    @dataclass(frozen=True)
    class Options(EqualizedDiscriminatorOptions):
        width: int = 32  # channels at the image side; doubled per halving up to max_channels

    def __init__(self, in_shape: tuple[int, ...], num_classes: int = 0,
                 options: Options | None = None, **values) -> None:
        super().__init__(options, values)
        o = self.options
        channels, start, ups = _image_plan(in_shape, "discriminator")
        self.cond = DiscriminatorConditioning(o.conditioning, num_classes, o.embed_dim,
                                              channel_maps=True)
        self.conditional = self.cond.conditional
        ch = _channels(o.width, o.max_channels, ups)
        self.from_rgb = EqualizedConv2d(channels + self.cond.input_extra, ch[ups], 1,
                                        activate=True)
        self.blocks = nn.Sequential(*[_ResidualBlock(ch[i], ch[i - 1])
                                      for i in range(ups, 0, -1)])
        self.group_size = o.minibatch_stddev
        extra = 1 if self.group_size else 0
        self.epilogue = EqualizedConv2d(ch[0] + extra, ch[0], 3, activate=True)
        self.fc = EqualizedLinear(ch[0] * start * start, ch[0], activate=True)
        self.out = EqualizedLinear(ch[0], 1)
        self.cond.build_output(ch[0])
        if o.spectral_norm:
            spectral_instead_of_equalized(self)
            apply_spectral_norm(self.cond)

    @classmethod
    def supports(cls, shape: tuple) -> bool:
        return _supports(shape)

    def score(self, x: torch.Tensor, c: torch.Tensor | None = None) -> dict:
        h = self.blocks(self.from_rgb(self.cond.attach(x, c)))  # [N, ch0, start, start]
        if self.group_size:
            std = group_stddev(h, self.group_size)  # [N, 1]
            h = torch.cat([h, std[:, :, None, None].expand(-1, 1, *h.shape[2:])], dim=1)
        features = self.fc(self.epilogue(h).flatten(1))  # [N, ch0]
        logits = self.out(features).squeeze(1)
        return self.cond.finish({"logits": logits, "features": features}, c)
