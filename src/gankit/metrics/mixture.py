"""Mode metrics for 2D Gaussian mixtures (ring / grid), the PacGAN (Lin et al. 2018) and VEEGAN
(Srivastava et al. 2017) protocol, PROTOCOLS.md §1.

A generated point is high quality (HQ) if its Euclidean distance to the nearest mode mean is at
most 3 std. A mode is captured if at least one HQ point is assigned to it. ``hq`` = HQ / N.
``reverse_kl`` = KL(p̂ || uniform) = ln K - H(p̂), natural log, p̂ the histogram of HQ points
over the K modes. With no HQ point p̂ is undefined; ``reverse_kl`` is then reported as ln K,
the supremum of KL(p || uniform) over all histograms (the value of a full collapse onto one
mode), so results stay finite, averageable and never better than any collapse.
"""

from __future__ import annotations

import numpy as np

from gankit.metrics._common import POINTS, Metric, as_float64
from gankit.registry import METRICS


def mixture_metrics(points, means, std: float) -> dict[str, float]:
    """PacGAN mode metrics of generated 2D points.

    Args:
        points: generated points [N, 2] (any [N, D] works).
        means: mode means [K, D].
        std: the mixture components' standard deviation (> 0).

    Returns:
        ``dict(modes=#captured modes, hq=fraction of HQ points, reverse_kl=nats)``.
    """
    x = as_float64(points, "points")
    mu = as_float64(means, "means")
    if x.shape[1] != mu.shape[1]:
        raise ValueError(f"points {x.shape} and means {mu.shape} must share the last dimension")
    if not std > 0:
        raise ValueError(f"std must be positive, got {std}")
    k = len(mu)
    dist = np.sqrt(((x[:, None, :] - mu[None, :, :]) ** 2).sum(-1))  # [N, K]
    nearest = dist.argmin(axis=1)
    hq = dist[np.arange(len(x)), nearest] <= 3.0 * std
    counts = np.bincount(nearest[hq], minlength=k).astype(np.float64)
    if hq.any():
        p = counts[counts > 0] / counts.sum()
        reverse_kl = max(float(np.log(k) + (p * np.log(p)).sum()), 0.0)
    else:
        reverse_kl = float(np.log(k))
    return {"modes": float((counts > 0).sum()), "hq": float(hq.mean()), "reverse_kl": reverse_kl}


@METRICS.register("mixture", "modes captured / high-quality % / reverse KL on 2D mixtures")
class Mixture(Metric):
    """Keys ``mixture_modes``, ``mixture_hq``, ``mixture_reverse_kl``; options means, std."""

    needs = frozenset({POINTS})
    needs_real = False

    def compute(self, fake, real=None, *, seed: int = 0, means=None, std=None) -> dict[str, float]:
        del real, seed  # generated points only; deterministic
        if means is None or std is None:
            raise ValueError("metric 'mixture' needs options means=[K, 2] and std=<float>")
        return {f"mixture_{k}": v for k, v in mixture_metrics(fake, means, std).items()}
