"""Real batches as a pure function of (seed, D update), so a resumed run draws the same ones.

``train.batch_size`` real images per D update, in the seeded order of
`gankit.data.BatchSampler` (reshuffled every epoch). ``train.batch_schedule=[[STEP, SIZE],
...]`` changes the size from STEP on; each stage reads the data in its own seeded order
from its first step, so a resume before, at or after a switch is bit for bit the
uninterrupted run.
"""

from __future__ import annotations

import torch

from gankit.data import BatchSampler
from gankit.data._sampler import epoch_seed

_STAGE_SEED = 1 << 41  # seeds of the batch_schedule stages' data orders, apart from epochs'


class BatchSource:
    """The real data of a run on its device, and the batch of each D update.

    Args:
        data: a gankit ``Dataset``.
        train: the run's ``TrainConfig``.
        device: where batches are returned.
        conditional: whether batches carry labels (None otherwise, even on labelled data).
        shard: (rank, world size): this process takes rows [rank*b/w, (rank+1)*b/w) of
            every global batch of b (`gankit.utils.distributed`); (0, 1): all of it.
    """

    def __init__(self, data, train, device: torch.device, conditional: bool = False,
                 shard: tuple[int, int] = (0, 1)) -> None:
        self.x = data.x.to(device)
        self.conditional = conditional
        self.y = data.y.to(device) if data.y is not None else None  # self-conditioning sets it
        self.d_steps = train.d_steps
        self.stages = [(0, train.batch_size), *train.batch_schedule]
        self.shard = shard
        for _, size in self.stages:
            if size % shard[1]:
                raise ValueError(f"train.batch_size {size} (the global batch) does not split "
                                 f"evenly over {shard[1]} processes; use a multiple of "
                                 f"{shard[1]}")
        for start, size in train.batch_schedule:
            if size > len(data):
                raise ValueError(f"train.batch_schedule: the batch size {size} from step {start} "
                                 f"is larger than the dataset ({len(data)} samples); use sizes "
                                 f"<= {len(data)}")
        self.samplers = [BatchSampler(len(data), size, train.seed if k == 0 else
                                      epoch_seed(train.seed, _STAGE_SEED + k))
                         for k, (_, size) in enumerate(self.stages)]

    def _stage(self, step: int) -> int:
        return sum(start <= step for start, _ in self.stages) - 1

    def size(self, step: int) -> int:
        """The batch size at G step ``step``."""
        return self.stages[self._stage(step)][1]

    def local(self, x: torch.Tensor) -> torch.Tensor:
        """This process's rows of ``x``, a global batch [b, ...] (all of it in one process)."""
        rank, world = self.shard
        per = len(x) // world
        return x if world == 1 else x[rank * per:(rank + 1) * per]

    def per_sample(self, fn, x: torch.Tensor, *args) -> torch.Tensor:
        """``fn(x, *args)`` for a per-sample random transform ``fn`` (an augmentation): with
        several processes it runs on this process's rows placed among zeros in a global
        batch, so that it draws for the global batch, as one process does, and every
        process draws the same number of values (their streams stay in step)."""
        rank, world = self.shard
        if world == 1:
            return fn(x, *args)
        rows = x.shape[1:]
        full = torch.cat([x.new_zeros((len(x) * rank, *rows)), x,
                          x.new_zeros((len(x) * (world - 1 - rank), *rows))])
        return self.local(fn(full, *args))

    def batch(self, data_step: int, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The real batch and its labels (None unless conditional) of D update
        ``data_step``, taken at G step ``step``."""
        k = self._stage(step)
        offset = self.stages[k][0] * self.d_steps  # a stage's stream starts at its first step
        idx = self.local(self.samplers[k].indices(data_step - offset)).to(self.x.device)
        labels = self.y.index_select(0, idx) if self.conditional and self.y is not None else None
        return self.x.index_select(0, idx), labels
