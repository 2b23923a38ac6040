"""Stateless, resumable minibatch indices: batch ``step`` is a pure function of (seed, step).

Each epoch is a fresh permutation seeded by a SplitMix64 hash of (seed, epoch), so resuming at
any step reproduces the uninterrupted run exactly without saving sampler state. The incomplete
last batch of an epoch is dropped. The global RNGs are never touched.
"""

from __future__ import annotations

import torch

_MASK64 = (1 << 64) - 1


def _splitmix64(z: int) -> int:
    # Steele, Lea & Flood 2014 (SplitMix64 finaliser): decorrelates nearby seeds/epochs.
    z = (z + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def epoch_seed(seed: int, epoch: int) -> int:
    """Combine ``seed`` and ``epoch`` into one 64-bit generator seed."""
    return _splitmix64((_splitmix64(seed & _MASK64) + epoch) & _MASK64)


class BatchSampler:
    """Deterministic shuffled minibatches over ``n`` samples, reshuffled every epoch.

    Args:
        n: dataset size.
        batch_size: indices per batch, at most ``n``.
        seed: any int; the same (seed, step) always gives the same batch.

    Example:
        >>> sampler = BatchSampler(n=len(ds), batch_size=64, seed=0)
        >>> real = ds.x[sampler.indices(step)]  # [64, C, H, W]
    """

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        for arg, value in (("n", n), ("batch_size", batch_size), ("seed", seed)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"BatchSampler {arg} must be an int, got {value!r}")
        if n < 1 or batch_size < 1:
            raise ValueError(f"BatchSampler needs n, batch_size >= 1, got {n}, {batch_size}")
        if batch_size > n:
            raise ValueError(
                f"batch_size {batch_size} is larger than the dataset ({n} samples); "
                f"use batch_size <= {n}"
            )
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.batches_per_epoch = n // batch_size  # the incomplete last batch is dropped
        self._epoch = -1
        self._perm = torch.empty(0, dtype=torch.int64)

    def permutation(self, epoch: int) -> torch.Tensor:
        """The order of all ``n`` indices in ``epoch`` (int64 ``[n]``), cached for one epoch."""
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
            self._perm = torch.randperm(self.n, generator=gen)
            self._epoch = epoch
        return self._perm

    def indices(self, step: int) -> torch.Tensor:
        """Sample indices of batch ``step`` (0-based): int64 ``[batch_size]`` in 0..n-1."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step must be a non-negative int, got {step!r}")
        epoch, within = divmod(step, self.batches_per_epoch)
        start = within * self.batch_size
        return self.permutation(epoch)[start : start + self.batch_size].clone()

    def __repr__(self) -> str:
        return f"BatchSampler(n={self.n}, batch_size={self.batch_size}, seed={self.seed})"
