"""Gradient penalty of WGAN-GP, Gulrajani et al. 2017 (Algorithm 1).

lambda * E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = eps * real + (1 - eps) * fake, with
eps ~ U[0, 1] drawn once per example (not per pixel), as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.registry import REGULARIZERS


@REGULARIZERS.register("gradient_penalty", "WGAN-GP two-sided penalty, Gulrajani et al. 2017")
class GradientPenalty:
    """Pushes the critic's gradient norm towards ``target`` on real/fake interpolates."""

    @dataclass(frozen=True)
    class Options:
        weight: float = 10.0  # lambda, 10 in the paper
        target: float = 1.0  # the gradient norm aimed at
        interval: int = 1  # apply every k-th D step (weight scaled by k)

    phases = ("D",)  # runs during D updates
    needs_real_grad = False

    def __init__(self, weight: float = 10.0, target: float = 1.0, interval: int = 1) -> None:
        self.weight, self.target, self.interval = weight, target, interval

    def __call__(self, ctx) -> torch.Tensor:
        real, fake = ctx.real.detach(), ctx.fake.detach()
        shape = (real.shape[0],) + (1,) * (real.dim() - 1)
        eps = torch.rand(shape, generator=ctx.generator, device=real.device, dtype=real.dtype)
        x_hat = (eps * real + (1.0 - eps) * fake).requires_grad_(True)
        out = ctx.D(x_hat, ctx.labels) if ctx.labels is not None else ctx.D(x_hat)
        (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
        norm = grad.flatten(1).norm(2, dim=1)
        return self.weight * self.interval * ((norm - self.target) ** 2).mean()
