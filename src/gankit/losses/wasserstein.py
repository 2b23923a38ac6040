"""Wasserstein critic loss, Arjovsky et al. 2017: D maximises E[D(x)] - E[D(G(z))].

Needs a Lipschitz constraint: weight clipping (WGAN) or a gradient penalty (WGAN-GP).
``drift`` adds epsilon * E[D(x)^2] over the real batch to D's loss, the drift penalty of
Karras et al. 2018 (PGGAN, appendix A.1, epsilon = 0.001), which keeps the critic's
output from drifting far from zero.
"""

from dataclasses import dataclass

import torch

from gankit.components import LossBase
from gankit.registry import LOSSES
from gankit.utils.checks import at_least


@LOSSES.register("wasserstein", "Wasserstein critic loss, Arjovsky et al. 2017")
class Wasserstein(LossBase):
    """Critic scores are unbounded; the loss is a difference of means."""

    real_threshold = None  # a critic's score has no real/fake threshold: no D accuracy
    saturates = False  # the critic's gradient does not vanish with its confidence

    @dataclass(frozen=True)
    class Options:
        drift: float = 0.0  # epsilon of the drift penalty epsilon * E[D(real)^2] (PGGAN: 0.001)

        def __post_init__(self) -> None:
            at_least("drift", self.drift, 0)

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        loss = fake_logits.mean() - real_logits.mean()
        if self.options.drift:
            loss = loss + self.options.drift * real_logits.square().mean()
        return loss

    def g_loss(self, fake_logits: torch.Tensor, real_logits=None) -> torch.Tensor:
        return -fake_logits.mean()
