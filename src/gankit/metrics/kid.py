"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs").

Unbiased MMD² with the cubic polynomial kernel k(x, y) = (xᵀy / d + 1)³, averaged over random
subsets. Matches torch-fidelity's ``kid`` and clean-fid's ``kernel_distance`` (same kernel, same
unbiased estimator, 100 subsets of 1,000, mean and population std over subsets); the subsets
are drawn without replacement from ``numpy.random.default_rng(seed)``, so the individual subset
values differ from those tools' RNG streams but not in distribution.

With fewer than 1,000 fake or real samples the subsets shrink to the smaller set's size m,
and the metric's keys say so: ``kid_sub{m}_mean`` / ``kid_sub{m}_std`` instead of the
protocol's ``kid_mean`` / ``kid_std`` (likewise for an explicit ``subset_size``).
"""

from __future__ import annotations

import numpy as np

from gankit.metrics._common import FEATURES, Metric, as_float64, check_same_dim, require_real
from gankit.registry import METRICS

PROTOCOL_SUBSET_SIZE = 1000  # Bińkowski et al. 2018; torch-fidelity, clean-fid


def _kernel_sum(a: np.ndarray, b: np.ndarray, d: int, off_diagonal: bool) -> float:
    """Sum of (aᵀb/d + 1)³ over all pairs (or all pairs but the diagonal), in place."""
    k = a @ b.T
    k /= d
    k += 1.0
    k *= k * k  # cube without a temporary of ** 3
    total = float(k.sum())
    return total - float(np.trace(k)) if off_diagonal else total


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² between equally sized samples x, y [m, d] with (xᵀy/d + 1)³."""
    m, d = x.shape
    sum_xx = _kernel_sum(x, x, d, off_diagonal=True)
    sum_yy = _kernel_sum(y, y, d, off_diagonal=True)
    sum_xy = _kernel_sum(x, y, d, off_diagonal=False)
    return (sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * sum_xy / (m * m)


def subset_size_used(subset_size: int, n_fake: int, n_real: int) -> int:
    """The samples per subset KID draws: ``subset_size``, capped by both set sizes."""
    return min(subset_size, n_fake, n_real)


def kernel_inception_distance(
    fake, real, *, num_subsets: int = 100, subset_size: int = PROTOCOL_SUBSET_SIZE,
    seed: int = 0
) -> tuple[float, float]:
    """KID mean and std over ``num_subsets`` subsets.

    Args:
        fake, real: features [N_fake, D] and [N_real, D].
        num_subsets: number of random subsets (100 in the reference tools).
        subset_size: samples per subset, capped at min(N_fake, N_real).
        seed: seed of the numpy Generator drawing the subsets.

    Returns:
        ``(mean, std)`` of the unbiased MMD² estimates (std with ddof = 0, as the references).
    """
    fake = as_float64(fake, "fake features", min_rows=2)
    real = as_float64(real, "real features", min_rows=2)
    check_same_dim(fake, real, "kid")
    if num_subsets < 1 or subset_size < 2:
        raise ValueError(
            f"need num_subsets >= 1 and subset_size >= 2, got {num_subsets}, {subset_size}"
        )
    m = subset_size_used(subset_size, len(fake), len(real))
    rng = np.random.default_rng(seed)
    values = np.empty(num_subsets)
    for i in range(num_subsets):
        x = fake[rng.choice(len(fake), m, replace=False)]
        y = real[rng.choice(len(real), m, replace=False)]
        values[i] = polynomial_mmd2(x, y)
    return float(values.mean()), float(values.std())


@METRICS.register("kid", "unbiased polynomial-kernel MMD² over subsets (Bińkowski 2018)")
class KID(Metric):
    """KID; keys ``kid_mean`` and ``kid_std``, or ``kid_sub{m}_mean`` and
    ``kid_sub{m}_std`` when the subsets hold m != 1,000 samples."""

    needs = frozenset({FEATURES})

    def compute(
        self, fake, real, *, seed: int = 0, num_subsets: int = 100,
        subset_size: int = PROTOCOL_SUBSET_SIZE,
    ) -> dict[str, float]:
        require_real(real, "kid")
        mean, std = kernel_inception_distance(
            fake, real, num_subsets=num_subsets, subset_size=subset_size, seed=seed
        )
        m = subset_size_used(subset_size, len(fake), len(real))
        name = "kid" if m == PROTOCOL_SUBSET_SIZE else f"kid_sub{m}"
        return {f"{name}_mean": mean, f"{name}_std": std}
