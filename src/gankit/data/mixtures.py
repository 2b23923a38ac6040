"""2D Gaussian mixtures of the PacGAN protocol (Lin, Khetan, Fanti & Oh, NeurIPS 2018).

- ``ring``: 8 Gaussians, means (cos 2πi/8, sin 2πi/8), i = 0..7, std 0.01.
- ``grid``: 25 Gaussians, means (2i, 2j) for i, j in -2..2 (PacGAN's order), std 0.05.

Both are a FIXED training set of 100,000 points: exactly 100,000 / K per mode (12,500 for the
ring, 4,000 for the grid), in an order shuffled once, drawn from a fixed internal seed with
NumPy's PCG64, so every run and every user trains on the same data. ``y`` is the mode index.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from gankit.data._common import Dataset, LoadOptions, no_arg
from gankit.registry import DATASETS

NUM_SAMPLES = 100_000  # PacGAN's training-set size
_DATA_SEED = 2018  # fixed so the training set never changes; do not edit


def _ring() -> tuple[np.ndarray, float]:
    angles = 2 * math.pi * np.arange(8) / 8
    return np.stack([np.cos(angles), np.sin(angles)], axis=1), 0.01


def _grid() -> tuple[np.ndarray, float]:
    means = [(2.0 * i, 2.0 * j) for i in range(-2, 3) for j in range(-2, 3)]
    return np.array(means), 0.05


_SPECS = {"ring": _ring, "grid": _grid}


def mixture_spec(name: str) -> tuple[np.ndarray, float]:
    """Mode centres and per-coordinate std of a mixture.

    Args:
        name: "ring" or "grid".

    Returns:
        ``(means, std)``: float64 ``[K, 2]`` centres (row k = mode k = label k) and the std.
    """
    if name not in _SPECS:
        raise ValueError(f"unknown mixture {name!r}; valid: {', '.join(sorted(_SPECS))}")
    return _SPECS[name]()


def _sample(name: str) -> Dataset:
    means, std = mixture_spec(name)
    k = len(means)
    rng = np.random.default_rng(_DATA_SEED)
    y = rng.permutation(np.repeat(np.arange(k), NUM_SAMPLES // k))
    x = means[y] + std * rng.standard_normal((NUM_SAMPLES, 2))
    return Dataset(
        x=torch.from_numpy(x.astype(np.float32)),  # [100000, 2]
        y=torch.from_numpy(y.astype(np.int64)),
        num_classes=k,
        kind="points",
        name=name,
        class_names=[str(i) for i in range(k)],
    )


@DATASETS.register("ring", "8 Gaussians on the unit circle, std 0.01, 100k fixed points (PacGAN)")
def ring(arg: str | None, opts: LoadOptions) -> Dataset:
    """The PacGAN 2D ring."""
    no_arg("ring", arg)
    return _sample("ring")


@DATASETS.register("grid", "25 Gaussians on {-4..4 step 2}^2, std 0.05, 100k fixed points (PacGAN)")
def grid(arg: str | None, opts: LoadOptions) -> Dataset:
    """The PacGAN 2D grid."""
    no_arg("grid", arg)
    return _sample("grid")
