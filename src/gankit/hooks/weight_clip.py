"""Weight clipping of the WGAN critic, Arjovsky et al. 2017 (Algorithm 1, c = 0.01)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.registry import HOOKS


@HOOKS.register("weight_clip", "clamp every D parameter to [-c, c] after each D step (WGAN)")
class WeightClip:
    """Keeps the critic (roughly) K-Lipschitz by clamping its weights."""

    @dataclass(frozen=True)
    class Options:
        clip: float = 0.01  # c in the paper

    def __init__(self, clip: float = 0.01) -> None:
        if clip <= 0:
            raise ValueError(f"hooks.weight_clip.clip must be positive, got {clip}")
        self.clip = clip

    def setup(self, state) -> None:
        pass

    @torch.no_grad()
    def constrain_d(self, D: torch.nn.Module) -> None:
        """Clamp D's weights; the loop calls it after every D update, including those of the
        unrolled critic's copy (``train.unrolled_steps``)."""
        for p in D.parameters():
            p.clamp_(-self.clip, self.clip)

    def after_d_step(self, state, step: int) -> None:
        pass

    def after_g_step(self, state, step: int) -> None:
        pass

    def before_sampling(self, state) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
