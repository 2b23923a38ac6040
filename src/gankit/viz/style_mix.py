"""The style-mixing grid of StyleGAN (Karras et al. 2019, Figure 3; StyleGAN2, Karras et al.
2020): each cell is synthesised from the coarse styles (the w of the first layers, up to
side ``coarse_side``) of its row's source and the fine styles (every later layer) of its
column's source. The top row shows the column sources, the left column the row sources.
Only style-based generators (``stylegan2``) have per-layer styles.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gankit import api
from gankit.sampling import eval_mode
from gankit.utils.images import make_grid, png_bytes
from gankit.utils.io import atomic_write_bytes
from gankit.viz._common import auto_scale, load_image_run


def style_generator(run: api.LoadedRun, ema: bool, what: str, run_dir) -> torch.nn.Module:
    """The run's generator if it is style-based; a ValueError naming ``what`` otherwise."""
    net = run.net(ema)
    if not (hasattr(net, "mapping") and hasattr(net, "synthesis")):
        raise ValueError(f"{what} needs a style-based generator (generator: stylegan2), but "
                         f"{run_dir} was trained with generator {run.config.generator.name}")
    return net


@torch.no_grad()
def style_mix_images(G: torch.nn.Module, z_rows: torch.Tensor, z_cols: torch.Tensor,
                     crossover: int) -> torch.Tensor:
    """The grid's images [(R + 1) * (K + 1), C, H, W], row-major, in [-1, 1].

    Args:
        G: a style-based generator (``mapping``, ``synthesis``, ``num_ws``).
        z_rows: latents [R, z_dim] of the rows (coarse styles: ws[:, :crossover]).
        z_cols: latents [K, z_dim] of the columns (fine styles: ws[:, crossover:]).
        crossover: the first layer whose style comes from the column.

    The first image is blank (-1), the rest of the first row are the column sources, the
    first image of each later row is that row's source.
    """
    with eval_mode(G):
        w_rows, w_cols = G.mapping(z_rows), G.mapping(z_cols)  # [R, D], [K, D]
        layer = torch.arange(G.num_ws, device=w_rows.device)[None, None, :, None]
        rows = w_rows[:, None, None, :]  # [R, 1, 1, D]
        cols = w_cols[None, :, None, :]  # [1, K, 1, D]
        ws = torch.where(layer < crossover, rows, cols)  # [R, K, L, D]
        mixed = G.synthesis(ws.flatten(0, 1))  # [R * K, C, H, W]
        col_src = G.synthesis(w_cols[:, None].expand(-1, G.num_ws, -1))
        row_src = G.synthesis(w_rows[:, None].expand(-1, G.num_ws, -1))
    r, k = len(z_rows), len(z_cols)
    blank = torch.full_like(mixed[:1], -1.0)
    grid = [blank, col_src]
    mixed = mixed.reshape(r, k, *mixed.shape[1:])
    for i in range(r):
        grid += [row_src[i:i + 1], mixed[i]]
    return torch.cat(grid).cpu()


def style_mix_grid(run_dir: str | Path, out_path: str | Path, rows: int = 5, cols: int = 6,
                   seed: int = 0, coarse_side: int = 8, ema: bool = True,
                   device: str = "cpu") -> Path:
    """Write the style-mixing grid of a stylegan2 run as a PNG.

    Args:
        run_dir: a run directory whose generator is ``stylegan2``.
        out_path: the PNG to write.
        rows, cols: number of row (coarse) and column (fine) sources, >= 1.
        seed: the row latents are the first ``rows`` N(0, I) draws of a generator seeded
            ``seed``, the column latents the next ``cols``.
        coarse_side: rows give the styles of every layer up to this image side (8: the
            paper's "coarse" 4x4 and 8x8 styles).
        ema: use G_ema when the run kept one.
        device: where to run G.

    Raises:
        ValueError: not a stylegan2 run, or rows/cols < 1.
    """
    if rows < 1 or cols < 1:
        raise ValueError(f"rows and cols must be >= 1, got rows={rows}, cols={cols}")
    run = load_image_run(run_dir, device, "the style-mixing grid")
    G = style_generator(run, ema, "the style-mixing grid (--style-mix)", run_dir)
    dev = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(rows + cols, run.config.z_dim, generator=gen).to(dev)
    images = style_mix_images(G, z[:rows], z[rows:], G.crossover(coarse_side))
    path = Path(out_path)
    atomic_write_bytes(path, png_bytes(make_grid(images, nrow=cols + 1),
                                       auto_scale(images.shape[-1])))
    return path
