"""The joint critic of BiGAN / ALI (Donahue et al. 2017; Dumoulin et al. 2017) as EGBAD uses
it (Zenati et al. 2018): D(x, z) scores an image together with a latent code.

An x branch (DCGAN's D body: strided 4x4 convs, LeakyReLU 0.2, dropout 0.2 after each
stage in EGBAD; BatchNorm from the second stage), a z branch (a linear layer of ``width``
* 8 units, LeakyReLU, dropout), and a joint branch on their concatenation (``width`` * 16
units, LeakyReLU, dropout) to one logit; the features are the joint layer's output.
``c`` is the latent code [N, latent_dim] (zeros when missing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from gankit.layers.spectral import apply_spectral_norm
from gankit.models._base import Discriminator
from gankit.models.dcgan import DCGANDiscriminator, _supported
from gankit.registry import DISCRIMINATORS
from gankit.utils.checks import at_least, fraction


@DISCRIMINATORS.register("bigan", "BiGAN/ALI joint critic D(x, z) (Donahue 2017; EGBAD, "
                                  "Zenati et al. 2018)")
class BiGANDiscriminator(Discriminator):
    """(images [N, C, R, R], codes [N, latent_dim]) -> logits [N]."""

    test_options: ClassVar[dict] = {"width": 4, "latent_dim": 8}

    @dataclass(frozen=True)
    class Options:
        width: int = 64  # channels of the x branch's first stage
        latent_dim: int = 100  # the codes' size: the run's z_dim
        dropout: float = 0.2  # EGBAD's 0.2
        spectral_norm: bool = False

        def __post_init__(self) -> None:
            at_least("width", self.width, 1)
            at_least("latent_dim", self.latent_dim, 1)
            fraction("dropout", self.dropout)

    @classmethod
    def supports(cls, shape: tuple) -> bool:
        return _supported(tuple(shape))

    def __init__(self, in_shape: tuple, num_classes: int = 0, options: Options | None = None,
                 **values) -> None:
        super().__init__(options, values)
        o = self.options
        shape = tuple(in_shape)
        self.x_branch = DCGANDiscriminator(in_shape=shape, width=o.width).body
        with torch.no_grad():
            features = self.x_branch(torch.zeros(2, *shape)).shape[1]
        self.z_branch = nn.Sequential(nn.Linear(o.latent_dim, 8 * o.width), nn.LeakyReLU(0.2),
                                      nn.Dropout(o.dropout))
        self.joint = nn.Sequential(nn.Linear(features + 8 * o.width, 16 * o.width),
                                   nn.LeakyReLU(0.2), nn.Dropout(o.dropout))
        self.head = nn.Linear(16 * o.width, 1)
        self.latent_dim = o.latent_dim
        if o.spectral_norm:
            apply_spectral_norm(self)

    def score(self, x: torch.Tensor, c: torch.Tensor | None = None) -> dict:
        if c is None or c.dim() != 2:
            c = x.new_zeros(len(x), self.latent_dim)
        if c.shape[1] != self.latent_dim:
            raise ValueError(f"the bigan critic takes codes of {self.latent_dim} values "
                             f"(discriminator.latent_dim), got {c.shape[1]}; set it to z_dim")
        h = self.joint(torch.cat([self.x_branch(x), self.z_branch(c)], 1))
        return {"logits": self.head(h).squeeze(1), "features": h}
