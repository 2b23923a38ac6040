"""``digits``: scikit-learn's 1,797 handwritten 8x8 digits (UCI optical digits, Alpaydin 1998).

Pixel values are counts 0..16 (4x4 blocks of a 32x32 bitmap), mapped linearly to [-1, 1].
"""

from __future__ import annotations

import torch

from gankit.data._common import Dataset, LoadOptions, no_arg
from gankit.registry import DATASETS


@DATASETS.register("digits", "scikit-learn's 1,797 8x8 grey digits (values 0..16), labels 0..9")
def digits(arg: str | None, opts: LoadOptions) -> Dataset:
    """The sklearn digits; x ``[1797, 1, 8, 8]`` in [-1, 1], y 0..9."""
    from sklearn.datasets import load_digits

    no_arg("digits", arg)
    bunch = load_digits()
    x = torch.from_numpy(bunch.images).float().unsqueeze(1) / 8 - 1  # 0..16 -> [-1, 1]
    return Dataset(
        x=x,
        y=torch.from_numpy(bunch.target).long(),
        num_classes=10,
        kind="image",
        name="digits",
        class_names=[str(d) for d in range(10)],
    )
