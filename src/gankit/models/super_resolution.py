"""Super-resolution generators and the SRGAN discriminator.

- `SRResNet` (``srresnet``; Ledig et al. 2017, SRGAN, fig. 4): 9x9 conv + PReLU, ``blocks``
  residual blocks (3x3 conv, BatchNorm, PReLU, 3x3 conv, BatchNorm, skip), 3x3 conv +
  BatchNorm with a skip over the trunk, then per x2 stage a 3x3 conv to 4x the channels,
  PixelShuffle(2) and PReLU; a 9x9 conv to the image. ``scale`` 2, 4 or 8.
- `RRDBNet` (``rrdb``; Wang et al. 2018, ESRGAN, fig. 4): no BatchNorm; a 3x3 conv, ``blocks``
  residual-in-residual dense blocks (three dense blocks of five 3x3 convs, ``growth``
  channels each, LeakyReLU 0.2, each residual scaled by 0.2), a 3x3 conv with a skip over
  the trunk, per x2 stage nearest upsampling + 3x3 conv + LeakyReLU, then two 3x3 convs.
- `SRGANDiscriminator` (``srgan``; SRGAN fig. 4): eight 3x3 convs 64-64-128-128-256-256-512-512
  (stride 2 on every second, BatchNorm but on the first, LeakyReLU 0.2), dense 1024,
  LeakyReLU, dense 1.

The generators' output layer is linear, as in the papers (a PSNR-oriented network should
not saturate at the ends of the range): its values are clipped to [-1, 1] with a
straight-through gradient (`clip_straight_through`), so G returns images in range and
learns as if the output were linear.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from gankit.layers.spectral import apply_spectral_norm
from gankit.models._base import Discriminator, UnconditionalOptions
from gankit.models.translators import Translator, _ends, _square_image
from gankit.registry import DISCRIMINATORS, GENERATORS
from gankit.utils.checks import at_least

SCALES = (2, 4, 8)


def clip_straight_through(x: torch.Tensor) -> torch.Tensor:
    """x clipped to [-1, 1] in the forward pass; the gradient passes as if unclipped."""
    return x + (x.clamp(-1, 1) - x).detach()


def pixel_shuffle_up(channels: int, act: nn.Module) -> nn.Sequential:
    """x2 sub-pixel upsampling (Shi et al. 2016): conv to 4C channels, PixelShuffle(2)."""
    return nn.Sequential(nn.Conv2d(channels, channels * 4, 3, 1, 1), nn.PixelShuffle(2), act)


@dataclass(frozen=True)
class _SROptions(UnconditionalOptions):
    """Checks shared by the SR generators' options."""

    def check(self) -> None:
        UnconditionalOptions.__post_init__(self)
        at_least("width", self.width, 1)
        at_least("blocks", self.blocks, 1)
        if self.scale not in SCALES:
            raise ValueError(f"scale must be 2, 4 or 8 (x2 stages), got {self.scale!r}")


def _sr_supported(shape: tuple, scale: int) -> bool:
    return len(shape) == 3 and shape[1] == shape[2] and shape[1] % scale == 0 and \
        shape[1] // scale >= 2


class _Block(nn.Module):
    """SRResNet's residual block."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels),
            nn.PReLU(channels), nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@GENERATORS.register("srresnet", "SRResNet: residual blocks + PixelShuffle x2 stages "
                                 "(Ledig et al. 2017)")
class SRResNet(Translator):
    """(low-resolution [N, C, S/scale, S/scale]) -> [N, C, S, S]."""

    test_options: ClassVar[dict] = {"width": 4, "blocks": 1, "scale": 4}

    @dataclass(frozen=True)
    class Options(_SROptions):
        width: int = 64  # feature channels (the paper's 64)
        blocks: int = 16  # residual blocks (the paper's 16)
        scale: int = 4  # 2, 4 or 8: data.lr_scale must equal it

        def __post_init__(self) -> None:
            self.check()

    @classmethod
    def supports(cls, shape: tuple) -> bool:
        return _sr_supported(shape, cls.test_options["scale"])

    def __init__(self, out_shape: tuple, z_dim: int = 0, bounded: bool = True,
                 num_classes: int = 0, in_shape: tuple | None = None,
                 options: Options | None = None, **values) -> None:
        super().__init__(options, values)
        o = self.options
        c_in, c_out, _ = _ends(out_shape, in_shape, type(self), o, "srresnet")
        w = o.width
        self.head = nn.Sequential(nn.Conv2d(c_in, w, 9, 1, 4), nn.PReLU(w))
        self.trunk = nn.Sequential(*[_Block(w) for _ in range(o.blocks)],
                                   nn.Conv2d(w, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w))
        stages = SCALES.index(o.scale) + 1
        self.up = nn.Sequential(*[pixel_shuffle_up(w, nn.PReLU(w)) for _ in range(stages)])
        self.tail = nn.Conv2d(w, c_out, 9, 1, 4)

    def forward(self, source: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h = self.head(source)
        return clip_straight_through(self.tail(self.up(h + self.trunk(h))))


class _Dense(nn.Module):
    """ESRGAN's dense block: five 3x3 convs, each on the concatenation of all before."""

    def __init__(self, channels: int, growth: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(channels + i * growth, growth if i < 4 else channels, 3, 1, 1)
            for i in range(5))
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for i, conv in enumerate(self.convs):
            h = conv(torch.cat(feats, 1))
            if i < 4:
                feats.append(self.act(h))
        return x + 0.2 * h


