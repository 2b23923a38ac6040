"""Inception Score (Salimans et al. 2016, "Improved techniques for training GANs").

IS = exp(E_x KL(p(y|x) || p(y))) over class probabilities, computed on ``splits`` chunks with
p(y) estimated per chunk; mean and std (ddof = 0) over chunks. Matches torch-fidelity's ``isc``:
the samples are first shuffled with a seeded permutation (torch-fidelity's default, so that
class-ordered samples, e.g. from a class-conditional generator, do not give one class per
chunk; the permutation comes from ``numpy.random.default_rng(seed)``), then chunk i holds rows
[i N / splits, (i + 1) N / splits). With ``shuffle=False`` it is the openai/improved-gan
reference computation. 0 log 0 is taken as 0, so one-hot probabilities work.
"""

from __future__ import annotations

import numpy as np

from gankit.metrics._common import PROBS, Metric, as_float64
from gankit.registry import METRICS


def inception_score(
    probs, splits: int = 10, *, shuffle: bool = True, seed: int = 0
) -> tuple[float, float]:
    """Inception Score of class probabilities.

    Args:
        probs: [N, K] rows summing to 1 (softmax outputs), N >= splits.
        splits: number of chunks (10 in the reference).
        shuffle: permute the samples (seeded) before chunking.
        seed: seed of the permutation.

    Returns:
        ``(mean, std)`` over chunks; between 1 (no information) and K.
    """
    p = as_float64(probs, "probs")
    n = len(p)
    if not 1 <= splits <= n:
        raise ValueError(f"splits must lie in 1..{n} for {n} samples, got {splits}")
    if (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError("probs must be non-negative with rows summing to 1 (softmax outputs)")
    if shuffle:
        p = p[np.random.default_rng(seed).permutation(n)]
    scores = np.empty(splits)
    for i in range(splits):
        part = p[i * n // splits : (i + 1) * n // splits]
        p_y = part.mean(axis=0, keepdims=True)
        log_ratio = np.log(np.where(part > 0, part, 1.0)) - np.log(np.where(part > 0, p_y, 1.0))
        kl = (part * log_ratio).sum(axis=1)
        scores[i] = np.exp(kl.mean())
    return float(scores.mean()), float(scores.std())


@METRICS.register("is", "Inception Score from class probabilities (Salimans 2016)")
class InceptionScore(Metric):
    """IS over generated samples only; keys ``is_mean`` and ``is_std``."""

    needs = frozenset({PROBS})
    needs_real = False

    def compute(
        self, fake, real=None, *, seed: int = 0, splits: int = 10, shuffle: bool = True
    ) -> dict[str, float]:
        del real  # IS looks at generated samples only
        mean, std = inception_score(fake, splits=splits, shuffle=shuffle, seed=seed)
        return {"is_mean": mean, "is_std": std}
