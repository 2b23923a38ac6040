"""Relativistic average GAN loss, Jolicoeur-Martineau 2019 (RaGAN, eq. 9-10), as ESRGAN uses
it (Wang et al. 2018, eq. 1-2): D estimates how much more realistic a real sample is than
the average fake, and the other way round.

With C the logits and sigma the logistic function:
  D_Ra(r, f) = sigma(C(r) - mean_f C(f)),  D_Ra(f, r) = sigma(C(f) - mean_r C(r));
  L_D = -E_r log D_Ra(r, f) - E_f log(1 - D_Ra(f, r));
  L_G = -E_r log(1 - D_Ra(r, f)) - E_f log D_Ra(f, r),
so G's loss needs D's logits of the real batch (the loop scores the latest real batch with
the G step's D; they carry no gradient to G). Means run over the batch (and over the
patches of a patch D).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gankit.components import LossBase
from gankit.registry import LOSSES


@LOSSES.register("relativistic_average", "relativistic average GAN loss (RaGAN; ESRGAN), "
                                         "Jolicoeur-Martineau 2019")
class RelativisticAverage(LossBase):
    """Both players compare each sample with the other side's mean logit."""

    real_threshold = None  # a logit alone says nothing: only its difference to the mean
    g_needs_real = True

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        real_rel = real_logits - fake_logits.mean()
        fake_rel = fake_logits - real_logits.mean()
        return F.softplus(-real_rel).mean() + F.softplus(fake_rel).mean()

    def g_loss(self, fake_logits: torch.Tensor, real_logits=None) -> torch.Tensor:
        if real_logits is None:
            raise ValueError("relativistic_average: G's loss needs D's logits of real data")
        real_rel = real_logits - fake_logits.mean()
        fake_rel = fake_logits - real_logits.mean()
        return F.softplus(real_rel).mean() + F.softplus(-fake_rel).mean()
