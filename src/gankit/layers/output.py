"""The bounded output of image generators.

``tanh`` maps to the open interval (-1, 1): it never reaches the exact -1 of a blank MNIST
background or the +1 of a saturated stroke, so G leaves a faint haze that D can always
see. ``BoundedOutput(S)`` widens tanh's range to (-S, S) with S >= 1 and clips it back::

    y = clamp(S * tanh(a), -1, 1)

so every pre-activation beyond ``atanh(1 / S)`` in size gives exactly -1 or +1 (with zero
gradient there, like a saturated pixel). ``S = 1`` is plain ``tanh``, bit for bit.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def output_bounds(scale: float = 1.0) -> tuple[float, float]:
    """``(-scale, scale)`` for ``generator.output_scale``; a ``ValueError`` unless it is a
    finite number >= 1."""
    scale = float(scale)
    if not math.isfinite(scale) or scale < 1.0:
        raise ValueError(f"output_scale must be a finite number >= 1 (1 is plain tanh; 1.5 "
                         f"lets G draw exact -1 and +1), got {scale}")
    return -scale, scale


class BoundedOutput(nn.Module):
    """x -> clamp(S * tanh(x), -1, 1); S = 1 is tanh itself. No parameters."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = -output_bounds(scale)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.tanh(x)
        if self.scale == 1.0:
            return y
        return (self.scale * y).clamp(-1.0, 1.0)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"
