"""Real photographs that ship offline with scikit-image (the ``images`` extra), and MNIST-M.

``photos``: 4,096 crops of side ``data.resolution`` (default 96) at seeded random positions
(a photograph drawn uniformly, then a position in it) from the training photographs below,
RGB (grey photographs repeated to three channels). The held-out photos
(`HELD_OUT`: astronaut, chelsea, coffee) are never cropped for training; `heldout_photos`
returns them whole, for super-resolution evaluation.

``mnistm`` / ``mnistm:test``: MNIST-M (Ganin et al. 2016, sec. 5.1): each mnist5k digit
blended with a random 28x28 colour patch of a photograph by absolute difference,
out = |patch - digit| per channel (0..255). Here the patches come from the ``photos``
training photographs (the paper's BSDS500 is not available offline), digits from the fixed
mnist5k split (``mnist5k:train``, 4,000, and ``mnist5k:test``, 100 per class) and
patches of the train split from the upper three quarters of each photograph, the test
split's from the lower quarter. Labels are the digits'. Deterministic (seeded).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gankit.data._common import Dataset, LoadOptions, no_arg
from gankit.data.mnist5k import mnist5k_split
from gankit.registry import DATASETS
from gankit.utils.extras import require

# scikit-image's bundled files (skimage.data.data_dir), none downloaded
TRAIN_PHOTOS = ("hubble_deep_field.jpg", "ihc.png", "retina.jpg", "rocket.jpg",
                "motorcycle_left.png", "motorcycle_right.png", "camera.png", "coins.png",
                "moon.png", "brick.png", "grass.png", "gravel.png", "cell.png")
HELD_OUT = ("astronaut.png", "chelsea.png", "coffee.png")
NUM_CROPS = 4096
_CROP_SEED = 160_904  # seeds the crop positions
_MNISTM_SEED = 2016  # seeds the patch positions


def _photo(name: str) -> np.ndarray:
    """One bundled photograph as uint8 [H, W, 3]."""
    (data,) = require(("skimage.data",), "images", "the photos and mnistm datasets")
    with Image.open(Path(data.data_dir) / name) as img:
        return np.array(img.convert("RGB"))  # a writable copy: torch.from_numpy warns on views


def heldout_photos() -> dict[str, torch.Tensor]:
    """The held-out photographs, whole: name -> float32 [3, H, W] in [-1, 1]."""
    return {name.split(".")[0]: torch.from_numpy(_photo(name)).permute(2, 0, 1).float()
            / 127.5 - 1 for name in HELD_OUT}


def _random_crops(photos: list[np.ndarray], n: int, side: int, g: torch.Generator,
                  rows: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """``n`` crops [n, side, side, 3]: a photograph drawn uniformly, then a top-left corner
    uniformly among those whose crop lies in the band ``rows`` (fractions of the height)."""
    spans = []
    for p in photos:
        top, bottom = int(rows[0] * p.shape[0]), int(rows[1] * p.shape[0])
        if bottom - top < side or p.shape[1] < side:
            raise ValueError(f"crop side {side} is larger than a photograph band "
                             f"({bottom - top}x{p.shape[1]}); choose a smaller resolution")
        spans.append((top, bottom - top - side + 1, p.shape[1] - side + 1))
    which = torch.randint(len(photos), (n,), generator=g)  # every photograph equally often
    u = torch.rand(n, 2, generator=g, dtype=torch.float64)
    out = np.empty((n, side, side, 3), dtype=np.uint8)
    for i in range(n):
        k = int(which[i])
        top, h, w = spans[k]
        y, x = top + int(u[i, 0] * h), int(u[i, 1] * w)
        out[i] = photos[k][y:y + side, x:x + side]
    return out


@DATASETS.register("photos", "4,096 random crops of scikit-image's bundled photographs "
                             "(held out: astronaut, chelsea, coffee); gankit[images]")
def photos(arg: str | None, opts: LoadOptions) -> Dataset:
    """RGB crops ``[4096, 3, R, R]`` in [-1, 1], R = ``opts.resolution`` (default 96)."""
    no_arg("photos", arg)
    side = opts.resolution or 96
    crops = _random_crops([_photo(n) for n in TRAIN_PHOTOS], NUM_CROPS, side,
                          torch.Generator().manual_seed(_CROP_SEED))
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 127.5 - 1
    return Dataset(x=x, y=None, num_classes=0, kind="image", name="photos")


@DATASETS.register("mnistm", "MNIST-M (Ganin et al. 2016): mnist5k digits blended with photo "
                             "patches; mnistm (4,000) or mnistm:test (1,000); gankit[images]")
def mnistm(arg: str | None, opts: LoadOptions) -> Dataset:
    """RGB ``[N, 3, 28, 28]`` in [-1, 1] with the digits' labels."""
    from gankit.data.mnist5k import mnist5k

    if arg not in (None, "train", "test"):
        raise ValueError(f"mnistm:{arg}: the split must be train (default) or test")
    split = arg or "train"
    digits = mnist5k(None, LoadOptions())
    train_idx, test_idx = mnist5k_split()  # the digits' fixed split
    idx = train_idx if split == "train" else test_idx
    band = (0.0, 0.75) if split == "train" else (0.75, 1.0)
    g = torch.Generator().manual_seed(_MNISTM_SEED + (split == "test"))
    patches = _random_crops([_photo(n) for n in TRAIN_PHOTOS], len(idx), 28, g, band)
    digit = ((digits.x[idx] + 1) * 127.5).round().permute(0, 2, 3, 1).numpy()  # [n,28,28,1]
    blended = np.abs(patches.astype(np.float32) - digit).astype(np.float32)
    x = torch.from_numpy(blended).permute(0, 3, 1, 2) / 127.5 - 1
    return Dataset(x=x.contiguous(), y=digits.y[idx], num_classes=10, kind="image",
                   name=f"mnistm:{split}" if arg else "mnistm",
                   class_names=digits.class_names)
