"""The typed step context handed to regularisers and hooks."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class StepContext:
    """What a regulariser or hook may look at during one D or G update."""

    G: nn.Module
    D: nn.Module
    real: torch.Tensor  # [N, ...] real batch (requires grad when a regulariser asks)
    fake: torch.Tensor  # [N, ...] generated batch
    labels: torch.Tensor | None  # [N] class labels of the real batch, or None
    real_logits: torch.Tensor | None  # [N] D(real), None during the G step
    fake_logits: torch.Tensor  # [N] D(fake)
    step: int  # generator steps done before this update
    generator: torch.Generator  # the run's RNG for any random draw
