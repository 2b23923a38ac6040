"""Instance noise, Sønderby et al. 2017 (section 3.2) and Arjovsky & Bottou 2017 (section 3):
Gaussian noise added to every input of D, real and fake alike, so that the two
distributions overlap and D's gradient stays informative; annealed linearly to zero.

sigma(step) = std * max(0, 1 - step / anneal_steps), or ``std`` throughout when
``anneal_steps`` is 0. The noise is drawn from the run's generator, so resume is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.components import AugmentationBase
from gankit.registry import AUGMENTATIONS
from gankit.utils.checks import at_least


@AUGMENTATIONS.register("instance_noise", "annealed Gaussian instance noise, Sønderby 2017")
class InstanceNoise(AugmentationBase):
    """x -> x + sigma(step) * N(0, I), for images and points."""

    @dataclass(frozen=True)
    class Options:
        std: float = 0.1  # sigma at step 0 (data space: images in [-1, 1])
        anneal_steps: int = 0  # sigma decays linearly to 0 at this G step; 0 = constant

        def __post_init__(self) -> None:
            at_least("std", self.std, 0)
            at_least("anneal_steps", self.anneal_steps, 0, " (0 = constant)")

    def sigma(self, step: int) -> float:
        """The noise standard deviation at G step ``step``."""
        o = self.options
        if o.anneal_steps == 0:
            return o.std
        return o.std * max(0.0, 1.0 - step / o.anneal_steps)

    def __call__(self, x: torch.Tensor, step: int, generator: torch.Generator) -> torch.Tensor:
        sigma = self.sigma(step)
        if sigma == 0.0:  # annealed away: no draw, D sees the data itself
            return x
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return x + sigma * noise
