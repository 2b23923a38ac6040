"""The bounded output of image generators.

``tanh`` maps to the open interval (-1, 1): it never reaches the exact -1 of a blank MNIST
background or the +1 of a saturated stroke, so G leaves a faint haze that D can always
see (docs/benchmarks.md, "A sixth round"). ``BoundedOutput`` widens tanh's range to
``(low, high)`` with ``low <= -1 <= 1 <= high`` and clips it back to ``[-1, 1]``::

    y = clamp(mid + half * tanh(a), -1, 1),  mid = (high + low) / 2,  half = (high - low) / 2

so every pre-activation beyond ``atanh((-1 - mid) / half)`` gives exactly -1, every one
beyond ``atanh((1 - mid) / half)`` exactly +1 (with zero gradient there, like a saturated
pixel). ``generator.output_scale=S`` is the symmetric range ``(-S, S)``, i.e.
``clamp(S * tanh(a), -1, 1)``; ``generator.output_range=[low, high]`` sets the two ends
apart, e.g. ``[-1.5, 1.05]`` reaches -1 as easily as ``S = 1.5`` while exact +1 needs a
pre-activation near 2. ``(-1, 1)`` is plain ``tanh``, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


def output_bounds(scale: float = 1.0,
                  output_range: Sequence[float] | None = None) -> tuple[float, float]:
    """Resolve ``generator.output_scale`` / ``generator.output_range`` into ``(low, high)``.

    Raises ``ValueError`` naming the bad value and the fix.
    """
    scale = float(scale)
    if not math.isfinite(scale) or scale < 1.0:
        raise ValueError(f"generator.output_scale must be a finite number >= 1 (1 is plain "
                         f"tanh; 1.5 lets G draw exact -1 and +1), got {scale}")
    if output_range is None:
        return -scale, scale
    if scale != 1.0:
        raise ValueError(f"set one of generator.output_scale={scale} and generator.output_range="
                         f"{list(output_range)}: output_scale=S is output_range=[-S, S]")
    if len(output_range) != 2:
        raise ValueError(f"generator.output_range must be two numbers [low, high], got "
                         f"{list(output_range)}")
    low, high = (float(v) for v in output_range)
    if not (math.isfinite(low) and math.isfinite(high)) or low > -1.0 or high < 1.0:
        raise ValueError(f"generator.output_range=[low, high] needs finite low <= -1 and "
                         f"high >= 1 (the output is clipped to [-1, 1]; [-1, 1] is plain "
                         f"tanh, [-1.5, 1.05] lets G draw exact -1 easily and +1 rarely), got "
                         f"{[low, high]}")
    return low, high


class BoundedOutput(nn.Module):
    """x -> clamp(mid + half * tanh(x), -1, 1) over the range (low, high).

    ``BoundedOutput(S)`` is the range (-S, S); ``BoundedOutput(output_range=(l, h))`` any
    other (validated by `output_bounds`). The range (-1, 1) is tanh itself. No parameters:
    checkpoints do not change.
    """

    def __init__(self, scale: float = 1.0,
                 output_range: Sequence[float] | None = None) -> None:
        super().__init__()
        self.low, self.high = output_bounds(scale, output_range)
        self.mid = (self.high + self.low) / 2
        self.half = (self.high - self.low) / 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.tanh(x)
        if self.low == -1.0 and self.high == 1.0:
            return y
        y = self.half * y
        if self.mid != 0.0:
            y = y + self.mid
        return y.clamp(-1.0, 1.0)

    def extra_repr(self) -> str:
        if self.mid == 0.0:
            return f"scale={self.half}"
        return f"low={self.low}, high={self.high}"
