"""Non-saturating GAN loss, Goodfellow et al. 2014 (section 3): G minimises -log D(G(z))."""

import torch
import torch.nn.functional as F

from gankit.registry import LOSSES


@LOSSES.register("non_saturating", "-log D(G(z)) generator loss, Goodfellow et al. 2014")
class NonSaturating:
    """The standard BCE-with-logits GAN objective."""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def g_loss(self, fake_logits: torch.Tensor, real_logits=None) -> torch.Tensor:
        return F.softplus(-fake_logits).mean()  # = -mean log sigmoid(l)