class _RRDB(nn.Module):
    """Residual in residual dense block: three dense blocks, residual scaled by 0.2."""

    def __init__(self, channels: int, growth: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*[_Dense(channels, growth) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.body(x)


@GENERATORS.register("rrdb", "ESRGAN RRDB network: residual-in-residual dense blocks, no "
                             "BatchNorm (Wang et al. 2018)")
class RRDBNet(Translator):
    """(low-resolution [N, C, S/scale, S/scale]) -> [N, C, S, S]."""

    test_options: ClassVar[dict] = {"width": 4, "blocks": 1, "growth": 2, "scale": 4}

    @dataclass(frozen=True)
    class Options(_SROptions):
        width: int = 64  # feature channels (the paper's 64)
        blocks: int = 23  # RRDB blocks (the paper's 23)
        growth: int = 32  # channels each dense conv adds (the paper's 32)
        scale: int = 4

        def __post_init__(self) -> None:
            self.check()
            at_least("growth", self.growth, 1)

    @classmethod
    def supports(cls, shape: tuple) -> bool:
        return _sr_supported(shape, cls.test_options["scale"])

    def __init__(self, out_shape: tuple, z_dim: int = 0, bounded: bool = True,
                 num_classes: int = 0, in_shape: tuple | None = None,
                 options: Options | None = None, **values) -> None:
        super().__init__(options, values)
        o = self.options
        c_in, c_out, _ = _ends(out_shape, in_shape, type(self), o, "rrdb")
        w = o.width
        self.head = nn.Conv2d(c_in, w, 3, 1, 1)
        self.trunk = nn.Sequential(*[_RRDB(w, o.growth) for _ in range(o.blocks)],
                                   nn.Conv2d(w, w, 3, 1, 1))
        self.up = nn.ModuleList(nn.Conv2d(w, w, 3, 1, 1)
                                for _ in range(SCALES.index(o.scale) + 1))
        self.tail = nn.Sequential(nn.Conv2d(w, w, 3, 1, 1), nn.LeakyReLU(0.2),
                                  nn.Conv2d(w, c_out, 3, 1, 1))
        self.act = nn.LeakyReLU(0.2)
        for m in self.modules():  # ESRGAN: Kaiming init scaled by 0.1 (stable deep nets)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.2)
                m.weight.data.mul_(0.1)
                nn.init.zeros_(m.bias)

    def forward(self, source: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h = self.head(source)
        h = h + self.trunk(h)
        for conv in self.up:
            h = self.act(conv(nn.functional.interpolate(h, scale_factor=2, mode="nearest")))
        return clip_straight_through(self.tail(h))


@DISCRIMINATORS.register("srgan", "SRGAN's VGG-style discriminator: 8 convs, dense 1024 "
                                  "(Ledig et al. 2017)")
class SRGANDiscriminator(Discriminator):
    """(images [N, C, S, S]) -> logits [N]; S divisible by 16."""

    test_options: ClassVar[dict] = {"width": 4, "dense": 8}
    takes_source: bool = False

    @dataclass(frozen=True)
    class Options:
        width: int = 64  # channels of the first two convs; x2 every two (the paper's 64)
        dense: int = 1024  # units of the hidden dense layer
        spectral_norm: bool = False

        def __post_init__(self) -> None:
            at_least("width", self.width, 1)
            at_least("dense", self.dense, 1)

    @classmethod
    def supports(cls, shape: tuple) -> bool:
        return len(shape) == 3 and shape[1] == shape[2] and shape[1] % 16 == 0

    def __init__(self, in_shape: tuple, num_classes: int = 0, source_shape=None,
                 options: Options | None = None, **values) -> None:
        super().__init__(options, values)
        o = self.options
        channels, side = _square_image(tuple(in_shape), "srgan discriminator")
        if side % 16:
            raise ValueError(f"the srgan discriminator needs an image side divisible by 16, "
                             f"got {side}")
        norm = not o.spectral_norm
        layers: list[nn.Module] = []
        prev = channels
        for i in range(8):
            ch = o.width * 2 ** (i // 2)
            layers.append(nn.Conv2d(prev, ch, 3, 1 + i % 2, 1, bias=i == 0 or not norm))
            if i > 0 and norm:
                layers.append(nn.BatchNorm2d(ch))
            layers.append(nn.LeakyReLU(0.2))
            prev = ch
        self.body = nn.Sequential(*layers, nn.Flatten())
        flat = prev * (side // 16) ** 2
        self.head = nn.Sequential(nn.Linear(flat, o.dense), nn.LeakyReLU(0.2),
                                  nn.Linear(o.dense, 1))
        if o.spectral_norm:
            apply_spectral_norm(self)

    def score(self, x: torch.Tensor, c: torch.Tensor | None = None) -> dict:
        features = self.body(x)
        return {"logits": self.head(features).squeeze(1), "features": features}
