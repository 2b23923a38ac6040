"""Improved precision and recall (Kynkäänniemi et al. 2019, "Improved precision and recall
metric for assessing generative models").

Each real feature gets a ball whose radius is the distance to its k-th nearest real neighbour
(itself excluded); precision is the fraction of generated samples inside at least one real ball.
Recall swaps the roles: the fraction of real samples inside at least one generated ball.
Membership uses <=, as the reference implementation (kynkaat/improved-precision-and-recall-
metric, ``distance <= radius``). Exact float64 distances, computed in blocks.
"""

from __future__ import annotations

import torch

from gankit.metrics import _knn
from gankit.metrics._common import FEATURES, Metric, as_float64, check_same_dim, require_real
from gankit.registry import METRICS


def precision_recall(fake, real, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall of generated features against real ones.

    Args:
        fake: generated features [M, D].
        real: real features [N, D].
        k: neighbourhood size for the radii (3 in the paper).

    Returns:
        ``(precision, recall)``, both in [0, 1].
    """
    fake_np = as_float64(fake, "fake features", min_rows=k + 1)
    real_np = as_float64(real, "real features", min_rows=k + 1)
    check_same_dim(fake_np, real_np, "pr")
    fake_t, real_t = _knn.to_tensor(fake_np), _knn.to_tensor(real_np)
    real_radii = _knn.knn_radii(real_t, k)
    fake_radii = _knn.knn_radii(fake_t, k)
    fake_in_real = torch.zeros(len(fake_t), dtype=torch.bool)
    real_in_fake = torch.zeros(len(real_t), dtype=torch.bool)
    for start, dist in _knn.distance_blocks(fake_t, real_t):  # dist [block of fake, N]
        fake_in_real[start : start + len(dist)] = (dist <= real_radii[None, :]).any(dim=1)
        real_in_fake |= (dist <= fake_radii[start : start + len(dist), None]).any(dim=0)
    return float(fake_in_real.double().mean()), float(real_in_fake.double().mean())


@METRICS.register("pr", "improved precision/recall with k-NN balls (Kynkäänniemi 2019)")
class PrecisionRecall(Metric):
    """Keys ``pr_k{k}_precision`` and ``pr_k{k}_recall``."""

    needs = frozenset({FEATURES})

    def compute(self, fake, real, *, seed: int = 0, k: int = 3) -> dict[str, float]:
        del seed  # deterministic
        require_real(real, "pr")
        precision, recall = precision_recall(fake, real, k=k)
        return {f"pr_k{k}_precision": precision, f"pr_k{k}_recall": recall}
