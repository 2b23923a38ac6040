"""Path length regularisation of G, Karras et al. 2020 (StyleGAN2), section 3.2:

    E_{w, y ~ N(0, I)} ( ||J_w^T y||_2 - a )^2

where J_w is the Jacobian of the synthesis network at w and a is a running mean of the
lengths ||J_w^T y|| (exponential, ``decay`` 0.01). As the authors' code: y is scaled by
1 / sqrt(H * W) so the lengths do not grow with the resolution, the gradient is taken with
respect to every layer's w (ws [N, num_ws, w_dim]) and the lengths are
sqrt(mean over layers of sum over w_dim of the squared gradient); the penalty runs on a batch
``batch_shrink`` times smaller than the training batch, with fresh latents and style mixing,
and is weighted by ``weight`` (2 in the paper) times ``interval`` (lazy regularisation,
section 3.1: every interval-th G step, scaled up by the interval).

As in the paper, with interval > 1 the penalty is its own optimiser step after the main G
update (the loop's lazy phase; `gankit.training.loop`). The running mean a is saved with the
run (``state_dict``). Needs a generator with ``styles(z, c)`` and ``synthesis(ws)``
(``stylegan2``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gankit.components import RegularizerBase
from gankit.registry import REGULARIZERS
from gankit.utils.checks import at_least, fraction, positive


@REGULARIZERS.register("path_length", "StyleGAN2 path length regularisation of G "
                                      "(Karras 2020)")
class PathLength(RegularizerBase):
    """The path length penalty; ``mean`` holds the running mean a (a 0-d tensor)."""

    @dataclass(frozen=True)
    class Options:
        weight: float = 2.0  # penalty weight (the paper's 2)
        decay: float = 0.01  # running-mean decay of the path lengths (the paper's 0.01)
        batch_shrink: int = 2  # the penalty's batch is the training batch // batch_shrink
        interval: int = 4  # lazy: every k-th G step, scaled by k, own G step (the paper's 4)

        def __post_init__(self) -> None:
            at_least("weight", self.weight, 0)
            positive("decay", self.decay)
            fraction("decay", self.decay)
            at_least("batch_shrink", self.batch_shrink, 1)
            at_least("interval", self.interval, 1, " (every k-th G step)")

    phases = ("G",)
    generator = "stylegan2"  # needs styles(z, c) and synthesis(ws); checked before training

    def __init__(self, options=None, /, **values) -> None:
        super().__init__(options, **values)
        self.mean = torch.zeros(())  # a: no lengths seen yet

    def __call__(self, ctx) -> torch.Tensor:
        G = ctx.G
        if not (hasattr(G, "styles") and hasattr(G, "synthesis")):
            raise ValueError(f"path_length needs a style-based generator (generator: "
                             f"stylegan2), got {type(G).__name__}; remove "
                             f"regularizers.path_length")
        n = max(1, ctx.fake.shape[0] // self.options.batch_shrink)
        device = ctx.fake.device
        z = torch.randn(n, G.z_dim, generator=ctx.generator, device=device)
        c = ctx.fake_labels[:n] if ctx.fake_labels is not None else None
        ws = G.styles(z, c).contiguous()  # [n, num_ws, w_dim], every layer's w in the graph
        x = G.synthesis(ws).float()  # [n, C, H, W]
        lengths = self.lengths(x, ws, torch.randn(x.shape, generator=ctx.generator,
                                                  device=device))
        return self.penalty(lengths)

    @staticmethod
    def lengths(x: torch.Tensor, ws: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """||J^T y'|| per sample [n] for images x [n, C, H, W] computed from ws [n, L, D],
        y' = y / sqrt(H W), averaged over the L layers' squared norms (differentiable)."""
        y = y / math.sqrt(x.shape[2] * x.shape[3])
        (grad,) = torch.autograd.grad((x * y).sum(), ws, create_graph=True)
        return grad.square().sum(dim=2).mean(dim=1).sqrt()

    def penalty(self, lengths: torch.Tensor) -> torch.Tensor:
        """weight * interval * mean (lengths - a)^2, a updated first with these lengths:
        a <- a + decay (mean(lengths) - a)."""
        o = self.options
        a = self.mean.to(lengths.device).lerp(lengths.detach().mean().float(), o.decay)
        self.mean = a
        return o.weight * o.interval * (lengths - a).square().mean()

    def state_dict(self) -> dict:
        return {"mean": self.mean.detach().cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        if "mean" in state:
            self.mean = state["mean"].clone()
