"""Hinge loss, Lim and Ye 2017 / Miyato et al. 2018 (SNGAN)."""

import torch
import torch.nn.functional as F

from gankit.components import LossBase
from gankit.registry import LOSSES


@LOSSES.register("hinge", "hinge loss of Lim and Ye 2017, used by SNGAN (Miyato et al. 2018)")
class Hinge(LossBase):
    """D: E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]; G: -E[D(G(z))]."""

    real_threshold = 0.0  # D says "real" above 0, the midpoint of the margins -1 and +1
    saturates = False  # G's loss is linear in D's score: a confident D leaves G's gradient

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()

    def g_loss(self, fake_logits: torch.Tensor, real_logits=None) -> torch.Tensor:
        return -fake_logits.mean()
