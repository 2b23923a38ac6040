"""CTGAN's conditional vector and training-by-sampling (Xu et al. 2019, sec. 4.3), and the
training task of tables.

For each row of a batch: a categorical column is drawn uniformly, then one of its labels
with probability proportional to log(1 + its count); the conditional vector is the
one-hot of that label within the concatenated label blocks of all categorical columns;
the real row is drawn uniformly among the rows that hold that label. So rare labels are
trained on as often as log-frequency says, and G learns to honour a condition. A table
without categorical columns has an empty vector and rows drawn uniformly.

Draws for D update ``data_step`` come from a generator seeded by (seed, data_step): the
batches are a pure function of the step, as for images (exact resume). Sampling after
training draws the conditions by the labels' plain frequencies (the data's distribution).
"""

from __future__ import annotations

import torch

from gankit.data._sampler import epoch_seed

_COND_SEED = 1 << 43  # apart from the other seeded streams


class ConditionSampler:
    """Conditional vectors and the rows that match them, for an encoded table."""

    def __init__(self, discrete: list[dict], x: torch.Tensor | None = None) -> None:
        self.blocks = discrete  # name, start (in the encoding), width, counts
        self.dim = sum(b["width"] for b in discrete)
        self.offsets = []  # each block's start within the conditional vector
        at = 0
        for b in discrete:
            self.offsets.append(at)
            at += b["width"]
        # rows holding each label: block -> label -> row indices (none without data:
        # conditions alone, for sampling)
        self.rows = [[torch.nonzero(x[:, b["start"] + j] > 0.5).flatten()
                      for j in range(b["width"])] for b in discrete] if x is not None else []
        self.n = len(x) if x is not None else 0

    def draw(self, n: int, gen: torch.Generator, log_frequency: bool = True):
        """(conditional vectors [n, dim], matching row indices [n]); rows uniform when the
        table has no categorical column."""
        if not self.blocks:
            return torch.zeros(n, 0), torch.randint(self.n, (n,), generator=gen)
        which = torch.randint(len(self.blocks), (n,), generator=gen)
        cond = torch.zeros(n, self.dim)
        rows = torch.empty(n, dtype=torch.long)
        for k, block in enumerate(self.blocks):
            pick = torch.nonzero(which == k).flatten()
            if len(pick) == 0:
                continue
            counts = torch.tensor(block["counts"], dtype=torch.float64)
            p = torch.log1p(counts) if log_frequency else counts
            labels = torch.multinomial(p, len(pick), replacement=True, generator=gen)
            cond[pick, self.offsets[k] + labels] = 1.0
            for i, label in zip(pick.tolist(), labels.tolist()) if self.rows else ():
                candidates = self.rows[k][label]
                rows[i] = candidates[torch.randint(len(candidates), (1,), generator=gen)]
        return cond, rows

    def draw_original(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """Conditional vectors by the labels' plain frequencies (sampling)."""
        return self.draw(n, gen, log_frequency=False)[0]


class TableTask:
    """The loop's task for tables: G(z, cond) returns [row | cond]; real batches are
    [row | cond] drawn by training-by-sampling (`ConditionSampler`)."""

    def __init__(self, trainer) -> None:
        from gankit.tabular.transform import TableTransform

        self.trainer = trainer
        s = trainer.state
        if trainer.world.size > 1:
            raise ValueError("ctgan trains in one process: tables are small; drop --nproc")
        transform = TableTransform.from_state(s.info.table)
        self.sampler = ConditionSampler(transform.discrete, trainer.data.x)
        self.seed = s.config.train.seed
        self._batch: tuple[int, torch.Tensor, torch.Tensor] | None = None

    def _draw(self, data_step: int, step: int):
        """(cond, rows) of D update ``data_step``: a pure function of (seed, data_step)."""
        if self._batch is None or self._batch[0] != data_step:
            n = self.trainer.batches.size(step)
            gen = torch.Generator().manual_seed(epoch_seed(self.seed, _COND_SEED + data_step))
            cond, rows = self.sampler.draw(n, gen)
            self._batch = (data_step, cond, rows)
        return self._batch[1], self._batch[2]

    def real(self, data_step: int, step: int):
        cond, rows = self._draw(data_step, step)
        x = self.trainer.batches.x
        return torch.cat([x[rows.to(x.device)], cond.to(x.device)], 1), None

    def fake_inputs(self, data_step: int, step: int, n: int):
        """(z, the batch's conditional vectors for G, nothing for D: G appends them)."""
        from gankit.training.task import LatentTask

        cond, _ = self._draw(data_step, step)
        z = LatentTask(self.trainer).z(n)
        return z, cond.to(z.device), None

    def target(self, data_step: int, step: int) -> None:
        return None

    def source(self, data_step: int, step: int) -> None:
        return None

    def fixed_inputs(self, state) -> None:
        """The fixed grid latents get fixed conditions drawn by plain frequency."""
        gen = torch.Generator().manual_seed(epoch_seed(self.seed, _COND_SEED - 1))
        state.c_fixed = self.sampler.draw_original(len(state.z_fixed), gen).to(state.device)

    def grid(self, fakes: torch.Tensor):
        return fakes, None


@torch.no_grad()
def sample_table(run, n: int, seed: int = 0, ema: bool = True):
    """``n`` synthetic rows of a table run (a `gankit.api.LoadedRun`) as a
    `gankit.tabular.table.Table` in the original columns: z and the conditional vectors
    (by the labels' plain frequencies) drawn from ``seed``, G in eval mode, its one-hot
    blocks drawn from its softmax outputs (`TableTransform.decode` with ``seed``)."""
    from gankit.tabular.transform import TableTransform

    if run.info.table is None:
        raise ValueError(f"{run.run_dir}: not a table run; --out FILE.csv needs one (ctgan)")
    transform = TableTransform.from_state(run.info.table)
    G = run.net(ema)
    gen = torch.Generator().manual_seed(seed)
    cond = ConditionSampler(transform.discrete).draw_original(n, gen)
    z = torch.randn(n, run.config.z_dim, generator=gen)
    device = next(G.parameters()).device
    rows = torch.cat([G(z[i:i + 1000].to(device), cond[i:i + 1000].to(device)).cpu()
                      for i in range(0, n, 1000)])
    return transform.decode(rows[:, :transform.dim], name=f"{run.run_dir}", seed=seed)
