"""Nearest-training-neighbour sheets: does the generator copy its training images?

The visual companion of the ``memorization`` metric (Meehan et al. 2020 test data-copying
with nearest-neighbour distances): each generated sample is shown beside its k nearest
training images under the L2 distance in pixel space ([-1, 1] values, as the data loader
gives them), the check of Figure 2 in Radford et al. 2016 (DCGAN) and of most GAN papers
since. Pixel-space L2 finds copies and near-copies; it is not a perceptual similarity.

Distances are exact: computed in float64 with the direct (non-matrix-product) form of
``torch.cdist``, so an exact copy is at distance 0, over blocks of the training set so that
60,000 training images never need more than ``MAX_ELEMENTS`` float64 values at a time.
Points data is refused with a ValueError: nearest neighbours of 2D points say little that a
scatter plot (``gankit sample RUN --out points.png``) does not show better.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from gankit import api
from gankit.utils.images import annotate, png_bytes, to_uint8
from gankit.utils.io import atomic_write_bytes, atomic_write_json
from gankit.viz._common import auto_scale, load_image_run

# 2**22 float64 values = 32 MiB per block of training images.
MAX_ELEMENTS = 2**22
PADDING = 2  # pixels between tiles and around the sheet, before upscaling
GAP = 4  # extra pixels between the generated column and its neighbours, before upscaling
BACKGROUND = (64, 64, 64)  # padding colour: dark grey shows tiles with black or white borders
HIGHLIGHT = (255, 160, 0)  # the generated column's frame (orange)


@torch.no_grad()
def nearest_neighbours(fake: torch.Tensor, train: torch.Tensor, k: int,
                       max_elements: int = MAX_ELEMENTS) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest rows of ``train`` for every row of ``fake``, by exact L2 distance.

    Args:
        fake: queries [n, ...] (e.g. images [n, C, H, W]); flattened per sample.
        train: the reference set [N, ...] with the same per-sample shape; it may live on
            another device than ``fake`` and is moved block by block.
        k: neighbours per query, 1 <= k <= N.
        max_elements: float64 values per block of ``train`` (bounds the memory used).

    Returns:
        ``(distances, indices)``: float64 [n, k] ascending per row and int64 [n, k] into
        ``train`` (on ``fake``'s device). Equal distances keep the lower training index first.
    """
    if fake.shape[1:] != train.shape[1:]:
        raise ValueError(f"nearest_neighbours: samples {tuple(fake.shape[1:])} and training "
                         f"data {tuple(train.shape[1:])} differ in shape")
    if not 1 <= k <= len(train):
        raise ValueError(f"k must lie in 1..{len(train)} (the training set size), got {k}")
    n, dev = len(fake), fake.device
    queries = fake.reshape(n, -1).to(torch.float64)  # [n, D]
    dim = queries.shape[1]
    best_d = torch.empty(n, 0, dtype=torch.float64, device=dev)
    best_i = torch.empty(n, 0, dtype=torch.long, device=dev)
    rows = max(1, max_elements // max(dim, n))
    for start in range(0, len(train), rows):
        block = train[start:start + rows].reshape(-1, dim).to(dev, torch.float64)  # [B, D]
        # The direct form is exact (no ||a||² + ||b||² - 2ab cancellation): copies give 0.
        dist = torch.cdist(queries, block, compute_mode="donot_use_mm_for_euclid_dist")
        idx = torch.arange(start, start + len(block), device=dev).expand(n, -1)
        all_d, all_i = torch.cat([best_d, dist], 1), torch.cat([best_i, idx], 1)
        # Stable: on ties the earlier column (the lower training index) stays first.
        order = all_d.sort(dim=1, stable=True).indices[:, :k]
        best_d, best_i = all_d.gather(1, order), all_i.gather(1, order)
    return best_d, best_i


def sheet_array(fake: torch.Tensor, neighbours: torch.Tensor) -> np.ndarray:
    """Lay out the nearest-neighbour sheet (before upscaling).

    Args:
        fake: generated images [n, C, H, W] in [-1, 1].
        neighbours: their training neighbours [n, k, C, H, W] in [-1, 1], nearest first.

    Returns:
        uint8 RGB array [n * (H + PADDING) + PADDING, (k + 1) * (W + PADDING) + PADDING + GAP, 3]:
        one row per sample, the generated image first in an orange frame, then GAP pixels,
        then its k neighbours left to right.
    """
    n, k, c, h, w = neighbours.shape
    if fake.shape != (n, c, h, w):
        raise ValueError(f"sheet_array: fake {tuple(fake.shape)} does not match neighbours "
                         f"{tuple(neighbours.shape)}")
    gen = _rgb(to_uint8(fake))  # [n, H, W, 3]
    near = _rgb(to_uint8(neighbours.reshape(n * k, c, h, w))).reshape(n, k, h, w, 3)
    pad = PADDING
    sheet = np.empty((n * (h + pad) + pad, (k + 1) * (w + pad) + pad + GAP, 3), np.uint8)
    sheet[:] = BACKGROUND
    sheet[:, : w + 2 * pad] = HIGHLIGHT
    for r in range(n):
        top = pad + r * (h + pad)
        sheet[top:top + h, pad:pad + w] = gen[r]
        for j in range(k):
            left = pad + GAP + (j + 1) * (w + pad)
            sheet[top:top + h, left:left + w] = near[r, j]
    return sheet


def nearest_sheet(run_dir: str | Path, out_png: str | Path, n: int = 8, k: int = 5,
                  seed: int = 0, ema: bool = True, device: str = "cpu") -> Path:
    """Write a sheet of ``n`` generated images, each beside its ``k`` nearest training images.

    The training images are the run's own data (``api.dataset_for(run.config)``), compared in
    pixel space by L2 distance. Beside ``out_png`` a JSON file (same name, ``.json``) records
    what the sheet shows: ``indices`` and ``distances`` [n][k] (training-set indices, L2 over
    all C*H*W values in [-1, 1]), plus ``step``, ``seed``, ``ema``, ``dataset``.

    Args:
        run_dir: a run directory with at least one checkpoint (image data only).
        out_png: the sheet to write; upscaled like the sample grids (8x8 and 28x28 images 4x).
        n: generated samples, one row each (``api.sample(run, n, seed=seed)``).
        k: nearest training images per sample.
        seed: seed of the latents.
        ema: use G_ema when the run kept one.
        device: where to run G and the distance computation.

    Returns:
        The path of the PNG; see ``sheet_array`` for the layout.

    Raises:
        ValueError: for a points run, or n < 1, or k outside 1..N.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    out_png = Path(out_png)
    run = load_image_run(run_dir, device, "the nearest-neighbour sheet")
    data = api.dataset_for(run.config)
    fake = _samples(run, n, seed, ema)  # [n, C, H, W]
    if not 1 <= k <= len(data.x):
        raise ValueError(f"k must lie in 1..{len(data.x)} (the training set size), got {k}")
    distances, indices = nearest_neighbours(fake.to(device), data.x, k)
    neighbours = data.x[indices.cpu().reshape(-1)].reshape(n, k, *data.x.shape[1:])
    sheet = sheet_array(fake.cpu(), neighbours)
    legend = "generated (orange frame) | its nearest training images, nearest first (L2)"
    atomic_write_bytes(out_png, annotate(png_bytes(sheet, auto_scale(fake.shape[-1])),
                                         header=legend))
    atomic_write_json(out_png.with_suffix(".json"), {
        "dataset": data.name, "step": run.step, "seed": seed, "ema": ema,
        "distance": "L2 in pixel space, values in [-1, 1]",
        "indices": indices.cpu().tolist(), "distances": distances.cpu().tolist()})
    return out_png


def read_distances(out_png: str | Path) -> dict:
    """The JSON record ``nearest_sheet`` wrote beside ``out_png``."""
    return json.loads(Path(out_png).with_suffix(".json").read_text())


def _samples(run: api.LoadedRun, n: int, seed: int, ema: bool) -> torch.Tensor:
    return api.sample(run, n, seed=seed, ema=ema)


def _rgb(tiles: np.ndarray) -> np.ndarray:
    return np.repeat(tiles, 3, axis=-1) if tiles.shape[-1] == 1 else tiles
