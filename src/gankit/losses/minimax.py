"""Minimax (saturating) GAN loss, Goodfellow et al. 2014.

D maximises log D(x) + log(1 - D(G(z))); G minimises log(1 - D(G(z))). With D(x) =
sigmoid(l), log D = -softplus(-l) and log(1 - D) = -softplus(l): the logits form never
evaluates log(0). ``real_label`` < 1 is one-sided label smoothing (Salimans et al. 2016), as
for ``non_saturating``.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gankit.losses.non_saturating import check_real_label, real_term
from gankit.registry import LOSSES


@LOSSES.register("minimax", "saturating log(1 - D(G(z))) loss of Goodfellow et al. 2014")
class Minimax:
    """Original saturating objective; G's gradient vanishes when D rejects fakes."""

    @dataclass(frozen=True)
    class Options:
        real_label: float = 1.0  # D's target for real samples; 0.9 = one-sided smoothing

        def __post_init__(self) -> None:
            check_real_label(self.real_label)

    def __init__(self, real_label: float = 1.0) -> None:
        check_real_label(real_label)
        self.real_label = real_label

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return real_term(real_logits, self.real_label) + F.softplus(fake_logits).mean()

    def g_loss(self, fake_logits: torch.Tensor, real_logits=None) -> torch.Tensor:
        return -F.softplus(fake_logits).mean()  # = mean log(1 - D(G(z)))
