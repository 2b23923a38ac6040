"""The image pool of CycleGAN (Zhu et al. 2017, sec. 4; after Shrivastava et al. 2017): D is
updated on a history of generated images rather than only the latest ones, which damps the
oscillation of the two players.

For each generated image of a D update, in order: while the pool holds fewer than ``size``
images, the image is stored and used; once full, with probability ``replace`` (0.5) a
uniformly chosen stored image is used in its place and the new one takes its slot,
otherwise the new image is used. Two unpaired domains (``unpaired:`` data) have a pool
each, drawn independently. Draws come from the run's RNG and the pool is saved with the
run, so resume stays exact. Only the main D's updates use it (not the unrolled critic's).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.components import HookBase
from gankit.registry import HOOKS
from gankit.utils.checks import at_least, fraction


@HOOKS.register("image_pool", "CycleGAN's history of generated images for D (Zhu et al. 2017)")
class ImagePool(HookBase):
    """A pool of up to ``size`` past fakes per domain."""

    @dataclass(frozen=True)
    class Options:
        size: int = 50  # images kept per domain (the paper's 50)
        replace: float = 0.5  # probability that a full pool swaps in a stored image

        def __post_init__(self) -> None:
            at_least("size", self.size, 1)
            fraction("replace", self.replace)

    def __init__(self, options=None, /, **values) -> None:
        super().__init__(options, **values)
        self.pools: list[torch.Tensor] = []  # per domain: [k, C, H, W], k <= size

    def setup(self, state) -> None:
        self.domains = state.info.domains

    def prepare_fake(self, state, fake: torch.Tensor) -> torch.Tensor:
        parts = fake.detach().chunk(self.domains, dim=1)
        while len(self.pools) < len(parts):
            self.pools.append(fake.new_zeros((0, *parts[0].shape[1:])))
        self.pools = [p.to(fake.device) for p in self.pools]  # as loaded: on the CPU
        return torch.cat([self.query(d, part, state.generator) for d, part in
                          enumerate(parts)], 1)

    def query(self, domain: int, images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """The images D sees in place of ``images`` [N, ...] (one domain), the pool updated."""
        o = self.options
        pool = self.pools[domain]
        out = []
        for image in images:
            if len(pool) < o.size:
                pool = torch.cat([pool, image[None]])
                out.append(image)
                continue
            u = torch.rand((), generator=gen, device=gen.device)
            k = torch.randint(len(pool), (), generator=gen, device=gen.device)
            if u < o.replace:
                out.append(pool[k].clone())
                pool[k] = image
            else:
                out.append(image)
        self.pools[domain] = pool
        return torch.stack(out)

    def state_dict(self) -> dict:
        return {"pools": [p.cpu() for p in self.pools]}

    def load_state_dict(self, state: dict) -> None:
        self.pools = [p.clone() for p in state.get("pools", [])]
