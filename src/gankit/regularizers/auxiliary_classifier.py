"""ACGAN's class loss, Odena, Olah and Shlens 2017 (eq. 2-3).

D maximises L_S + L_C and G maximises L_C - L_S, with the class log-likelihood
L_C = E[log P(C = c | x_real)] + E[log P(C = c | x_fake)]. The adversarial part L_S is the
run's loss; this regulariser adds ``weight * cross_entropy`` of D's ``class_logits``
(``discriminator.conditioning: acgan``): in the D step on the real batch (its labels) plus
the fakes (the labels they were generated for), in the G step on the fakes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gankit.components import RegularizerBase
from gankit.registry import REGULARIZERS
from gankit.utils.checks import at_least


@REGULARIZERS.register("auxiliary_classifier", "ACGAN class loss on D's class head, Odena 2017")
class AuxiliaryClassifier(RegularizerBase):
    """Cross-entropy of D's auxiliary class head, for both players."""

    @dataclass(frozen=True)
    class Options:
        weight: float = 1.0  # weight of the class loss (1 in the paper)
        interval: int = 1  # k > 1: every k-th D update / G step, scaled by k, own step

        def __post_init__(self) -> None:
            at_least("weight", self.weight, 0)
            at_least("interval", self.interval, 1)

    phases = ("D", "G")  # D learns to classify real and fake; G to make fakes classifiable

    def __call__(self, ctx) -> torch.Tensor:
        fake_logits = _class_logits(ctx.fake_out)
        if ctx.fake_labels is None:
            raise ValueError("auxiliary_classifier needs labelled fakes: use a conditional "
                             "generator (generator.conditioning=concat or cbn) on labelled data")
        loss = F.cross_entropy(fake_logits, ctx.fake_labels)
        if ctx.phase == "D":
            if ctx.labels is None:
                raise ValueError("auxiliary_classifier needs the real labels: train on "
                                 "labelled data (mnist5k, digits, class folders, npz with 'y')")
            loss = loss + F.cross_entropy(_class_logits(ctx.real_out), ctx.labels)
        return self.options.weight * self.options.interval * loss


def _class_logits(out: dict) -> torch.Tensor:
    logits = out.get("class_logits") if out else None
    if logits is None:
        raise ValueError("auxiliary_classifier needs D's class logits: use "
                         "discriminator.conditioning=acgan")
    return logits
