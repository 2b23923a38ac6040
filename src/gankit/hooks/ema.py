"""Exponential moving average of the generator's weights (Karras et al. 2018; Yazici et al.
2019): G_ema <- beta * G_ema + (1 - beta) * G after every G step; buffers are copied.
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

    def __init__(self, beta: float = 0.999, start_step: int = 0) -> None:
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"hooks.ema.beta must be in [0, 1), got {beta}")
        self.beta, self.start_step = beta, start_step

    def setup(self, state) -> None:
        if state.G_ema is None:
            state.G_ema = copy.deepcopy(state.G).eval().requires_grad_(False)

    def after_d_step(self, state, step: int) -> None:
        pass

    @torch.no_grad()
    def after_g_step(self, state, step: int) -> None:
        beta = self.beta if step >= self.start_step else 0.0
        ema_params = list(state.G_ema.parameters())
        params = list(state.G.parameters())
        torch._foreach_lerp_(ema_params, params, 1.0 - beta)
        for b_ema, b in zip(state.G_ema.buffers(), state.G.buffers()):
            b_ema.copy_(b)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
