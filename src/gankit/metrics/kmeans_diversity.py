"""Cluster-histogram diversity: k-means on real features, entropy of the generated histogram.

A label-free analogue of mode counting (as in the "number of statistically different bins"
test of Richardson and Weiss 2018, with k-means cells): k-means (scikit-learn ``KMeans``, seeded)
is fitted on real features; generated and real samples are assigned to their nearest centroid;
the Shannon entropy (nats) of each cluster histogram is reported. The ratio H_fake / H_real is
1 when the generator fills the clusters as evenly as the data does and falls towards 0 as it
collapses onto fewer clusters.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

from gankit.metrics._common import FEATURES, Metric, as_float64, check_same_dim, require_real
from gankit.registry import METRICS


def _entropy(labels: np.ndarray, k: int) -> float:
    p = np.bincount(labels, minlength=k) / len(labels)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def kmeans_diversity(
    fake, real, num_clusters: int = 10, seed: int = 0, n_init: int = 3
) -> tuple[float, float]:
    """Entropies (nats) of the generated and real k-means cluster histograms.

    Args:
        fake: generated features [M, D].
        real: real features [N, D], N >= num_clusters.
        num_clusters: k (default 10, e.g. the number of classes).
        seed: ``random_state`` of KMeans.
        n_init: k-means restarts.

    Returns:
        ``(entropy_fake, entropy_real)``, each in [0, ln k].
    """
    fake_np = as_float64(fake, "fake features")
    real_np = as_float64(real, "real features", min_rows=num_clusters)
    check_same_dim(fake_np, real_np, "kmeans_diversity")
    if num_clusters < 2:
        raise ValueError(f"num_clusters must be >= 2, got {num_clusters}")
    km = KMeans(n_clusters=num_clusters, n_init=n_init, random_state=seed).fit(real_np)
    return _entropy(km.predict(fake_np), num_clusters), _entropy(km.labels_, num_clusters)


@METRICS.register("kmeans_diversity", "entropy of generated samples over real k-means clusters")
class KMeansDiversity(Metric):
    """Keys ``kmeans_k{k}_entropy``, ``kmeans_k{k}_entropy_real``, ``kmeans_k{k}_entropy_ratio``."""

    needs = frozenset({FEATURES})

    def compute(self, fake, real, *, seed: int = 0, num_clusters: int = 10) -> dict[str, float]:
        require_real(real, "kmeans_diversity")
        h_fake, h_real = kmeans_diversity(fake, real, num_clusters=num_clusters, seed=seed)
        prefix = f"kmeans_k{num_clusters}_entropy"
        ratio = h_fake / h_real if h_real > 0 else float("nan")
        return {prefix: h_fake, f"{prefix}_real": h_real, f"{prefix}_ratio": ratio}
