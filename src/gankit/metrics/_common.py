"""The calling convention shared by every registered metric, and protocol-stating result keys.

A registered metric is a class with

* ``needs``: which input it reads, one of ``{"features", "probs", "points"}`` (a frozenset
  holding that one kind);
* ``compute(fake, real, *, seed=0, **options) -> dict[str, float]``, keys like ``fid`` or
  ``pr_k3_precision`` (``real`` may be None for metrics that only look at generated samples);
* optionally ``real_summary(real) -> dict[str, np.ndarray]``: statistics of the real set that
  an evaluator may cache and hand back as ``compute(..., real_summary=...)``.

`protocol_key` turns ``fid`` into ``fid_10k_mnist5k_lenet`` so that every reported number
names its sample count, reference data set and feature extractor.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

FEATURES = "features"
PROBS = "probs"
POINTS = "points"
INPUT_KINDS = frozenset({FEATURES, PROBS, POINTS})


class Metric:
    """Base class of registered metrics (see the module docstring for the convention)."""

    needs: frozenset[str] = frozenset()
    needs_real: bool = True  # False: ``real`` may be None

    def real_summary(self, real: np.ndarray) -> dict[str, np.ndarray]:
        """Cacheable statistics of the real set; empty when the metric has none."""
        return {}

    def compute(self, fake: Any, real: Any, *, seed: int = 0, **options: Any) -> dict[str, float]:
        raise NotImplementedError


def format_count(n: int) -> str:
    """Write a sample count compactly: 10000 -> "10k", 2500 -> "2.5k", 500 -> "500"."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise ValueError(f"n must be a positive integer sample count, got {n!r}")
    n = int(n)
    for unit, size, decimals in (("M", 1_000_000, 6), ("k", 1_000, 3)):
        if n >= size:
            return f"{n / size:.{decimals}f}".rstrip("0").rstrip(".") + unit
    return str(n)


def protocol_key(metric_key: str, n: int, dataset: str, extractor: str) -> str:
    """Name a result by its protocol, e.g. ``("fid", 10000, "mnist5k", "lenet")`` ->
    ``"fid_10k_mnist5k_lenet"`` and ``("kid_mean", 2500, ...)`` -> ``"kid_mean_2.5k_..."``.

    Args:
        metric_key: a key returned by a metric's ``compute`` (``fid``, ``pr_k3_precision``).
        n: number of generated samples evaluated.
        dataset: name of the reference (real) data set.
        extractor: short name of the feature extractor (``lenet``, ``inception``, ``raw``).
    """
    for arg, value in (("metric_key", metric_key), ("dataset", dataset), ("extractor", extractor)):
        if not isinstance(value, str) or not value or any(c.isspace() for c in value):
            raise ValueError(f"{arg} must be a non-empty string without spaces, got {value!r}")
    return f"{metric_key}_{format_count(n)}_{dataset}_{extractor}"


def as_float64(x: Any, name: str, ndim: int = 2, min_rows: int = 1) -> np.ndarray:
    """Convert a numpy array or torch tensor to a finite C-contiguous float64 numpy array."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {x.shape}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def require_real(real: Any, metric: str) -> None:
    if real is None:
        raise ValueError(f"metric {metric!r} compares against real data; got real=None")


def check_same_dim(fake: np.ndarray, real: np.ndarray, metric: str) -> None:
    if fake.shape[1:] != real.shape[1:]:
        raise ValueError(
            f"metric {metric!r}: fake and real must have the same feature shape, "
            f"got {fake.shape[1:]} and {real.shape[1:]}"
        )
