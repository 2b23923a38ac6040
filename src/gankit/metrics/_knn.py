"""Chunked exact Euclidean k-nearest-neighbour helpers in float64 for the manifold metrics.

Distances are computed block by block (``||a||² + ||b||² - 2 a·b``, clamped at 0) so that
10,000 x 10,000 comparisons never hold more than ``max_elements`` distances in memory.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

# 2**24 float64 distances = 128 MiB per block.
MAX_ELEMENTS = 2**24


def to_tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))


def distance_blocks(
    a: torch.Tensor, b: torch.Tensor, max_elements: int = MAX_ELEMENTS
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(start, D)`` with ``D[i, j] = ||a[start + i] - b[j]||``, row blocks of ``a``."""
    rows = max(1, max_elements // max(1, len(b)))
    b_sq = (b * b).sum(1)
    for start in range(0, len(a), rows):
        block = a[start : start + rows]
        sq = (block * block).sum(1)[:, None] + b_sq[None, :] - 2.0 * (block @ b.T)
        yield start, sq.clamp_min_(0.0).sqrt_()


def knn_radii(x: torch.Tensor, k: int, max_elements: int = MAX_ELEMENTS) -> torch.Tensor:
    """Distance from each row of ``x`` [N, D] to its k-th nearest *other* row -> [N].

    The distance to itself is set to exactly 0 and the (k+1)-th smallest distance is taken,
    which equals the k-th nearest neighbour with the point itself excluded (duplicates of a
    point still count as neighbours at distance 0).
    """
    if not 1 <= k < len(x):
        raise ValueError(f"k must lie in 1..{len(x) - 1} for {len(x)} samples, got {k}")
    radii = torch.empty(len(x), dtype=x.dtype)
    for start, dist in distance_blocks(x, x, max_elements):
        rows = torch.arange(len(dist))
        dist[rows, start + rows] = 0.0
        radii[start : start + len(dist)] = dist.kthvalue(k + 1, dim=1).values
    return radii


def nearest_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Distance from each row of ``a`` to its nearest row of ``b`` -> [len(a)]."""
    out = torch.empty(len(a), dtype=a.dtype)
    for start, dist in distance_blocks(a, b):
        out[start : start + len(dist)] = dist.min(dim=1).values
    return out
