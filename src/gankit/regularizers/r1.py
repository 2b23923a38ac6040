"""R1 penalty on real data, Mescheder et al. 2018: gamma/2 * E[||grad_x D(x)||^2].

The expectation runs over D's inputs. Under PacGAN packing (``pack`` = m) one input is m
samples side by side, so the squared norm is summed over the m samples of each pack before
the mean over packs: the penalty of the packed critic, with the same gamma as unpacked.

The penalty differentiates a float32 pass of D: when the loop's pass ran under bfloat16
autocast (``train.precision=bf16``), R1 scores the real batch again in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.components import RegularizerBase
from gankit.registry import REGULARIZERS
from gankit.utils.checks import at_least


@REGULARIZERS.register("r1", "R1 gradient penalty on real data, Mescheder et al. 2018")
class R1(RegularizerBase):
    """Zero-centred penalty on D's input gradient at real samples."""

    @dataclass(frozen=True)
    class Options:
        gamma: float = 10.0  # penalty weight gamma
        interval: int = 1  # lazy (StyleGAN2): every k-th D update, scaled by k, own D step

        def __post_init__(self) -> None:
            at_least("gamma", self.gamma, 0)
            at_least("interval", self.interval, 1, " (every k-th D update)")

    phases = ("D",)  # runs during D updates
    needs_real_grad = True

    def __call__(self, ctx) -> torch.Tensor:
        logits = ctx.real_logits
        if ctx.low_precision:  # the loop's pass ran in bf16: differentiate a float32 one
            with torch.autocast(ctx.real.device.type, enabled=False):
                logits = ctx.D(ctx.real_view.float(), ctx.labels)
        (grad,) = torch.autograd.grad(logits.sum(), ctx.real, create_graph=True)
        per_input = grad.reshape(len(logits), -1)  # one row per D input (a pack of samples)
        o = self.options
        return 0.5 * o.gamma * o.interval * per_input.pow(2).sum(1).mean()
