"""Density and coverage (Naeem et al. 2020, "Reliable fidelity and diversity metrics for
generative models").

Balls around real samples only, radius = distance to the k-th nearest real neighbour (itself
excluded). Density = (1 / kM) sum over generated samples of the number of real balls containing
it; coverage = fraction of real samples whose ball contains at least one generated sample.
Strict < as the reference implementation (clovaai/generative-evaluation-prdc); exact float64
distances, computed in blocks.
"""

from __future__ import annotations

import torch

from gankit.metrics import _knn
from gankit.metrics._common import FEATURES, Metric, as_float64, check_same_dim, require_real
from gankit.registry import METRICS


def density_coverage(fake, real, k: int = 5) -> tuple[float, float]:
    """Density and coverage of generated features against real ones.

    Args:
        fake: generated features [M, D].
        real: real features [N, D], N > k.
        k: neighbourhood size (5 in the paper).

    Returns:
        ``(density, coverage)``; density is unbounded above (1 on average for matching
        distributions), coverage lies in [0, 1].
    """
    fake_np = as_float64(fake, "fake features")
    real_np = as_float64(real, "real features", min_rows=k + 1)
    check_same_dim(fake_np, real_np, "dc")
    fake_t, real_t = _knn.to_tensor(fake_np), _knn.to_tensor(real_np)
    radii = _knn.knn_radii(real_t, k)
    inside = torch.zeros((), dtype=torch.float64)
    nearest_fake = torch.full((len(real_t),), float("inf"), dtype=torch.float64)
    for _, dist in _knn.distance_blocks(fake_t, real_t):  # dist [block of fake, N]
        inside += (dist < radii[None, :]).sum()
        nearest_fake = torch.minimum(nearest_fake, dist.min(dim=0).values)
    density = float(inside) / (k * len(fake_t))
    coverage = float((nearest_fake < radii).double().mean())
    return density, coverage


@METRICS.register("dc", "density/coverage with k-NN balls around real samples (Naeem 2020)")
class DensityCoverage(Metric):
    """Keys ``dc_k{k}_density`` and ``dc_k{k}_coverage``."""

    needs = frozenset({FEATURES})

    def compute(self, fake, real, *, seed: int = 0, k: int = 5) -> dict[str, float]:
        del seed  # deterministic
        require_real(real, "dc")
        density, coverage = density_coverage(fake, real, k=k)
        return {f"dc_k{k}_density": density, f"dc_k{k}_coverage": coverage}
