"""Real batches as a pure function of (seed, D update), so a resumed run draws the same ones.

``train.batch_size`` real images per D update, in the seeded order of
`gankit.data.BatchSampler` (reshuffled every epoch). ``train.batch_schedule=[[STEP, SIZE],
...]`` changes the size from STEP on; each stage reads the data in its own seeded order
from its first step, so a resume before, at or after a switch is bit for bit the
uninterrupted run.

A streamed dataset (``data.x`` an image store, `gankit.data._store`) is read per batch.
When its rows cost an image decode and ``data.workers`` > 0, a torch DataLoader decodes
ahead, in worker processes, the batches of the next D updates of the main stream (D update
``data_step`` at G step ``data_step // d_steps``): a pure function of (seed, data_step),
so the batches are the same bits whatever the number of workers. A request that is not
the next prefetched one (the unrolled critic's own stream, a rollback after divergence)
is read directly, and the main stream is prefetched again from the one after it.

``shard=(rank, world)`` keeps rows ``[rank * b / world, (rank + 1) * b / world)`` of each
global batch of size b (data parallelism); only those rows are read.
"""

from __future__ import annotations

import copy

import torch

from gankit.data import BatchSampler
from gankit.data._sampler import epoch_seed

_STAGE_SEED = 1 << 41  # seeds of the batch_schedule stages' data orders, apart from epochs'


class _Rows(torch.utils.data.Dataset):
    """DataLoader item ``(data_step, indices)`` -> ``(data_step, store rows)``."""

    def __init__(self, store) -> None:
        self.store = store

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, item):
        data_step, idx = item
        return data_step, self.store.take(idx)


class _Order:
    """Which sample indices each D update reads (see the module docstring)."""

    def __init__(self, stages, samplers, d_steps: int, rank: int, world: int) -> None:
        self.stages, self.samplers, self.d_steps = stages, samplers, d_steps
        self.rank, self.world = rank, world

    def stage(self, step: int) -> int:
        return sum(start <= step for start, _ in self.stages) - 1

    def indices(self, data_step: int, step: int) -> torch.Tensor:
        k = self.stage(step)
        offset = self.stages[k][0] * self.d_steps  # a stage's stream starts at its first step
        idx = self.samplers[k].indices(data_step - offset)
        part = len(idx) // self.world
        return idx[self.rank * part:(self.rank + 1) * part]


class _MainStream(torch.utils.data.Sampler):
    """The (data_step, indices) of the main stream's D updates from ``start`` on, forever
    (its own copy of the order: no reference back to the BatchSource)."""

    def __init__(self, order: _Order, start: int) -> None:
        self.order, self.start = copy.deepcopy(order), start

    def __iter__(self):
        k = self.start
        while True:
            yield k, self.order.indices(k, k // self.order.d_steps)
            k += 1


class BatchSource:
    """The real data of a run on its device, and the batch of each D update.

    Args:
        data: a gankit ``Dataset`` (in memory or streamed).
        train: the run's ``TrainConfig``.
        device: where batches are returned.
        conditional: whether batches carry labels (None otherwise, even on labelled data).
        shard: ``(rank, world size)``: `batch` returns this rank's rows of each global
            batch; every batch size must divide by the world size.
    """

    def __init__(self, data, train, device: torch.device, conditional: bool = False,
                 shard: tuple[int, int] = (0, 1)) -> None:
        rank, world = shard
        if not (isinstance(world, int) and isinstance(rank, int) and 0 <= rank < world):
            raise ValueError(f"shard must be (rank, world size) with 0 <= rank < world, "
                             f"got {shard!r}")
        self.rank, self.world, self.shard = rank, world, (rank, world)
        self.streamed = not isinstance(data.x, torch.Tensor)
        self.x = data.x if self.streamed else data.x.to(device)
        self.device = torch.device(device)
        self.conditional = conditional
        self.y = data.y.to(device) if data.y is not None else None  # self-conditioning sets it
        source = getattr(data, "source", None)  # translation: G's inputs, row for row
        if source is not None and self.streamed:
            raise ValueError(f"{data.name}: translation data with sources is held in memory; "
                             f"set data.stream=false")
        self.source = source.to(device) if source is not None else None
        self.d_steps = max(1, train.d_steps)  # no D (0): G step k reads batch k
        self.stages = [(0, train.batch_size), *train.batch_schedule]
        for start, size in train.batch_schedule:
            if size > len(data):
                raise ValueError(f"train.batch_schedule: the batch size {size} from step {start} "
                                 f"is larger than the dataset ({len(data)} samples); use sizes "
                                 f"<= {len(data)}")
        for start, size in self.stages:
            if size % world:
                raise ValueError(f"the batch size {size} (from step {start}) does not divide by "
                                 f"the {world} processes of data parallelism; use a multiple "
                                 f"of {world}")
        # a table's task draws its rows itself (training-by-sampling, with replacement), so
        # its batches may hold more rows than the table
        cap = len(data) if getattr(data, "table", None) is not None else None
        samplers = [BatchSampler(len(data), min(size, cap or size), train.seed if k == 0 else
                                 epoch_seed(train.seed, _STAGE_SEED + k))
                    for k, (_, size) in enumerate(self.stages)]
        self.order = _Order(self.stages, samplers, self.d_steps, rank, world)
        self.prefetch = self.streamed and self.x.decodes and self.x.workers > 0
        self._ahead = None  # the DataLoader iterator of the main stream, or None
        self._next = -1  # the data step it yields next

    def size(self, step: int) -> int:
        """The global batch size at G step ``step`` (`local` takes this shard's rows)."""
        return self.stages[self.order.stage(step)][1]

    def indices(self, data_step: int, step: int) -> torch.Tensor:
        """Sample indices (int64, CPU) of this shard's part of D update ``data_step``'s batch,
        taken at G step ``step``."""
        return self.order.indices(data_step, step)

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
        ``data_step``, taken at G step ``step`` (this shard's rows)."""
        idx = self.indices(data_step, step)
        labels = None
        if self.conditional and self.y is not None:
            labels = self.y.index_select(0, idx.to(self.y.device))
        if not self.streamed:
            return self.x.index_select(0, idx.to(self.x.device)), labels
        return self._read(data_step, step, idx).to(self.device), labels

    def sources(self, data_step: int, step: int) -> torch.Tensor:
        """The source images (translation data) of D update ``data_step``'s batch: the
        inputs whose outputs should be `batch`'s images, row for row."""
        idx = self.indices(data_step, step)
        return self.source.index_select(0, idx.to(self.source.device))

    def _read(self, data_step: int, step: int, idx: torch.Tensor) -> torch.Tensor:
        """A streamed batch: the prefetched one when it is the next of the main stream."""
        main = step == data_step // self.d_steps
        if not (self.prefetch and main):
            return self.x.take(idx)
        if self._ahead is not None and data_step == self._next:
            got, images = next(self._ahead)
            assert got == data_step, (got, data_step)
            self._next += 1
            return images
        self.close()  # a jump in the main stream (the first batch, a rollback): restart
        images = self.x.take(idx)
        loader = torch.utils.data.DataLoader(
            _Rows(self.x), batch_size=None, sampler=_MainStream(self.order, data_step + 1),
            num_workers=self.x.workers, pin_memory=self.device.type == "cuda",
            prefetch_factor=2)
        self._ahead, self._next = iter(loader), data_step + 1
        return images

    def close(self) -> None:
        """Stop the prefetching worker processes (they also stop with this object)."""
        self._ahead, self._next = None, -1
