"""R1 penalty on real data, Mescheder et al. 2018: gamma/2 * E[||grad_x D(x)||^2]."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.registry import REGULARIZERS


@REGULARIZERS.register("r1", "R1 gradient penalty on real data, Mescheder et al. 2018")
class R1:
    """Zero-centred penalty on D's input gradient at real samples."""

    @dataclass(frozen=True)
    class Options:
        gamma: float = 10.0  # penalty weight gamma
        interval: int = 1  # lazy regularisation: every k-th D step, scaled by k (StyleGAN2)

    phases = ("D",)  # runs during D updates
    needs_real_grad = True

    def __init__(self, gamma: float = 10.0, interval: int = 1) -> None:
        self.gamma, self.interval = gamma, interval

    def __call__(self, ctx) -> torch.Tensor:
        (grad,) = torch.autograd.grad(ctx.real_logits.sum(), ctx.real, create_graph=True)
        return 0.5 * self.gamma * self.interval * grad.flatten(1).pow(2).sum(1).mean()
