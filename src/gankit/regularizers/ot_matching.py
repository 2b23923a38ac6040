"""Minibatch optimal-transport matching in D's feature space: the minibatch energy distance
of OT-GAN (Salimans, Zhang, Radford and Metaxas 2018), here a term added to G's loss.

Feature matching (``feature_matching``) compares the *means* of a real and a fake batch, so
G can pay for drawing one kind of sample too often by shifting others. This term compares
the batches sample by sample: each batch is split into halves, X1, X2 (real) and Y1, Y2
(fake), and

    value = (W(X1,Y1) + W(X1,Y2) + W(X2,Y1) + W(X2,Y2)) / 2 - W(X1,X2) - W(Y1,Y2),

the estimate of 2 E W(X,Y) - E W(X,X') - E W(Y,Y') from independent halves, which is zero
in expectation when G's distribution is the data's. W(A, B) is the exact optimal transport
cost between two equal-size sets with uniform weights, i.e. the mean cost of the best
one-to-one matching (an assignment problem, solved exactly with the Hungarian method;
OT-GAN uses an entropic Sinkhorn approximation instead). Its gradient is that of the
matched costs (the assignment is piecewise constant), so every fake is pulled towards the
real sample it is matched to: when a batch holds more fakes of one kind than reals of that
kind, the extra fakes are matched to reals of other kinds and pulled towards them. The
W(Y1, Y2) term pushes fakes apart, against collapse. The cost between feature vectors is
the cosine distance 1 - cos(a, b) (OT-GAN's; scale-free, in [0, 2]) or the squared
Euclidean distance. Real features are detached: the gradient reaches G only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from gankit.registry import REGULARIZERS
from gankit.regularizers.feature_matching import feature_pair

COSTS = ("cosine", "sqeuclidean")


@REGULARIZERS.register("ot_matching",
                       "G minimises a minibatch OT energy distance in D's features (OT-GAN)")
class OTMatching:
    """The minibatch energy distance with exact OT between halves of the real and fake
    batches, in D's penultimate features."""

    @dataclass(frozen=True)
    class Options:
        weight: float = 1.0  # multiplier of the energy distance, added to G's loss
        interval: int = 1  # apply every k-th G step (weight scaled by k)
        cost: str = "cosine"  # cosine (1 - cos) or sqeuclidean between feature vectors

        def __post_init__(self) -> None:
            if self.weight < 0 or self.interval < 1:
                raise ValueError(f"regularizers.ot_matching needs weight >= 0 and interval "
                                 f">= 1, got {self}")
            if self.cost not in COSTS:
                raise ValueError(f"regularizers.ot_matching.cost must be one of {COSTS}, got "
                                 f"{self.cost!r}")

    phases = ("G",)  # runs during G updates
    needs_real_grad = False
    needs_real_features = True  # the loop scores the latest real batch with the G step's D

    def __init__(self, weight: float = 1.0, interval: int = 1, cost: str = "cosine") -> None:
        self.Options(weight, interval, cost)  # validates
        self.weight, self.interval, self.cost = weight, interval, cost

    def __call__(self, ctx) -> torch.Tensor:
        value = energy_distance(*feature_pair(ctx, "ot_matching"), self.cost)
        return self.weight * self.interval * value


def energy_distance(real: torch.Tensor, fake: torch.Tensor, cost: str = "cosine"
                    ) -> torch.Tensor:
    """(W(X1,Y1) + W(X1,Y2) + W(X2,Y1) + W(X2,Y2)) / 2 - W(X1,X2) - W(Y1,Y2) over the first
    and second halves of ``real`` [N, F] and ``fake`` [M, F] (halves of min(N, M) // 2
    rows; a leftover row is not used)."""
    n = min(len(real), len(fake)) // 2
    if n < 1:
        raise ValueError(f"ot_matching needs batches of at least 2, got {len(real)} real and "
                         f"{len(fake)} fake; use a larger train.batch_size")
    x1, x2, y1, y2 = real[:n], real[n:2 * n], fake[:n], fake[n:2 * n]
    cross = sum(transport_cost(a, b, cost) for a in (x1, x2) for b in (y1, y2))
    return cross / 2 - transport_cost(x1, x2, cost) - transport_cost(y1, y2, cost)


def transport_cost(a: torch.Tensor, b: torch.Tensor, cost: str = "cosine") -> torch.Tensor:
    """Exact OT cost between the uniform distributions on the rows of ``a`` and ``b`` [n, F]:
    the mean cost of the cheapest one-to-one matching. Differentiable in a and b (the
    matching is held fixed, the gradient of the matched costs)."""
    c = cost_matrix(a, b, cost)
    rows, cols = linear_sum_assignment(c.detach().to("cpu", torch.float64).numpy())
    rows, cols = (torch.as_tensor(np.asarray(i), device=c.device) for i in (rows, cols))
    return c[rows, cols].mean()


def cost_matrix(a: torch.Tensor, b: torch.Tensor, cost: str = "cosine") -> torch.Tensor:
    """[n, m] costs between the rows of a [n, F] and b [m, F]."""
    if cost == "cosine":
        return 1.0 - F.normalize(a, dim=1) @ F.normalize(b, dim=1).T
    if cost == "sqeuclidean":
        return a.square().sum(1, keepdim=True) + b.square().sum(1) - 2.0 * a @ b.T
    raise ValueError(f"ot_matching cost must be one of {COSTS}, got {cost!r}")
