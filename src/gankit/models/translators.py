"""Image-to-image generators and the PatchGAN discriminator.

A `Translator` maps a source image to an output image: ``forward(source [N, C', H', W'],
c=None) -> [N, C, H, W]`` (``takes = "image"``; the loop feeds it the batch's sources,
`gankit.training.task`). Its constructor gets the target's ``out_shape`` and the source's
``in_shape`` (None: the target's channels at the side the family expects).

- `UNet` (``unet``; Isola et al. 2017, pix2pix, appendix 6.1.1): 4x4 stride-2 convolutions
  down to the bottleneck (LeakyReLU 0.2, BatchNorm but on the first), transposed
  convolutions up with a skip from the mirrored encoder layer, dropout 0.5 on the three
  innermost decoder layers, tanh out. Channels width * (1, 2, 4, 8, 8, ...).
- `ResnetTranslator` (``resnet_translator``; Zhu et al. 2017, CycleGAN, appendix 7.2, after
  Johnson et al. 2016): c7s1-w, two stride-2 convolutions, n residual blocks, two
  stride-2 transposed convolutions, c7s1-C, instance norm and reflection padding, tanh.
- `PatchGAN` (``patchgan``; pix2pix appendix 6.1.2): 4x4 convolutions C64-C128-...-C(w 2^n)
  with stride 2, one more at stride 1, then a 1-channel convolution: one logit per patch
  ([N, h, w]); ``n_layers`` 3 gives the 70x70 receptive field. With ``conditional_on_source``
  (pix2pix) it scores the source and the image concatenated on the channel axis.

Two unpaired domains (``unpaired:`` data, CycleGAN): `DomainPair` holds one network per
domain and applies each to its half of the stacked channels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from gankit.layers.spectral import apply_spectral_norm
from gankit.models._base import Discriminator, Generator, UnconditionalOptions
from gankit.registry import DISCRIMINATORS, GENERATORS
from gankit.utils.checks import at_least, fraction, one_of

NORMS = ("batch", "instance", "none")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """BatchNorm, InstanceNorm (no affine, no running statistics: CycleGAN's) or nothing."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels)
    return nn.Identity()


def _square_image(shape: tuple, who: str) -> tuple[int, int]:
    if len(shape) != 3 or shape[1] != shape[2] or shape[0] < 1:
        raise ValueError(f"{who} needs square images [C, S, S], got {tuple(shape)}; set "
                         f"data.resolution")
    return shape[0], shape[1]


def _init_normal(module: nn.Module) -> None:
    """pix2pix/CycleGAN initialisation: conv weights N(0, 0.02), norm gains N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class Translator(Generator):
    """Base of the image-to-image generators: G(source, c=None) -> image."""

    takes: ClassVar[str] = "image"
    scale: ClassVar[int] = 1  # output side / source side (super-resolution: its factor)

    @classmethod
    def source_shape(cls, out_shape: tuple, options=None) -> tuple:
        """The default source shape for ``out_shape``: same channels, side / scale."""
        if len(out_shape) == 1:  # vectors reconstruct themselves
            return tuple(out_shape)
        scale = getattr(options, "scale", cls.scale) if options is not None else \
            cls.test_options.get("scale", cls.scale)
        c, s = out_shape[0], out_shape[-1]
        return (c, s // scale, s // scale)


def _ends(out_shape, in_shape, cls, options, who) -> tuple[int, int, int]:
    """(source channels, target channels, target side), checked against the family's scale."""
    c_out, side = _square_image(tuple(out_shape), who)
    src = tuple(in_shape) if in_shape is not None else cls.source_shape(out_shape, options)
    c_in, src_side = _square_image(src, who)
    scale = getattr(options, "scale", 1)
    if src_side * scale != side:
        raise ValueError(f"{who}: sources of side {src_side} do not give {side}-pixel images "
                         f"at scale {scale}; the source side must be the target's / {scale}")
    return c_in, c_out, side


def _even_depth(side: int, most: int = 8) -> int:
    depth = 0
    while side % 2 == 0 and depth < most and side > 1:
        side //= 2
        depth += 1
    return depth


@GENERATORS.register("unet", "pix2pix U-Net translator: skips, dropout (Isola et al. 2017)")
class UNet(Translator):
    """(source [N, C', S, S]) -> [N, C, S, S] in [-1, 1]."""

    test_options: ClassVar[dict] = {"width": 4}

    @dataclass(frozen=True)
    class Options(UnconditionalOptions):
        width: int = 64  # channels of the first encoder layer (the paper's 64)
        max_channels: int = 512  # channel cap (the paper's 8 * 64)
        depth: int = 0  # stride-2 levels; 0 = halve while the side is even (8 at most)
        dropout: float = 0.5  # on the 3 innermost decoder layers (the paper's noise)
        norm: str = "batch"  # batch (pix2pix), instance or none

        def __post_init__(self) -> None:
            super().__post_init__()
            at_least("width", self.width, 1)
            at_least("max_channels", self.max_channels, 1)
            at_least("depth", self.depth, 0, " (0 = as deep as the side allows)")
            fraction("dropout", self.dropout)
            one_of("norm", self.norm, NORMS)

    @classmethod
    def supports(cls, shape: tuple) -> bool:
        return len(shape) == 3 and shape[1] == shape[2] and shape[1] % 4 == 0

    def __init__(self, out_shape: tuple, z_dim: int = 0, bounded: bool = True,
                 num_classes: int = 0, in_shape: tuple | None = None,
                 options: Options | None = None, **values) -> None:
        super().__init__(options, values)
        o = self.options
        c_in, c_out, side = _ends(out_shape, in_shape, type(self), o, "unet")
        depth = o.depth or _even_depth(side)
        if side % 2 ** depth or depth < 2:
            raise ValueError(f"unet: depth {depth} needs an image side divisible by "
                             f"2^{depth} (at least 2 levels), got {side}")
        widths = [min(o.width * 2 ** i, o.max_channels) for i in range(depth)]
        self.down = nn.ModuleList()
        prev = c_in
        for i, w in enumerate(widths):
            layers = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(prev, w, 4, 2, 1, bias=o.norm != "batch" or i == 0))
            if 0 < i < depth - 1:  # no norm on the first layer nor on the 1x1 bottleneck
                layers.append(norm_layer(o.norm, w))
            self.down.append(nn.Sequential(*layers))
            prev = w
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):  # decoder level i mirrors encoder level i
            into = c_out if i == 0 else widths[i - 1]
            width_in = widths[i] if i == depth - 1 else widths[i] * 2  # skip concatenated
            layers = [nn.ReLU(), nn.ConvTranspose2d(width_in, into, 4, 2, 1,
                                                    bias=o.norm != "batch" or i == 0)]
            if i == 0:
                layers.append(nn.Tanh())
            else:
                layers.append(norm_layer(o.norm, into))
                if i >= depth - 3 and o.dropout > 0:  # the three innermost decoder layers
                    layers.append(nn.Dropout(o.dropout))
            self.up.append(nn.Sequential(*layers))
        _init_normal(self)

    def forward(self, source: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        skips = []
        h = source
        for layer in self.down:
            h = layer(h)
            skips.append(h)
        skips.pop()  # the bottleneck feeds the first decoder layer directly
        for layer in self.up:
            h = layer(h)
            if skips:
                h = torch.cat([h, skips.pop()], 1)
        return h


class _Residual(nn.Module):
    """x + conv-norm-ReLU-conv-norm(x), 3x3 with reflection padding (CycleGAN's R block)."""

    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), norm_layer(norm, channels),
            nn.ReLU(), nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3),
            norm_layer(norm, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@GENERATORS.register("resnet_translator", "CycleGAN ResNet translator: n residual blocks "
                                          "(Zhu et al. 2017; Johnson et al. 2016)")
class ResnetTranslator(Translator):
    """(source [N, C', S, S]) -> [N, C, S, S] in [-1, 1]; S divisible by 2^downsample.

    ``downsample`` 0 keeps every block at full resolution, as PixelDA's generator
    (Bousmalis et al. 2017, sec. 4): small digits keep their strokes, which two stride-2
    levels squeeze to a 7x7 map at 28x28."""

    test_options: ClassVar[dict] = {"width": 4, "blocks": 1}

    @dataclass(frozen=True)
    class Options(UnconditionalOptions):
        width: int = 64  # channels of the first layer; x2 per downsampling (the paper's 64)
        blocks: int = 0  # residual blocks; 0 = 6 for sides up to 128, else 9 (the paper's)
        norm: str = "instance"  # instance (CycleGAN), batch or none
        downsample: int = 2  # stride-2 levels before the blocks: 2 (CycleGAN), 1, 0 (PixelDA)

        def __post_init__(self) -> None:
            super().__post_init__()
            at_least("width", self.width, 1)
            at_least("blocks", self.blocks, 0, " (0 = by the side)")
            one_of("norm", self.norm, NORMS)
            if self.downsample not in (0, 1, 2):
                raise ValueError(f"downsample must be 0, 1 or 2 (stride-2 levels), got "
                                 f"{self.downsample!r}")

    @classmethod
    def supports(cls, shape: tuple) -> bool:
        return len(shape) == 3 and shape[1] == shape[2] and shape[1] % 4 == 0

    def __init__(self, out_shape: tuple, z_dim: int = 0, bounded: bool = True,
                 num_classes: int = 0, in_shape: tuple | None = None,
                 options: Options | None = None, **values) -> None:
        super().__init__(options, values)
        o = self.options
        c_in, c_out, side = _ends(out_shape, in_shape, type(self), o, "resnet_translator")
        levels = o.downsample
        if side % 2 ** levels:
            raise ValueError(f"resnet_translator with downsample={levels} needs an image side "
                             f"divisible by {2 ** levels}, got {side}; set data.resolution")
        blocks = o.blocks or (6 if side <= 128 else 9)
        w, n = o.width, o.norm
        bias = n != "batch"
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(c_in, w, 7, bias=bias),
                                   norm_layer(n, w), nn.ReLU()]
        for k in range(1, levels + 1):  # d2w, d4w
            layers += [nn.Conv2d(w * 2 ** (k - 1), w * 2 ** k, 3, 2, 1, bias=bias),
                       norm_layer(n, w * 2 ** k), nn.ReLU()]
        layers += [_Residual(w * 2 ** levels, n) for _ in range(blocks)]
        for k in range(levels, 0, -1):  # u2w, uw
            layers += [nn.ConvTranspose2d(w * 2 ** k, w * 2 ** (k - 1), 3, 2, 1, 1, bias=bias),
                       norm_layer(n, w * 2 ** (k - 1)), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(w, c_out, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        _init_normal(self)

    def forward(self, source: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(source)


@DISCRIMINATORS.register("patchgan", "PatchGAN: one logit per image patch, receptive field "
                                     "set by n_layers (Isola et al. 2017)")
class PatchGAN(Discriminator):
    """(images [N, C, S, S], source [N, C', S, S] when conditional_on_source) -> logits
    [N, h, w], one per patch; features [N, F] are the last hidden map's spatial means."""

    test_options: ClassVar[dict] = {"width": 4, "n_layers": 2}
    takes_source: bool = False  # set from the options: D scores (source, image) pairs

    @dataclass(frozen=True)
    class Options:
        width: int = 64  # channels of the first layer (the paper's 64)
        n_layers: int = 3  # stride-2 layers: receptive field 16, 34, 70, 142 for 1..4
        max_channels: int = 512  # channel cap (the paper's 8 * 64)
        norm: str = "batch"  # batch (pix2pix), instance (CycleGAN) or none
        conditional_on_source: bool = False  # pix2pix: D sees the source beside the image
        spectral_norm: bool = False

        def __post_init__(self) -> None:
            at_least("width", self.width, 1)
            at_least("n_layers", self.n_layers, 1)
            at_least("max_channels", self.max_channels, 1)
            one_of("norm", self.norm, NORMS)

    @classmethod
    def supports(cls, shape: tuple) -> bool:
        return len(shape) == 3 and shape[1] == shape[2] and \
            shape[1] >= 3 * 2 ** cls.test_options["n_layers"]

    @staticmethod
    def receptive_field(n_layers: int) -> int:
        """Side of the input patch one logit sees: 4x4 kernels, n_layers at stride 2, then
        two at stride 1."""
        field = 1
        for stride in [1, 1] + [2] * n_layers:  # from the output back to the input
            field = (field - 1) * stride + 4
        return field

    def __init__(self, in_shape: tuple, num_classes: int = 0, source_shape: tuple | None = None,
                 options: Options | None = None, **values) -> None:
        super().__init__(options, values)
        o = self.options
        channels, side = _square_image(tuple(in_shape), "patchgan")
        if side < 3 * 2 ** o.n_layers:  # the two stride-1 4x4 convs need a 3x3 map
            raise ValueError(f"patchgan with n_layers={o.n_layers} needs images of at least "
                             f"{3 * 2 ** o.n_layers}x{3 * 2 ** o.n_layers}, got {side}; lower "
                             f"discriminator.n_layers")
        self.takes_source = o.conditional_on_source
        if self.takes_source:
            channels += (source_shape or in_shape)[0]
        use_norm = "none" if o.spectral_norm else o.norm
        bias = use_norm != "batch"
        layers: list[nn.Module] = [nn.Conv2d(channels, o.width, 4, 2, 1), nn.LeakyReLU(0.2)]
        ch = o.width
        for i in range(1, o.n_layers + 1):  # n_layers - 1 more at stride 2, one at stride 1
            nxt = min(o.width * 2 ** i, o.max_channels)
            stride = 2 if i < o.n_layers else 1
            layers += [nn.Conv2d(ch, nxt, 4, stride, 1, bias=bias), norm_layer(use_norm, nxt),
                       nn.LeakyReLU(0.2)]
            ch = nxt
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(ch, 1, 4, 1, 1)
        _init_normal(self)
        if o.spectral_norm:
            apply_spectral_norm(self)

    def score(self, x: torch.Tensor, c: torch.Tensor | None = None) -> dict:
        if self.takes_source:
            if c is None or c.dim() != 4:
                raise ValueError("patchgan with conditional_on_source scores (source, image) "
                                 "pairs: it needs the source images")
            x = torch.cat([c, x], 1)
        h = self.body(x)
        return {"logits": self.head(h).squeeze(1), "features": h.mean((2, 3))}


class DomainPair:
    """Two networks, ``first`` and ``second``, one per domain of stacked channels: an input
    [N, 2C, ...] goes to the first on channels [:C] and to the second on [C:]."""

    first: nn.Module
    second: nn.Module
    split: int

    def halves(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[:, :self.split], x[:, self.split:]


class TranslatorPair(DomainPair, Generator):  # built by the loop's state for unpaired data
    """CycleGAN's two generators: [a | b] -> [G_AB(a) | G_BA(b)]."""

    takes: ClassVar[str] = "image"

    def __init__(self, make: Callable[[], nn.Module], split: int) -> None:
        nn.Module.__init__(self)
        self.first, self.second = make(), make()
        self.split = split
        self.options = self.first.options

    def forward(self, source: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        a, b = self.halves(source)
        return torch.cat([self.first(a), self.second(b)], 1)

    def reconstruct(self, fake: torch.Tensor) -> torch.Tensor:
        """The cycle: [fake_b | fake_a] -> [G_BA(fake_b) | G_AB(fake_a)], which should equal
        the source [a | b]."""
        fake_b, fake_a = self.halves(fake)
        return torch.cat([self.second(fake_b), self.first(fake_a)], 1)


class DiscriminatorPair(DomainPair, Discriminator):
    """CycleGAN's two discriminators: [b | a] -> logits of D_B(b) and D_A(a), stacked on a
    last axis; features concatenated."""

    def __init__(self, make: Callable[[], nn.Module], split: int) -> None:
        nn.Module.__init__(self)
        self.first, self.second = make(), make()
        self.options = self.first.options
        self.split = split
        self.takes_source = self.first.takes_source

    def score(self, x: torch.Tensor, c: torch.Tensor | None = None) -> dict:
        b, a = self.halves(x)
        cb, ca = self.halves(c) if c is not None and self.takes_source else (None, None)
        first, second = self.first.score(b, cb), self.second.score(a, ca)
        return {"logits": torch.stack([first["logits"], second["logits"]], -1),
                "features": torch.cat([first["features"], second["features"]], 1)}
