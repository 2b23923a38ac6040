"""Adam, Kingma and Ba 2015, with the GAN-customary betas as options.

``lazy_interval`` k > 1 applies StyleGAN2's correction for lazy regularisation (Karras et al.
2020, section 3.1 and the authors' code): when a regulariser runs every k-th step, the
optimiser's learning rate becomes lr * c and its betas beta ** c with c = k / (k + 1), so
the main and regularisation updates together keep the momentum dynamics of the plain
setting.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.components import OptimizerFactory
from gankit.registry import OPTIMIZERS
from gankit.utils.checks import at_least, fraction, positive


@OPTIMIZERS.register("adam", "Adam (Kingma and Ba 2015)")
class Adam(OptimizerFactory):
    """Factory for torch.optim.Adam."""

    @dataclass(frozen=True)
    class Options:
        lr: float = 2e-4  # learning rate
        betas: tuple[float, float] = (0.5, 0.999)  # DCGAN's beta1 = 0.5
        eps: float = 1e-8  # denominator epsilon
        weight_decay: float = 0.0  # L2 penalty
        lazy_interval: int = 1  # >1: lr * c, betas ** c, c = k/(k+1) (StyleGAN2 lazy reg.)

        def __post_init__(self) -> None:
            positive("lr", self.lr)
            for b in self.betas:
                fraction("betas", b)
            positive("eps", self.eps)
            at_least("weight_decay", self.weight_decay, 0)
            at_least("lazy_interval", self.lazy_interval, 1, " (1 = no rescaling)")

    def hyperparameters(self) -> tuple[float, tuple[float, float]]:
        """(lr, betas) after the lazy-regularisation rescaling (unchanged at interval 1)."""
        o = self.options
        if o.lazy_interval == 1:
            return o.lr, tuple(o.betas)
        c = o.lazy_interval / (o.lazy_interval + 1)
        return o.lr * c, tuple(b ** c for b in o.betas)

    def learning_rate(self) -> float:
        return self.hyperparameters()[0]

    def build(self, params) -> torch.optim.Optimizer:
        o = self.options
        lr, betas = self.hyperparameters()
        return torch.optim.Adam(params, lr=lr, betas=betas, eps=o.eps,
                                weight_decay=o.weight_decay, foreach=True)
