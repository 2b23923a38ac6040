"""``npz:PATH``: ``numpy.savez`` arrays: images or points ``x``, optional labels ``y``.

Shape of ``x`` decides the kind:

- ``[N, C, H, W]`` or ``[N, H, W, C]`` with C in {1, 3} (NCHW wins if both read as valid),
  or ``[N, H, W]`` (one channel): images, returned as float32 ``[N, C, H, W]`` in [-1, 1].
- ``[N, D]``: points, returned unchanged as float32 (any real dtype).

NaN and infinite values are refused, naming the first (points after the conversion to
float32, so 1e300 is refused too).

Image value rule: uint8 is 0..255 and maps by ``x / 127.5 - 1``. Float arrays with every value
in [0, 1] map by ``2x - 1``; otherwise values in [-1, 1] are kept as they are; anything else is
an error (so a float set in [-1, 1] that happens to have no negative value is read as [0, 1]).
``y``, if present, is a 1-D integer array of length N with values >= 0; num_classes = max + 1.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from gankit.data._common import Dataset, LoadOptions, need_arg
from gankit.registry import DATASETS
from gankit.utils.guards import check_finite, finite_float32

_EXPECTED = "x of shape [N, C, H, W], [N, H, W, C] (C = 1 or 3), [N, H, W] or points [N, D]"


def _to_nchw(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim == 3:
        return x[:, None]
    if x.shape[1] in (1, 3):
        return x
    if x.shape[3] in (1, 3):
        return x.transpose(0, 3, 1, 2)
    raise ValueError(f"{where}: x has shape {x.shape}, with no channel axis of size 1 or 3")


def _scale(x: np.ndarray, where: str) -> torch.Tensor:
    """Images to float32 in [-1, 1] by the module's value rule."""
    if x.dtype == np.uint8:
        return torch.from_numpy(x).float() / 127.5 - 1
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{where}: image x must be uint8 (0..255) or float, got {x.dtype}")
    low, high = float(x.min()), float(x.max())
    t = torch.from_numpy(x.astype(np.float32))
    if low >= 0 and high <= 1:
        return t * 2 - 1
    if low >= -1 and high <= 1:
        return t
    raise ValueError(
        f"{where}: float image x must lie in [0, 1] or [-1, 1], got [{low:g}, {high:g}]; "
        "save 0..255 data as uint8"
    )


def _labels(data: np.lib.npyio.NpzFile, n: int, where: str) -> torch.Tensor | None:
    if "y" not in data.files:
        return None
    y = data["y"]
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{where}: y must be a 1-D integer array, got {y.dtype} {y.shape}")
    if len(y) != n:
        raise ValueError(f"{where}: y has {len(y)} labels but x has {n} samples")
    if y.min() < 0:
        raise ValueError(f"{where}: labels y must be >= 0, got min {y.min()}")
    return torch.from_numpy(y.astype(np.int64))


@DATASETS.register("npz", "npz:PATH - array x (images NCHW/NHWC/NHW or points N x D), labels y")
def npz(arg: str | None, opts: LoadOptions) -> Dataset:
    """Load ``x`` (and ``y``) from a .npz file; see the module docstring for the rules."""
    path = Path(need_arg("npz", arg)).expanduser()
    where = f"npz:{arg}"
    if not path.is_file():
        raise ValueError(f"{where}: no such file")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"{where}: not a readable .npz archive ({err})") from err
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{where}: expected a .npz archive (numpy.savez), got a single array")
    with data:
        if "x" not in data.files:
            have = ", ".join(repr(k) for k in data.files) or "none"
            raise ValueError(f"{where}: no array 'x' (it has: {have}); expected {_EXPECTED}")
        x = data["x"]
        if x.ndim not in (2, 3, 4) or len(x) == 0:
            raise ValueError(f"{where}: expected {_EXPECTED} with N >= 1, got shape {x.shape}")
        y = _labels(data, len(x), where)
    num_classes = int(y.max()) + 1 if y is not None else 0
    if x.ndim == 2:
        if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
            raise ValueError(f"{where}: points x must be a real numeric array, got {x.dtype}")
        points = torch.from_numpy(finite_float32(x, where))
        return Dataset(x=points, y=y, num_classes=num_classes, kind="points", name=where)
    if np.issubdtype(x.dtype, np.floating):
        check_finite(x, where)  # indices in the file's own layout
    images = _scale(np.ascontiguousarray(_to_nchw(x, where)), where)
    return Dataset(x=images, y=y, num_classes=num_classes, kind="image", name=where)
