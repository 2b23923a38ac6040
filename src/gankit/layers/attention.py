"""Self-attention over the positions of a feature map, Zhang et al. 2019 (SAGAN), in the
form BigGAN uses (Brock et al. 2019, appendix B):

    f = W_f x,  g = maxpool(W_g x),  h = maxpool(W_h x)      (1x1 convs, no bias)
    beta = softmax_j(f_i . g_j)                              [N, HW, HW/4]
    y = x + gamma * W_o (beta h)

with C/8 channels for f and g, C/2 for h, and the key/value maps max-pooled 2x2 (a
quarter of the positions, as SAGAN's and BigGAN's code do). ``gamma`` is learned and starts
at 0, so a freshly built layer is the identity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SelfAttention(nn.Module):
    """[N, C, H, W] -> [N, C, H, W]; H and W even (the keys are pooled 2x2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner, value = max(1, channels // 8), max(1, channels // 2)  # SAGAN's reductions
        self.query = nn.Conv2d(channels, inner, 1, bias=False)
        self.key = nn.Conv2d(channels, inner, 1, bias=False)
        self.value = nn.Conv2d(channels, value, 1, bias=False)
        self.out = nn.Conv2d(value, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.query(x).flatten(2)  # [N, C/8, HW]
        k = F.max_pool2d(self.key(x), 2).flatten(2)  # [N, C/8, HW/4]
        v = F.max_pool2d(self.value(x), 2).flatten(2)  # [N, C/2, HW/4]
        beta = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # [N, HW, HW/4]
        o = (v @ beta.transpose(1, 2)).view(n, -1, h, w)  # [N, C/2, H, W]
        return x + self.gamma * self.out(o)
