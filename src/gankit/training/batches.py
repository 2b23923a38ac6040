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
    """

    def __init__(self, data, train, device: torch.device, conditional: bool = False) -> None:
        self.x = data.x.to(device)
        self.conditional = conditional
        self.y = data.y.to(device) if data.y is not None else None  # self-conditioning sets it
        self.d_steps = train.d_steps
        self.stages = [(0, train.batch_size), *train.batch_schedule]
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

    def batch(self, data_step: int, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The real batch and its labels (None unless conditional) of D update
        ``data_step``, taken at G step ``step``."""
        k = self._stage(step)
        offset = self.stages[k][0] * self.d_steps  # a stage's stream starts at its first step
        idx = self.samplers[k].indices(data_step - offset).to(self.x.device)
        labels = self.y.index_select(0, idx) if self.conditional and self.y is not None else None
        return self.x.index_select(0, idx), labels
