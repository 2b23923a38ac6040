"""Multi-layer perceptron G and D: Goodfellow et al. 2014's fully connected GAN, and the
2D-mixture networks of PacGAN (Lin et al. 2018: G 2 -> 400x4 -> 2 with BN+ReLU, D with
maxout units).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from gankit.layers.maxout import Maxout
from gankit.layers.minibatch import batch_features
from gankit.layers.spectral import apply_spectral_norm
from gankit.models._base import Discriminator, Generator
from gankit.registry import DISCRIMINATORS, GENERATORS


@GENERATORS.register("mlp", "fully connected G: z -> hidden widths (BN+ReLU) -> sample")
class MLPGenerator(Generator):
    """z [N, z_dim] -> x [N, *out_shape]; tanh output for images, linear for points."""

    @dataclass(frozen=True)
    class Options:
        widths: tuple[int, ...] = (256, 512, 1024)  # hidden layer widths
        batch_norm: bool = True  # BatchNorm after each hidden linear layer

    def __init__(self, z_dim: int, out_shape: tuple[int, ...], bounded: bool = True,
                 widths: tuple[int, ...] = (256, 512, 1024), batch_norm: bool = True,
                 num_classes: int = 0) -> None:
        super().__init__()
        if not widths or min(widths) < 1:
            raise ValueError(f"generator.widths must be positive integers, got {widths}")
        self.out_shape = tuple(out_shape)
        layers: list[nn.Module] = []
        last = z_dim
        for w in widths:
            layers += [nn.Linear(last, w)]
            layers += [nn.BatchNorm1d(w)] if batch_norm else []
            layers += [nn.ReLU()]
            last = w
        layers.append(nn.Linear(last, math.prod(self.out_shape)))
        if bounded:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.out_shape)


@DISCRIMINATORS.register("mlp", "fully connected D: sample -> hidden widths -> one logit")
class MLPDiscriminator(Discriminator):
    """x [N, *in_shape] -> logits [N]; LeakyReLU(0.2) or maxout hidden units."""

    @dataclass(frozen=True)
    class Options:
        widths: tuple[int, ...] = (1024, 512, 256)  # hidden layer widths
        maxout_pieces: int = 1  # >1 uses maxout units with this many pieces (PacGAN: 5)
        spectral_norm: bool = False  # spectral normalisation on every layer (SNGAN)
        minibatch_discrimination: int = 0  # kernels of minibatch discrimination (Salimans 2016)
        minibatch_stddev: int = 0  # group size of the minibatch stddev feature (Karras 2018)

    def __init__(self, in_shape: tuple[int, ...], widths: tuple[int, ...] = (1024, 512, 256),
                 maxout_pieces: int = 1, spectral_norm: bool = False,
                 num_classes: int = 0, minibatch_discrimination: int = 0,
                 minibatch_stddev: int = 0) -> None:
        super().__init__()
        if not widths or min(widths) < 1:
            raise ValueError(f"discriminator.widths must be positive integers, got {widths}")
        if maxout_pieces < 1:
            raise ValueError(f"discriminator.maxout_pieces must be >= 1, got {maxout_pieces}")
        layers: list[nn.Module] = [nn.Flatten()]
        last = math.prod(in_shape)
        for w in widths:
            if maxout_pieces > 1:
                layers.append(Maxout(last, w, maxout_pieces))
            else:
                layers += [nn.Linear(last, w), nn.LeakyReLU(0.2)]
            last = w
        self.body = nn.Sequential(*layers)  # x -> features [N, widths[-1]]
        self.batch_layers, width = batch_features(last, minibatch_discrimination,
                                                  minibatch_stddev)
        self.head = nn.Linear(width, 1)
        if spectral_norm:
            apply_spectral_norm(self)

    def score(self, x: torch.Tensor, c: torch.Tensor | None = None) -> dict:
        features = self.body(x)
        logits = self.head(self.batch_layers(features)).squeeze(1)
        return {"logits": logits, "features": features}
