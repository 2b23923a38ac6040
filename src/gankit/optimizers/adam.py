"""Adam, Kingma and Ba 2015, with the GAN-customary betas as options."""

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

        def __post_init__(self) -> None:
            positive("lr", self.lr)
            for b in self.betas:
                fraction("betas", b)
            positive("eps", self.eps)
            at_least("weight_decay", self.weight_decay, 0)

    def build(self, params) -> torch.optim.Optimizer:
        o = self.options
        return torch.optim.Adam(params, lr=o.lr, betas=tuple(o.betas), eps=o.eps,
                                weight_decay=o.weight_decay, foreach=True)
