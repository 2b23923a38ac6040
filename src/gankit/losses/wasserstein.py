"""Wasserstein critic loss, Arjovsky et al. 2017: D maximises E[D(x)] - E[D(G(z))].

Needs a Lipschitz constraint: weight clipping (WGAN) or a gradient penalty (WGAN-GP).
"""

import torch

from gankit.components import LossBase
from gankit.registry import LOSSES


@LOSSES.register("wasserstein", "Wasserstein critic loss, Arjovsky et al. 2017")
class Wasserstein(LossBase):
    """Critic scores are unbounded; the loss is a difference of means."""

    real_threshold = None  # a critic's score has no real/fake threshold: no D accuracy
    saturates = False  # the critic's gradient does not vanish with its confidence

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return fake_logits.mean() - real_logits.mean()

    def g_loss(self, fake_logits: torch.Tensor, real_logits=None) -> torch.Tensor:
        return -fake_logits.mean()
