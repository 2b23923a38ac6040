"""Least-squares GAN loss, Mao et al. 2017 (a-b-c coding 0-1-1, their eq. 2 / 9)."""

import torch

from gankit.components import LossBase
from gankit.registry import LOSSES


@LOSSES.register("least_squares", "least-squares loss of Mao et al. 2017 (LSGAN)")
class LeastSquares(LossBase):
    """D: ½E[(D(x) - 1)²] + ½E[D(G(z))²]; G: ½E[(D(G(z)) - 1)²], on raw D outputs."""

    real_threshold = 0.5  # D says "real" when its output is nearer the real target 1 than 0
    saturates = False  # G's gradient grows with D's confidence (Mao et al. 2017, sec. 3.2)

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((real_logits - 1.0) ** 2).mean() + 0.5 * (fake_logits**2).mean()

    def g_loss(self, fake_logits: torch.Tensor, real_logits=None) -> torch.Tensor:
        return 0.5 * ((fake_logits - 1.0) ** 2).mean()
