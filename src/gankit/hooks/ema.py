"""Exponential moving average of the generator's weights (Karras et al. 2018; Yazici et al.
2019): G_ema <- beta * G_ema + (1 - beta) * G after every G step; buffers are copied.

With ``warmup`` the decay ramps up as min(beta, (1 + t) / (10 + t)) at step t, the
schedule of TensorFlow's ExponentialMovingAverage(num_updates), so that early samples are
not dominated by the random initial weights.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from gankit.registry import HOOKS


@HOOKS.register("ema", "exponential moving average of G's weights, kept as G_ema")
class EMA:
    """Maintains ``state.G_ema``, the averaged generator used for samples and metrics."""

    @dataclass(frozen=True)
    class Options:
        beta: float = 0.999  # decay per G step
        start_step: int = 0  # before this step G_ema simply copies G
        warmup: bool = True  # ramp the decay up as min(beta, (1 + t) / (10 + t))

    def __init__(self, beta: float = 0.999, start_step: int = 0, warmup: bool = True) -> None:
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"hooks.ema.beta must be in [0, 1), got {beta}")
        self.beta, self.start_step, self.warmup = beta, start_step, warmup

    def decay(self, step: int) -> float:
        """The decay used after generator step ``step`` (1-based)."""
        if step < self.start_step:
            return 0.0
        t = step - self.start_step
        return min(self.beta, (1.0 + t) / (10.0 + t)) if self.warmup else self.beta

    def setup(self, state) -> None:
        if state.G_ema is None:
            state.G_ema = copy.deepcopy(state.G).eval().requires_grad_(False)

    def after_d_step(self, state, step: int) -> None:
        pass

    @torch.no_grad()
    def after_g_step(self, state, step: int) -> None:
        beta = self.decay(step)
        ema_params = list(state.G_ema.parameters())
        params = list(state.G.parameters())
        torch._foreach_lerp_(ema_params, params, 1.0 - beta)
        for b_ema, b in zip(state.G_ema.buffers(), state.G.buffers()):
            b_ema.copy_(b)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
