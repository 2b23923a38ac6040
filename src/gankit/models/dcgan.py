"""DCGAN generator and discriminator, Radford, Metz and Chintala 2016.

G: a transposed convolution from z to a 4x4 (or 7x7 for 28-pixel images) map, then
stride-2 transposed convolutions that halve the channels and double the side, BatchNorm
and ReLU inside, tanh at the output (optionally clamp(s * tanh, -1, 1),
`gankit.layers.output`). D mirrors it with stride-2 convolutions and
LeakyReLU(0.2), BatchNorm from the second block on (no BatchNorm with spectral norm or
when disabled, as WGAN-GP advises), and a final convolution over the whole map to one
logit. Resolution, channels and width are constructor arguments.

Class conditioning (`gankit.layers.conditioning`): G concatenates a label code to z (cGAN,
Mirza and Osindero 2014) or swaps its BatchNorm layers for conditional BatchNorm (de Vries
et al. 2017); D gets the label code as constant input channel maps, a projection term
(Miyato and Koyama 2018) or an ACGAN class head (Odena et al. 2017).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gankit.layers.conditioning import (
    DiscriminatorConditioning,
    GeneratorConditioning,
    LabelSequential,
)
from gankit.layers.minibatch import batch_features
from gankit.layers.output import BoundedOutput
from gankit.layers.spectral import apply_spectral_norm
from gankit.models._base import (
    Discriminator,
    Generator,
    check_discriminator_options,
    check_generator_options,
    side_plan,
)
from gankit.registry import DISCRIMINATORS, GENERATORS
from gankit.utils.checks import at_least


def _plan(resolution: int) -> tuple[int, int]:
    """Return (start side, number of stride-2 stages) for an image side."""
    plan = side_plan(resolution)
    if plan is not None:
        return plan
    raise ValueError(
        f"dcgan supports image sides 4*2^k or 7*2^k (8, 14, 16, 28, 32, 64, 128, ...), "
        f"got {resolution}; set data.resolution to one of them"
    )


def _supported(shape: tuple) -> bool:
    """Square images whose side `_plan` accepts."""
    if len(shape) != 3 or shape[1] != shape[2]:
        return False
    try:
        _plan(shape[1])
    except ValueError:
        return False
    return True


def _image_shape(shape: tuple[int, ...], who: str) -> tuple[int, int]:
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ValueError(f"{who} dcgan needs square images [C, H, H], got sample shape "
                         f"{tuple(shape)}; use the mlp architecture for points")
    return shape[0], shape[1]


@GENERATORS.register("dcgan", "DCGAN transposed-conv G with BatchNorm+ReLU (Radford 2016)")
class DCGANGenerator(Generator):
    """(z [N, z_dim], c [N]) -> images [N, C, R, R] in [-1, 1]."""

    test_options = {"width": 8}

    @dataclass(frozen=True)
    class Options:
        width: int = 64  # channels of the last hidden stage; doubled per stage inward
        conditioning: str = "none"  # none, concat (label code + z, cGAN) or cbn (class BN)
        embed_dim: int = 0  # concat: size of a learned label embedding; 0 = one-hot
        output_scale: float = 1.0  # >1: clamp(scale*tanh, -1, 1), exact -1/+1 reachable

        def __post_init__(self) -> None:  # bad values fail when the config resolves
            at_least("width", self.width, 1)
            check_generator_options(self)

    @classmethod
    def supports(cls, shape: tuple) -> bool:
        return _supported(tuple(shape))

    def __init__(self, z_dim: int, out_shape: tuple[int, ...], bounded: bool = True,
                 num_classes: int = 0, options: Options | None = None, **values) -> None:
        super().__init__(options, values)
        o = self.options
        self.cond = GeneratorConditioning(o.conditioning, num_classes, o.embed_dim)
        channels, resolution = _image_shape(tuple(out_shape), "generator")
        start, ups = _plan(resolution)
        self.conditional = self.cond.conditional
        norm = self.cond.norm
        ch = o.width * 2 ** (ups - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim + self.cond.z_extra, ch, start, 1, 0, bias=False),
            norm(ch, dims=2), nn.ReLU(True),
        ]
        for _ in range(ups - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                       norm(ch // 2, dims=2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1),
                   BoundedOutput(o.output_scale)]
        self.net = LabelSequential(*layers)
        _dcgan_init(self)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        c = self.cond.labels(c, z)
        return self.net(self.cond.latent(z, c).view(z.shape[0], -1, 1, 1), c)


@DISCRIMINATORS.register("dcgan", "DCGAN strided-conv D with LeakyReLU (Radford 2016)")
class DCGANDiscriminator(Discriminator):
    """(images [N, C, R, R], c [N]) -> logits [N]."""

    test_options = {"width": 8}

    @dataclass(frozen=True)
    class Options:
        width: int = 64  # channels of the first stage; doubled per stage
        batch_norm: bool = True  # BatchNorm from the second stage on
        spectral_norm: bool = False  # spectral normalisation on every layer (SNGAN)
        minibatch_discrimination: int = 0  # kernels of minibatch discrimination (Salimans 2016)
        minibatch_stddev: int = 0  # group size of the minibatch stddev feature (Karras 2018)
        conditioning: str = "none"  # none, concat (cGAN), projection or acgan (class head)
        embed_dim: int = 0  # concat: channels of a learned label embedding; 0 = one-hot maps

        def __post_init__(self) -> None:
            at_least("width", self.width, 1)
            check_discriminator_options(self)

    @classmethod
    def supports(cls, shape: tuple) -> bool:
        return _supported(tuple(shape))

    def __init__(self, in_shape: tuple[int, ...], num_classes: int = 0,
                 options: Options | None = None, **values) -> None:
        super().__init__(options, values)
        o = self.options
        self.cond = DiscriminatorConditioning(o.conditioning, num_classes, o.embed_dim,
                                              channel_maps=True)
        channels, resolution = _image_shape(tuple(in_shape), "discriminator")
        start, downs = _plan(resolution)
        self.conditional = self.cond.conditional
        use_bn = o.batch_norm and not o.spectral_norm
        layers: list[nn.Module] = [nn.Conv2d(channels + self.cond.input_extra, o.width, 4, 2, 1),
                                   nn.LeakyReLU(0.2, True)]
        ch = o.width
        for _ in range(downs - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=not use_bn)]
            layers += [nn.BatchNorm2d(ch * 2)] if use_bn else []
            layers += [nn.LeakyReLU(0.2, True)]
            ch *= 2
        self.body = nn.Sequential(*layers, nn.Flatten())  # x -> features [N, ch*start^2]
        # DCGAN's last layer is a conv over the whole start x start map: a linear layer on
        # the flattened features computes the same thing.
        self.batch_layers, width = batch_features(ch * start * start,
                                                  o.minibatch_discrimination, o.minibatch_stddev)
        self.head = nn.Linear(width, 1)
        self.cond.build_output(ch * start * start)
        _dcgan_init(self)
        if o.spectral_norm:  # covers the label embeddings and the class head too
            apply_spectral_norm(self)



@torch.no_grad()
def _dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation: conv weights N(0, 0.02), BatchNorm gamma N(1, 0.02).
    (Conditional BatchNorm keeps its own gains 1 and biases 0; label embeddings keep theirs.)"""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
