"""Multi-layer perceptron G and D: Goodfellow et al. 2014's fully connected GAN, and the
2D-mixture networks of PacGAN (Lin et al. 2018: G 2 -> 400x4 -> 2 with BN+ReLU, D with
maxout units). Class conditioning (`gankit.layers.conditioning`): G concat (cGAN, Mirza and
Osindero 2014) or conditional BatchNorm; D concat, projection (Miyato and Koyama 2018) or
an ACGAN class head (Odena et al. 2017).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from gankit.layers.conditioning import (
    DiscriminatorConditioning,
    GeneratorConditioning,
    LabelSequential,
)
from gankit.layers.maxout import Maxout
from gankit.layers.minibatch import batch_features
from gankit.layers.output import BoundedOutput
from gankit.layers.spectral import apply_spectral_norm
from gankit.models._base import (
    Discriminator,
    Generator,
    check_discriminator_options,
    check_generator_options,
)
from gankit.registry import DISCRIMINATORS, GENERATORS
from gankit.utils.checks import all_at_least, at_least


@GENERATORS.register("mlp", "fully connected G: z -> hidden widths (BN+ReLU) -> sample")
class MLPGenerator(Generator):
    """(z [N, z_dim], c [N]) -> x [N, *out_shape]; tanh output for images, linear for points."""

    test_options = {"widths": (32, 32)}  # it supports every shape (the default `supports`)

    @dataclass(frozen=True)
    class Options:
        widths: tuple[int, ...] = (256, 512, 1024)  # hidden layer widths
        batch_norm: bool = True  # BatchNorm after each hidden linear layer
        conditioning: str = "none"  # none, concat (label code + z, cGAN) or cbn (class BN)
        embed_dim: int = 0  # concat: size of a learned label embedding; 0 = one-hot
        output_scale: float = 1.0  # images: >1 gives clamp(scale*tanh, -1, 1)

        def __post_init__(self) -> None:  # bad values fail when the config resolves
            all_at_least("widths", self.widths, 1)
            check_generator_options(self)
            if self.conditioning == "cbn" and not self.batch_norm:
                raise ValueError("conditioning=cbn conditions the BatchNorm layers: it needs "
                                 "batch_norm=true")

    def __init__(self, z_dim: int, out_shape: tuple[int, ...], bounded: bool = True,
                 num_classes: int = 0, options: Options | None = None, **values) -> None:
        super().__init__(options, values)
        o = self.options
        self.cond = GeneratorConditioning(o.conditioning, num_classes, o.embed_dim)
        self.conditional = self.cond.conditional
        self.out_shape = tuple(out_shape)
        layers: list[nn.Module] = []
        last = z_dim + self.cond.z_extra
        for w in o.widths:
            layers += [nn.Linear(last, w)]
            layers += [self.cond.norm(w, dims=1)] if o.batch_norm else []
            layers += [nn.ReLU()]
            last = w
        layers.append(nn.Linear(last, math.prod(self.out_shape)))
        if bounded:
            layers.append(BoundedOutput(o.output_scale))
        elif o.output_scale != 1.0:
            raise ValueError(f"generator.output_scale={o.output_scale} bounds image outputs; "
                             "this data is unbounded points (linear output): leave it unset")
        self.net = LabelSequential(*layers)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        c = self.cond.labels(c, z)
        return self.net(self.cond.latent(z, c), c).view(z.shape[0], *self.out_shape)


@DISCRIMINATORS.register("mlp", "fully connected D: sample -> hidden widths -> one logit")
class MLPDiscriminator(Discriminator):
    """(x [N, *in_shape], c [N]) -> logits [N]; LeakyReLU(0.2) or maxout hidden units."""

    test_options = {"widths": (32, 32)}

    @dataclass(frozen=True)
    class Options:
        widths: tuple[int, ...] = (1024, 512, 256)  # hidden layer widths
        maxout_pieces: int = 1  # >1 uses maxout units with this many pieces (PacGAN: 5)
        spectral_norm: bool = False  # spectral normalisation on every layer (SNGAN)
        minibatch_discrimination: int = 0  # kernels of minibatch discrimination (Salimans 2016)
        minibatch_stddev: int = 0  # group size of the minibatch stddev feature (Karras 2018)
        conditioning: str = "none"  # none, concat (cGAN), projection or acgan (class head)
        embed_dim: int = 0  # concat: size of a learned label embedding; 0 = one-hot

        def __post_init__(self) -> None:
            all_at_least("widths", self.widths, 1)
            at_least("maxout_pieces", self.maxout_pieces, 1)
            check_discriminator_options(self)

    def __init__(self, in_shape: tuple[int, ...], num_classes: int = 0,
                 options: Options | None = None, **values) -> None:
        super().__init__(options, values)
        o = self.options
        self.cond = DiscriminatorConditioning(o.conditioning, num_classes, o.embed_dim)
        self.conditional = self.cond.conditional
        layers: list[nn.Module] = [nn.Flatten()]
        last = math.prod(in_shape) + self.cond.input_extra
        for w in o.widths:
            if o.maxout_pieces > 1:
                layers.append(Maxout(last, w, o.maxout_pieces))
            else:
                layers += [nn.Linear(last, w), nn.LeakyReLU(0.2)]
            last = w
        self.body = nn.Sequential(*layers)  # x -> features [N, widths[-1]]
        self.batch_layers, width = batch_features(last, o.minibatch_discrimination,
                                                  o.minibatch_stddev)
        self.head = nn.Linear(width, 1)
        self.cond.build_output(last)
        if o.spectral_norm:  # covers the label embeddings and the class head too
            apply_spectral_norm(self)

