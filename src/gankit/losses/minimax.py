"""Minimax (saturating) GAN loss, Goodfellow et al. 2014.

D maximises log D(x) + log(1 - D(G(z))); G minimises log(1 - D(G(z))). With D(x) =
sigmoid(l), log D = -softplus(-l) and log(1 - D) = -softplus(l): the logits form never
evaluates log(0).
"""

import torch
import torch.nn.functional as F

from gankit.registry import LOSSES


@LOSSES.register("minimax", "saturating log(1 - D(G(z))) loss of Goodfellow et al. 2014")
class Minimax:
    """Original saturating objective; G's gradient vanishes when D rejects fakes."""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def g_loss(self, fake_logits: torch.Tensor, real_logits=None) -> torch.Tensor:
        return -F.softplus(fake_logits).mean()  # = mean log(1 - D(G(z)))
