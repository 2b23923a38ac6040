"""The bounded output of image generators.

``tanh`` maps to the open interval (-1, 1): it never reaches the exact -1 of a blank MNIST
background or the +1 of a saturated stroke, so G leaves a faint haze that D can always
see (docs/benchmarks.md, "A sixth round"). ``BoundedOutput(scale)`` computes
``clamp(scale * tanh(a), -1, 1)``: with ``scale > 1`` every pre-activation beyond
``atanh(1 / scale)`` in magnitude gives exactly -1 or +1 (with zero gradient there, like a
saturated pixel). ``scale == 1`` is plain ``tanh``, bit for bit.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class BoundedOutput(nn.Module):
    """x -> clamp(scale * tanh(x), -1, 1); scale 1 is tanh itself."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        scale = float(scale)
        if not math.isfinite(scale) or scale < 1.0:
            raise ValueError(f"generator.output_scale must be a finite number >= 1 (1 is plain "
                             f"tanh; 1.5 lets G draw exact -1 and +1), got {scale}")
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.tanh(x)
        if self.scale == 1.0:
            return y
        return (self.scale * y).clamp(-1.0, 1.0)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"
