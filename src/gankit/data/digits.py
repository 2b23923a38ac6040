"""``digits``: scikit-learn's 1,797 handwritten 8x8 digits (UCI optical digits, Alpaydin 1998).

Pixel values are counts 0..16 (4x4 blocks of a 32x32 bitmap), mapped linearly to [-1, 1].
"""

from __future__ import annotations

import torch

from gankit.data._common import Dataset, LoadOptions, fixed_split, split_arg
from gankit.registry import DATASETS

SPLIT_SEED = 1998  # seeds the fixed train/test split (digits:train, digits:test)
TEST_PER_CLASS = 36  # about a fifth of each digit's ~180 images


@DATASETS.register("digits", "scikit-learn's 1,797 8x8 grey digits (values 0..16), labels 0..9; "
                             "digits:train / digits:test: a fixed split, 36 per class held out")
def digits(arg: str | None, opts: LoadOptions) -> Dataset:
    """The sklearn digits; x ``[1797, 1, 8, 8]`` in [-1, 1], y 0..9; ``train`` / ``test``:
    the fixed stratified split (360 test images)."""
    from sklearn.datasets import load_digits

    split_arg("digits", arg)
    bunch = load_digits()
    x = torch.from_numpy(bunch.images).float().unsqueeze(1) / 8 - 1  # 0..16 -> [-1, 1]
    y = torch.from_numpy(bunch.target).long()
    if arg is not None:
        idx = fixed_split(y, TEST_PER_CLASS, SPLIT_SEED)[0 if arg == "train" else 1]
        x, y = x[idx], y[idx]
    return Dataset(
        x=x,
        y=y,
        num_classes=10,
        kind="image",
        name="digits" if arg is None else f"digits:{arg}",
        class_names=[str(d) for d in range(10)],
    )
