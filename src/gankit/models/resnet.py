"""Residual G and D of SNGAN (Miyato et al. 2018), SAGAN (Zhang et al. 2019) and BigGAN
(Brock et al. 2019), for square images of side 32, 64, 128 or 256 with 1 or 3 channels.

G: a linear layer from z to a 4x4 map of ``width * multipliers[0]`` channels, one
`gankit.layers.residual.UpBlock` per doubling (block i outputs ``width * multipliers[i+1]``
channels), then BN -> ReLU -> conv3x3 -> tanh (`gankit.layers.output`). D: one
`DownBlock` per ``multipliers`` entry (Miyato's optimised block first; the first blocks
halve the side down to ``last_side``, the rest keep it), ReLU, a sum over positions and a
linear head. The default multipliers are BigGAN's tables (its appendix B; at 32x32 its
CIFAR networks, 4 * width channels everywhere, as SNGAN's CIFAR G at width 64).

Options: ``attention`` puts a `gankit.layers.attention.SelfAttention` after the block whose
output has that side (SAGAN); ``spectral_norm`` normalises every conv and linear layer
(SNGAN's D; SAGAN and BigGAN also G). Class conditioning reuses
`gankit.layers.conditioning`: G ``concat`` or ``cbn``, D ``concat``, ``projection`` or
``acgan``. BigGAN's G adds a shared class embedding (``shared_embed_dim``) and a
hierarchical latent (``hierarchical``: z split into one chunk for the linear layer and one
per block); each block's BN then takes the vector [embedding, chunk]
(`gankit.layers.residual.LatentBatchNorm`). Such a G has the truncation trick
(`truncated`, `gankit.sampling.truncate_latent`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from gankit.layers.attention import SelfAttention
from gankit.layers.conditioning import (
    ConditionalBatchNorm,
    DiscriminatorConditioning,
    GeneratorConditioning,
)
from gankit.layers.minibatch import batch_features
from gankit.layers.output import BoundedOutput
from gankit.layers.residual import DownBlock, LatentBatchNorm, PlainNorm, UpBlock
from gankit.layers.spectral import apply_spectral_norm
from gankit.models._base import (
    Discriminator,
    Generator,
    check_discriminator_options,
    check_generator_options,
)
from gankit.registry import DISCRIMINATORS, GENERATORS
from gankit.sampling import truncate_latent
from gankit.utils.checks import all_at_least, at_least, one_of

SIDES = (32, 64, 128, 256)
INITS = ("xavier", "ortho")
# BigGAN's channel tables (BigGAN-PyTorch's G_arch / D_arch), as multiples of width
G_MULTIPLIERS = {32: (4, 4, 4, 4), 64: (16, 16, 8, 4, 2), 128: (16, 16, 8, 4, 2, 1),
                 256: (16, 16, 8, 8, 4, 2, 1)}
D_MULTIPLIERS = {32: (4, 4, 4, 4), 64: (1, 2, 4, 8, 16), 128: (1, 2, 4, 8, 16, 16),
                 256: (1, 2, 4, 8, 8, 16, 16)}


def _supported(shape: tuple, any_channels: bool = False) -> bool:
    """[C, R, R] with R in `SIDES` and C 1 or 3 (any C for D, whose input may be PacGAN's
    stack of ``pack`` samples)."""
    return len(shape) == 3 and (shape[0] in (1, 3) or any_channels and shape[0] >= 1) \
        and shape[1] == shape[2] and shape[1] in SIDES


def _check_shape(shape: tuple, who: str) -> tuple[int, int]:
    shape = tuple(shape)
    if not _supported(shape, any_channels=who == "discriminator"):
        raise ValueError(f"{who} resnet needs square images [C, R, R] with C 1 or 3 and R one "
                         f"of {', '.join(map(str, SIDES))}, got sample shape {shape}; set "
                         "data.resolution=32 (or 64, 128, 256), or use dcgan/mlp")
    return shape[0], shape[1]


def _multipliers(given: tuple[int, ...], table: dict, side: int, who: str,
                 need: str, ok) -> tuple[int, ...]:
    mult = tuple(given) or table[side]
    if not ok(len(mult)):
        raise ValueError(f"{who}.multipliers={list(mult)} at {side}x{side} needs {need} "
                         f"entries; leave it empty for BigGAN's table {list(table[side])}")
    return mult


def _check_attention(sides: tuple[int, ...], valid: list[int], who: str) -> None:
    bad = [s for s in sides if s not in valid]
    if bad:
        raise ValueError(f"{who}.attention={list(sides)}: {bad} is not a side a block of this "
                         f"{who} outputs; choose among {valid}")


@torch.no_grad()
def _init(module: nn.Module, scheme: str) -> None:
    """SNGAN's Xavier-uniform (gain sqrt 2 in the blocks' 3x3 convs, 1 elsewhere, as
    Mimicry and the authors' chainer code) or BigGAN's orthogonal initialisation of every
    conv and linear layer; biases 0. Embedding tables keep their own initialisation."""
    for name, m in module.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if scheme == "ortho":
                nn.init.orthogonal_(m.weight)
            else:
                block_conv = name.endswith(("conv1", "conv2"))
                nn.init.xavier_uniform_(m.weight, math.sqrt(2.0) if block_conv else 1.0)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@GENERATORS.register("resnet", "residual G of SNGAN/SAGAN/BigGAN (Miyato 2018; Brock 2019)")
class ResNetGenerator(Generator):
    """(z [N, z_dim], c [N]) -> images [N, C, R, R] in [-1, 1]."""

    test_options = {"width": 2, "attention": (16,)}

    @dataclass(frozen=True)
    class Options:
        width: int = 64  # channel unit: stage i has width * multipliers[i] channels
        multipliers: tuple[int, ...] = ()  # 4x4 input then each block; () = BigGAN's table
        attention: tuple[int, ...] = ()  # sides after whose block self-attention sits (SAGAN)
        spectral_norm: bool = False  # spectral norm on every conv and linear (SAGAN, BigGAN)
        conditioning: str = "none"  # none, concat (label code + z) or cbn (class BN)
        embed_dim: int = 0  # concat: size of a learned label embedding; 0 = one-hot
        shared_embed_dim: int = 0  # >0: BigGAN's shared class embedding (needs cbn)
        hierarchical: bool = False  # BigGAN: z split across the linear layer and each block
        init: str = "xavier"  # weight init: xavier (SNGAN) or ortho (BigGAN)
        output_scale: float = 1.0  # >1: clamp(scale*tanh, -1, 1), exact -1/+1 reachable

        def __post_init__(self) -> None:
            at_least("width", self.width, 1)
            if self.multipliers:
                all_at_least("multipliers", self.multipliers, 1)
            if self.attention:
                all_at_least("attention", self.attention, 8)
            at_least("shared_embed_dim", self.shared_embed_dim, 0, " (0 = none)")
            one_of("init", self.init, INITS)
            check_generator_options(self)
            if self.shared_embed_dim and self.conditioning != "cbn":
                raise ValueError(f"shared_embed_dim={self.shared_embed_dim} feeds the class "
                                 "embedding to conditional BatchNorm: it needs "
                                 "conditioning=cbn")

    @classmethod
    def supports(cls, shape: tuple) -> bool:
        return _supported(tuple(shape))

    def __init__(self, z_dim: int, out_shape: tuple[int, ...], bounded: bool = True,
                 num_classes: int = 0, options: Options | None = None, **values) -> None:
        super().__init__(options, values)
        o = self.options
        channels, side = _check_shape(out_shape, "generator")
        self.cond = GeneratorConditioning(o.conditioning, num_classes, o.embed_dim)
        self.conditional = self.cond.conditional
        ups = int(math.log2(side // 4))
        mult = _multipliers(o.multipliers, G_MULTIPLIERS, side, "generator",
                            f"{ups + 1} (the 4x4 input and {ups} blocks)", lambda n: n == ups + 1)
        _check_attention(o.attention, [4 * 2 ** (i + 1) for i in range(ups)], "generator")
        chs = [o.width * m for m in mult]
        # BigGAN's latent: one chunk of z for the linear layer, one per block
        self.hierarchical = o.hierarchical
        self.chunk = z_dim
        if o.hierarchical:
            if z_dim % (ups + 1):
                raise ValueError(f"generator.hierarchical splits z into {ups + 1} equal chunks "
                                 f"(the linear layer and {ups} blocks): z_dim={z_dim} is not a "
                                 f"multiple of {ups + 1}; set z_dim to e.g. {(ups + 1) * 32}")
            self.chunk = z_dim // (ups + 1)
        if o.conditioning == "cbn" and o.hierarchical and not o.shared_embed_dim:
            raise ValueError("generator.hierarchical with conditioning=cbn feeds [class "
                             "embedding, z chunk] to each BN: set generator.shared_embed_dim "
                             "(BigGAN: 128)")
        self.shared = nn.Embedding(num_classes, o.shared_embed_dim) \
            if o.shared_embed_dim else None
        cond_dim = o.shared_embed_dim + (self.chunk if o.hierarchical else 0)
        self.vector_bn = cond_dim > 0  # BigGAN's BN on [embedding, chunk]
        if self.vector_bn:
            norm = partial(LatentBatchNorm, cond_dim=cond_dim)
        elif o.conditioning == "cbn":
            norm = partial(ConditionalBatchNorm, num_classes=num_classes)
        else:
            norm = PlainNorm
        self.linear = nn.Linear(self.chunk + self.cond.z_extra, 16 * chs[0])
        self.blocks = nn.ModuleList(UpBlock(chs[i], chs[i + 1], norm) for i in range(ups))
        self.attention = nn.ModuleDict({str(s): SelfAttention(chs[int(math.log2(s // 4))])
                                        for s in o.attention})
        self.out = nn.Sequential(nn.BatchNorm2d(chs[-1]), nn.ReLU(),
                                 nn.Conv2d(chs[-1], channels, 3, 1, 1),
                                 BoundedOutput(o.output_scale) if bounded else nn.Identity())
        _init(self, o.init)
        if o.spectral_norm:
            apply_spectral_norm(self, embeddings=False)
        # the trick belongs to BigGAN's G: an instance with its latent options has it
        self.supports_truncation = o.hierarchical or self.shared is not None

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        c = self.cond.labels(c, z)
        chunks = z.split(self.chunk, dim=1) if self.hierarchical else (z,)
        embedded = self.shared(c) if self.shared is not None else None
        h = self.linear(self.cond.latent(chunks[0], c)).view(z.shape[0], -1, 4, 4)
        for i, block in enumerate(self.blocks):
            if self.vector_bn:
                parts = [embedded] if embedded is not None else []
                parts += [chunks[i + 1]] if self.hierarchical else []
                cond = torch.cat(parts, dim=1)
            else:
                cond = c
            h = block(h, cond)
            side = str(int(h.shape[-1]))  # int: under tracing a shape entry is a tensor
            if side in self.attention:
                h = self.attention[side](h)
        return self.out(h)

    def truncated(self, z: torch.Tensor, c: torch.Tensor | None, psi: float) -> torch.Tensor:
        """BigGAN's truncation trick: ``self(truncate_latent(z, psi), c)``; only a G with a
        shared embedding or a hierarchical latent (BigGAN) has it."""
        if not self.supports_truncation:
            raise ValueError("--truncation: this generator (resnet without BigGAN's shared "
                             "embedding or hierarchical latent) has no truncation trick; "
                             "--truncation applies to biggan and stylegan2 runs")
        return self(truncate_latent(z, psi), c)


@DISCRIMINATORS.register("resnet", "residual D of SNGAN/SAGAN/BigGAN (Miyato 2018; Brock 2019)")
class ResNetDiscriminator(Discriminator):
    """(images [N, C, R, R], c [N]) -> logits [N]."""

    test_options = {"width": 2, "attention": (16,)}

    @dataclass(frozen=True)
    class Options:
        width: int = 64  # channel unit: block i outputs width * multipliers[i] channels
        multipliers: tuple[int, ...] = ()  # one per block; () = BigGAN's table
        last_side: int = 4  # blocks halve the side down to this (SNGAN's CIFAR D: 8)
        attention: tuple[int, ...] = ()  # sides after whose block self-attention sits (SAGAN)
        spectral_norm: bool = False  # spectral norm on every layer (SNGAN)
        minibatch_discrimination: int = 0  # kernels of minibatch discrimination (Salimans 2016)
        minibatch_stddev: int = 0  # group size of the minibatch stddev feature (Karras 2018)
        conditioning: str = "none"  # none, concat (cGAN), projection or acgan (class head)
        embed_dim: int = 0  # concat: channels of a learned label embedding; 0 = one-hot maps
        init: str = "xavier"  # weight init: xavier (SNGAN) or ortho (BigGAN)

        def __post_init__(self) -> None:
            at_least("width", self.width, 1)
            if self.multipliers:
                all_at_least("multipliers", self.multipliers, 1)
            if self.attention:
                all_at_least("attention", self.attention, 4)
            if self.last_side not in (4, 8, 16, 32, 64, 128):
                raise ValueError(f"last_side must be a power of 2 from 4 to 128, got "
                                 f"{self.last_side!r}")
            one_of("init", self.init, INITS)
            check_discriminator_options(self)

    @classmethod
    def supports(cls, shape: tuple) -> bool:
        return _supported(tuple(shape), any_channels=True)

    def __init__(self, in_shape: tuple[int, ...], num_classes: int = 0,
                 options: Options | None = None, **values) -> None:
        super().__init__(options, values)
        o = self.options
        channels, side = _check_shape(in_shape, "discriminator")
        if o.last_side >= side:
            raise ValueError(f"discriminator.last_side={o.last_side} must be below the image "
                             f"side {side}")
        self.cond = DiscriminatorConditioning(o.conditioning, num_classes, o.embed_dim,
                                              channel_maps=True)
        self.conditional = self.cond.conditional
        downs = int(math.log2(side // o.last_side))
        mult = _multipliers(o.multipliers, D_MULTIPLIERS, side, "discriminator",
                            f"at least {downs} (one per halving down to {o.last_side})",
                            lambda n: n >= downs)
        sides = [side // 2 ** min(i + 1, downs) for i in range(len(mult))]
        _check_attention(o.attention, sorted(set(sides), reverse=True), "discriminator")
        chs = [channels + self.cond.input_extra] + [o.width * m for m in mult]
        layers: list[nn.Module] = []
        for i in range(len(mult)):
            layers.append(DownBlock(chs[i], chs[i + 1], down=i < downs, first=i == 0))
            if sides[i] in o.attention and sides[i] not in sides[:i]:
                layers.append(SelfAttention(chs[i + 1]))
        # ReLU, then the sum over positions: features [N, C]
        self.body = nn.Sequential(*layers, nn.ReLU(), _SumPool())
        self.batch_layers, feature_width = batch_features(chs[-1], o.minibatch_discrimination,
                                                          o.minibatch_stddev)
        self.head = nn.Linear(feature_width, 1)
        self.cond.build_output(chs[-1])
        _init(self, o.init)
        if o.spectral_norm:  # covers the projection embedding and the class head too
            apply_spectral_norm(self)


class _SumPool(nn.Module):
    """[N, C, H, W] -> [N, C]: global sum pooling (SNGAN, BigGAN)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=(2, 3))
