"""The typed step context handed to regularisers and hooks."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class StepContext:
    """What a regulariser or hook may look at during one D or G update."""

    G: nn.Module
    D: nn.Module
    # [N, ...] real batch (requires grad when asked); in the G step None, but a translator's
    # targets (the batch its fakes were made from)
    real: torch.Tensor | None
    fake: torch.Tensor  # [N, ...] generated batch
    labels: torch.Tensor | None  # [N] class labels of the real batch (conditional runs)
    real_logits: torch.Tensor | None  # [N] D(real), None during the G step
    fake_logits: torch.Tensor  # [N] D(fake)
    step: int  # generator steps done before this update
    generator: torch.Generator  # the run's RNG for any random draw
    phase: str = "D"  # "D" during a discriminator update, "G" during a generator update
    fake_labels: torch.Tensor | None = None  # [N] labels the fakes were generated for
    real_out: dict = field(default_factory=dict)  # D.score(real): logits, features, ...
    fake_out: dict = field(default_factory=dict)  # D.score(fake); in the G step, real_out
    # holds D's (detached) view of the latest real batch, for feature matching
    real_view: torch.Tensor | None = None  # D's input of the real batch (after augmentation)
    pack: int = 1  # PacGAN: samples per D input (penalties take norms per input)
    low_precision: bool = False  # D's pass of real_logits ran under bfloat16 autocast
    # data parallelism: (rank, world size); the batch is rows [rank*N, (rank+1)*N) of a global
    # batch of world*N, and a per-sample draw covers the global batch (`local_draw`)
    shard: tuple[int, int] = (0, 1)
    source: torch.Tensor | None = None  # G step of a translator: the fakes' source images

    def local_draw(self, draw, n: int) -> torch.Tensor:
        """This process's ``n`` rows of ``draw(world * n)``, so that every process draws
        what one process would for the global batch (and the streams stay in step)."""
        rank, world = self.shard
        return draw(n) if world == 1 else draw(world * n)[rank * n:(rank + 1) * n]
