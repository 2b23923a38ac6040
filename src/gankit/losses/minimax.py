"""Minimax (saturating) GAN loss, Goodfellow et al. 2014.

D maximises log D(x) + log(1 - D(G(z))); G minimises log(1 - D(G(z))). With D(x) =
sigmoid(l), log D = -softplus(-l) and log(1 - D) = -softplus(l): the logits form never
evaluates log(0). ``real_label`` < 1 is one-sided label smoothing (Salimans et al. 2016), as
for ``non_saturating``.
"""


import torch
import torch.nn.functional as F

from gankit.losses.non_saturating import NonSaturating
from gankit.registry import LOSSES


@LOSSES.register("minimax", "saturating log(1 - D(G(z))) loss of Goodfellow et al. 2014")
class Minimax(NonSaturating):
    """Original saturating objective; G's gradient vanishes when D rejects fakes. D's loss
    (and its ``real_label`` smoothing option) is the non-saturating one."""

    def g_loss(self, fake_logits: torch.Tensor, real_logits=None) -> torch.Tensor:
        return -F.softplus(fake_logits).mean()  # = mean log(1 - D(G(z)))
