"""Instance noise, Sønderby et al. 2017 (section 3.2) and Arjovsky & Bottou 2017 (section 3):
Gaussian noise added to every input of D, real and fake alike, so that the two
distributions overlap and D's gradient stays informative; annealed linearly to zero.

sigma(step) = std * max(0, 1 - step / anneal_steps), or ``std`` throughout when
``anneal_steps`` is 0. The noise is drawn from the run's generator, so resume is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.registry import AUGMENTATIONS


@AUGMENTATIONS.register("instance_noise", "annealed Gaussian instance noise, Sønderby 2017")
class InstanceNoise:
    """x -> x + sigma(step) * N(0, I), for images and points."""

    @dataclass(frozen=True)
    class Options:
        std: float = 0.1  # sigma at step 0 (data space: images in [-1, 1])
        anneal_steps: int = 0  # sigma decays linearly to 0 at this G step; 0 = constant

        def __post_init__(self) -> None:
            if self.std < 0 or self.anneal_steps < 0:
                raise ValueError(f"augmentations.instance_noise needs std >= 0 and "
                                 f"anneal_steps >= 0, got {self}")

    def __init__(self, std: float = 0.1, anneal_steps: int = 0) -> None:
        self.Options(std, anneal_steps)  # validates
        self.std, self.anneal_steps = std, anneal_steps

    def sigma(self, step: int) -> float:
        """The noise standard deviation at G step ``step``."""
        if self.anneal_steps == 0:
            return self.std
        return self.std * max(0.0, 1.0 - step / self.anneal_steps)

    def __call__(self, x: torch.Tensor, step: int, generator: torch.Generator) -> torch.Tensor:
        sigma = self.sigma(step)
        if sigma == 0.0:  # annealed away: no draw, D sees the data itself
            return x
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return x + sigma * noise

    def state_dict(self) -> dict:
        return {}  # sigma is a function of the step; nothing to save

    def load_state_dict(self, state: dict) -> None:
        del state
