"""Non-saturating GAN loss, Goodfellow et al. 2014 (section 3): G minimises -log D(G(z)).

Optional one-sided label smoothing (Salimans et al. 2016, section 3.4): D's target for real
samples is ``real_label`` (e.g. 0.9) instead of 1, fakes keep target 0. The real term is then
the binary cross-entropy with target t in its stable logits form,
t * softplus(-l) + (1 - t) * softplus(l), which equals softplus(-l) exactly at t = 1.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gankit.components import LossBase
from gankit.registry import LOSSES


def check_real_label(real_label: float) -> None:
    """``real_label`` must lie in (0.5, 1]: at or below 0.5 D would be trained to call real
    samples fake (smoothing towards 0.5 is the limit)."""
    if not 0.5 < real_label <= 1.0:
        raise ValueError(f"loss.real_label must be in (0.5, 1] (one-sided label smoothing, "
                         f"Salimans et al. 2016 use 0.9), got {real_label}")


def real_term(real_logits: torch.Tensor, real_label: float) -> torch.Tensor:
    """Mean BCE of D's real logits against target ``real_label``, stable for any logit."""
    if real_label == 1.0:
        return F.softplus(-real_logits).mean()
    t = real_label
    return (t * F.softplus(-real_logits) + (1.0 - t) * F.softplus(real_logits)).mean()


@LOSSES.register("non_saturating", "-log D(G(z)) generator loss, Goodfellow et al. 2014")
class NonSaturating(LossBase):
    """The standard BCE-with-logits GAN objective."""

    real_threshold = 0.0  # D says "real" when its logit is above this (sigmoid > 1/2)
    saturates = True  # a confident D (logits far beyond +-4) starves or destabilises G

    @dataclass(frozen=True)
    class Options:
        real_label: float = 1.0  # D's target for real samples; 0.9 = one-sided smoothing

        def __post_init__(self) -> None:
            check_real_label(self.real_label)

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return real_term(real_logits, self.options.real_label) + F.softplus(fake_logits).mean()

    def g_loss(self, fake_logits: torch.Tensor, real_logits=None) -> torch.Tensor:
        return F.softplus(-fake_logits).mean()  # = -mean log sigmoid(l)
