"""Weight clipping of the WGAN critic, Arjovsky et al. 2017 (Algorithm 1, c = 0.01)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.components import HookBase
from gankit.registry import HOOKS
from gankit.utils.checks import positive


@HOOKS.register("weight_clip", "clamp every D parameter to [-c, c] after each D step (WGAN)")
class WeightClip(HookBase):
    """Keeps the critic (roughly) K-Lipschitz by clamping its weights."""

    @dataclass(frozen=True)
    class Options:
        clip: float = 0.01  # c in the paper

        def __post_init__(self) -> None:
            positive("clip", self.clip)

    @torch.no_grad()
    def constrain_d(self, D: torch.nn.Module) -> None:
        """Clamp D's weights; the loop calls it after every D update, including those of the
        first-order unrolled critic's copy (``train.unrolled_steps``)."""
        c = self.options.clip
        for p in D.parameters():
            p.clamp_(-c, c)
