"""RMSprop (Tieleman and Hinton 2012), used by WGAN (Arjovsky et al. 2017)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.components import OptimizerFactory
from gankit.registry import OPTIMIZERS
from gankit.utils.checks import at_least, fraction, positive


@OPTIMIZERS.register("rmsprop", "RMSprop, as used by WGAN (Arjovsky et al. 2017)")
class RMSprop(OptimizerFactory):
    """Factory for torch.optim.RMSprop."""

    @dataclass(frozen=True)
    class Options:
        lr: float = 5e-5  # WGAN's learning rate
        alpha: float = 0.99  # smoothing constant
        eps: float = 1e-8  # denominator epsilon
        momentum: float = 0.0  # WGAN uses none

        def __post_init__(self) -> None:
            positive("lr", self.lr)
            fraction("alpha", self.alpha)
            positive("eps", self.eps)
            at_least("momentum", self.momentum, 0)

    def build(self, params) -> torch.optim.Optimizer:
        o = self.options
        return torch.optim.RMSprop(params, lr=o.lr, alpha=o.alpha, eps=o.eps,
                                   momentum=o.momentum, foreach=True)
