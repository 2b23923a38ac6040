"""Gradient penalty of WGAN-GP, Gulrajani et al. 2017 (Algorithm 1).

lambda * E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = eps * real + (1 - eps) * fake, with
eps ~ U[0, 1] drawn once per D input (not per pixel), as in the paper. Under PacGAN packing
(``pack`` = m) a D input is m samples side by side: one eps per pack, and the norm of the
gradient with respect to the whole packed input, so the packed critic is the one kept
1-Lipschitz.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.components import RegularizerBase
from gankit.registry import REGULARIZERS
from gankit.utils.checks import at_least


@REGULARIZERS.register("gradient_penalty", "WGAN-GP two-sided penalty, Gulrajani et al. 2017")
class GradientPenalty(RegularizerBase):
    """Pushes the critic's gradient norm towards ``target`` on real/fake interpolates."""

    @dataclass(frozen=True)
    class Options:
        weight: float = 10.0  # lambda, 10 in the paper
        target: float = 1.0  # the gradient norm aimed at
        interval: int = 1  # k > 1: every k-th D update, scaled by k, in its own D step

        def __post_init__(self) -> None:
            at_least("weight", self.weight, 0)
            at_least("target", self.target, 0)
            at_least("interval", self.interval, 1, " (every k-th D update)")

    phases = ("D",)  # runs during D updates

    def __call__(self, ctx) -> torch.Tensor:
        real, fake = ctx.real.detach(), ctx.fake.detach()
        n, pack = real.shape[0], ctx.pack
        eps = ctx.local_draw(lambda k: torch.rand(k, generator=ctx.generator, device=real.device,
                                                  dtype=real.dtype), n // pack)
        eps = eps.repeat_interleave(pack)
        eps = eps.view((n,) + (1,) * (real.dim() - 1))
        x_hat = (eps * real + (1.0 - eps) * fake).requires_grad_(True)
        out = ctx.D(x_hat, ctx.labels) if ctx.labels is not None else ctx.D(x_hat)
        (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
        norm = grad.reshape(len(out), -1).norm(2, dim=1)  # one norm per D input
        o = self.options
        return o.weight * o.interval * ((norm - o.target) ** 2).mean()
