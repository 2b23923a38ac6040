"""BigGAN's orthogonal regularisation of G (Brock et al. 2019, section 3.1, eq. 3):

    R = beta * sum_W || W W^T * (1 - I) ||_F^2

over every weight W of G with two or more dimensions (conv kernels and linear maps, viewed
as [out, in * k * k], one row per filter), except embedding tables; biases and BatchNorm
parameters are 1-D and left out. Only the filters' pairwise inner products are pushed
towards 0, not their norms. Under spectral norm the trained (unnormalised) weight is
regularised, as in BigGAN's code. (That code adds 2 * beta * (W W^T * (1 - I)) W to the
gradient, i.e. half of this penalty's gradient: its ``G_ortho`` 1e-4 is beta = 5e-5 here.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gankit.components import RegularizerBase
from gankit.registry import REGULARIZERS
from gankit.utils.checks import at_least


def orthogonal_weights(G: nn.Module) -> list[torch.Tensor]:
    """The weights the penalty covers: every parameter of 2+ dimensions outside nn.Embedding
    modules (under a parametrisation, the trained original)."""
    skip = {id(p) for m in G.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    return [p for p in G.parameters() if p.dim() >= 2 and id(p) not in skip]


def orthogonal_penalty(weights: list[torch.Tensor]) -> torch.Tensor:
    """sum over W of ||W W^T * (1 - I)||_F^2, each W as [rows, rest]."""
    total = weights[0].new_zeros(())
    for w in weights:
        w = w.reshape(w.shape[0], -1)
        gram = w @ w.T  # [rows, rows]
        total = total + (gram - torch.diag_embed(gram.diagonal())).square().sum()
    return total


@REGULARIZERS.register("orthogonal", "BigGAN's off-diagonal orthogonal penalty on G, Brock 2019")
class Orthogonal(RegularizerBase):
    """beta * sum ||W W^T * (1 - I)||_F^2 over G's weights, added to G's loss."""

    @dataclass(frozen=True)
    class Options:
        beta: float = 1e-4  # penalty weight (BigGAN: 1e-4)
        interval: int = 1  # k > 1: every k-th G step, scaled by k, in its own G step

        def __post_init__(self) -> None:
            at_least("beta", self.beta, 0)
            at_least("interval", self.interval, 1, " (every k-th G step)")

    phases = ("G",)  # joins the generator's update

    def __call__(self, ctx) -> torch.Tensor:
        weights = orthogonal_weights(ctx.G)
        if not weights:
            raise ValueError("the orthogonal regulariser found no weight matrix in G")
        o = self.options
        return o.beta * o.interval * orthogonal_penalty(weights)
