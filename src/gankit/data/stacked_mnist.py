"""``stacked_mnist``: 3-channel stacks of random mnist5k digits, 1,000 modes (Metz et al.
2017; Srivastava et al. 2017, VEEGAN; Lin et al. 2018, PacGAN).

Each sample puts three independently drawn digits in the R, G and B channels of a 28x28
image; its mode is the triple, label ``100 * d_R + 10 * d_G + d_B``. The published
benchmark stacks the full 60,000-digit MNIST; this one stacks the 5,000 real digits that
ship offline (say so beside every result). A fixed set of 50,000 stacks is drawn once with
a fixed seed, so every run and user trains on the same data.
"""

from __future__ import annotations

import numpy as np
import torch

from gankit.data._common import Dataset, LoadOptions, no_arg
from gankit.data.mnist5k import mnist5k
from gankit.registry import DATASETS

NUM_STACKS = 50_000
_SEED = 2017


@DATASETS.register("stacked_mnist", "3 random mnist5k digits as R,G,B channels: 1,000 modes")
def stacked_mnist(arg: str | None, opts: LoadOptions) -> Dataset:
    """x ``[50000, 3, 28, 28]`` in [-1, 1]; y = 100 * d_R + 10 * d_G + d_B in 0..999."""
    no_arg("stacked_mnist", arg)
    digits = mnist5k(None, LoadOptions())
    rng = np.random.default_rng(_SEED)
    idx = torch.from_numpy(rng.integers(0, len(digits.x), size=(NUM_STACKS, 3)))
    x = digits.x[idx.flatten(), 0].view(NUM_STACKS, 3, 28, 28)
    d = digits.y[idx]  # [N, 3] digit of each channel
    y = d[:, 0] * 100 + d[:, 1] * 10 + d[:, 2]
    return Dataset(x=x.contiguous(), y=y, num_classes=1000, kind="image",
                   name="stacked_mnist", class_names=None, channel_classes=True)
