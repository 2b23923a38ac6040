"""Latent-space walks: linear and spherical interpolation grids and one-dimension traversals.

Smooth transitions along a latent path are the DCGAN paper's evidence that G has not
memorised (Radford et al. 2016, section 6.1). Spherical interpolation (slerp, Shoemake 1985)
follows White 2016, "Sampling Generative Networks": under a Gaussian prior in many
dimensions, linear midpoints have a norm ~0.71 times that of typical latents, where G has
rarely been trained, while slerp between two typical latents stays near the shell where they
live. Both grids of ``interpolation_grids`` use the same endpoints so they compare directly.

For a style-based generator (``stylegan2``) the linear grid interpolates in W instead: the
endpoints' latents go through the mapping network and the path is the straight line between
their w (the space where StyleGAN's perceptual path length is measured, Karras et al. 2019,
section 4.2); it is written as ``interpolate_w_lerp.png``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gankit import api
from gankit.sampling import eval_mode, generate
from gankit.utils.images import make_grid, png_bytes
from gankit.utils.io import atomic_write_bytes
from gankit.viz._common import auto_scale, load_image_run

# Below this sin(angle) the two vectors are (anti)parallel and slerp's weights are 0/0.
SLERP_EPS = 1e-6
TRAVERSE_RANGE = (-3.0, 3.0)  # +-3 standard deviations of the N(0, 1) prior per dimension


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Linear interpolation ``(1 - t) z0 + t z1``, exact at t = 0 and t = 1.

    Args:
        z0, z1: latents [..., D].
        t: a float or a tensor broadcastable with the batch shape ``z0.shape[:-1]``.

    Returns:
        [broadcast batch shape..., D].
    """
    t = _as_weight(t, z0)
    return (1 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Spherical interpolation ``sin((1-t)w)/sin(w) z0 + sin(tw)/sin(w) z1`` (Shoemake 1985).

    ``w`` is the angle between z0 and z1. The path turns in their plane at a constant angular
    rate: the angle between z0 and slerp(t) is ``t * w``, and for ``|z0| = |z1|`` the norm
    stays ``|z0|``. Where the vectors are (anti)parallel (``sin w < SLERP_EPS``) the weights
    are undefined and this falls back to ``lerp``.

    Args:
        z0, z1: latents [..., D] (not required to have unit norm).
        t: a float or a tensor broadcastable with the batch shape ``z0.shape[:-1]``;
            t = 0 gives z0 and t = 1 gives z1 exactly.

    Returns:
        [broadcast batch shape..., D].
    """
    t = _as_weight(t, z0)
    omega = angle(z0, z1).unsqueeze(-1)  # [..., 1]
    sin = torch.sin(omega)
    parallel = sin < SLERP_EPS
    safe = torch.where(parallel, torch.ones_like(sin), sin)
    w0, w1 = torch.sin((1 - t) * omega) / safe, torch.sin(t * omega) / safe
    return torch.where(parallel, (1 - t) * z0 + t * z1, w0 * z0 + w1 * z1)


def angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The angle in radians (0..pi) between vectors a, b [..., D] -> [...].

    Computed as ``2 atan2(|u - v|, |u + v|)`` for the unit vectors u, v (Kahan's formula),
    which stays accurate near 0 and pi where ``arccos`` of the cosine loses half the digits.
    """
    u = a / torch.linalg.vector_norm(a, dim=-1, keepdim=True).clamp_min(1e-30)
    v = b / torch.linalg.vector_norm(b, dim=-1, keepdim=True).clamp_min(1e-30)
    return 2 * torch.atan2(torch.linalg.vector_norm(u - v, dim=-1),
                           torch.linalg.vector_norm(u + v, dim=-1))


def latent_endpoints(z_dim: int, rows: int, seed: int) -> tuple[torch.Tensor, ...]:
    """The latents ``interpolation_grids`` uses, drawn on the CPU from ``seed``.

    Returns:
        ``(z0, z1, base)``: row start and end points [rows, z_dim] each, and the traversal's
        base latent [z_dim], all from N(0, I).
    """
    gen = torch.Generator().manual_seed(seed)
    z0 = torch.randn(rows, z_dim, generator=gen)
    z1 = torch.randn(rows, z_dim, generator=gen)
    base = torch.randn(z_dim, generator=gen)
    return z0, z1, base


def latent_paths(z_dim: int, rows: int = 8, steps: int = 10,
                 seed: int = 0) -> dict[str, torch.Tensor]:
    """The latent grids behind ``interpolation_grids``, row-major.

    Returns:
        ``{"lerp": [rows, steps, z_dim], "slerp": [rows, steps, z_dim],
        "traverse": [min(rows, z_dim), steps, z_dim]}``. Interpolation rows run from
        ``z0[r]`` to ``z1[r]`` (``latent_endpoints``) at t = linspace(0, 1, steps). Traversal
        row ``d`` is the base latent with dimension ``d`` set to linspace(-3, 3, steps); the
        first dimensions are used, all being alike under an isotropic prior.
    """
    _check_grid(rows, steps)
    z0, z1, base = latent_endpoints(z_dim, rows, seed)
    t = torch.linspace(0.0, 1.0, steps)[None, :]  # [1, steps]
    dims = min(rows, z_dim)
    traverse = base.repeat(dims, steps, 1)  # [dims, steps, z_dim]
    values = torch.linspace(*TRAVERSE_RANGE, steps)
    for d in range(dims):
        traverse[d, :, d] = values
    return {"lerp": lerp(z0[:, None], z1[:, None], t),
            "slerp": slerp(z0[:, None], z1[:, None], t),
            "traverse": traverse}


def interpolation_images(run: api.LoadedRun, rows: int = 8, steps: int = 10, seed: int = 0,
                         ema: bool = True) -> dict[str, torch.Tensor]:
    """G's images along the paths of ``latent_paths``.

    Args:
        run: a loaded image run (``api.load``).
        rows, steps, seed: as for ``latent_paths``.
        ema: use G_ema when the run kept one.

    Returns:
        ``{"lerp", "slerp", "traverse"}`` -> images [paths, steps, C, H, W] in [-1, 1], on CPU
        (``"w_lerp"``, linear in W between the same endpoints, instead of ``"lerp"`` for a
        style-based generator).
        A conditional run holds one class along each row (row r shows class r mod K), so a
        row shows what z alone changes.
    """
    net = run.net(ema)
    dev = next(net.parameters()).device
    out = {}
    for name, z in latent_paths(run.config.z_dim, rows, steps, seed).items():
        c = None
        if run.conditional:
            c = (torch.arange(z.shape[0], device=dev) % run.info.num_classes)
            c = c.repeat_interleave(z.shape[1])
        if name == "lerp" and is_style_based(net):
            name, images = "w_lerp", _w_lerp_images(net, z.to(dev), c)
        else:
            images = generate(net, z.reshape(-1, z.shape[-1]).to(dev), c)  # [R * S, C, H, W]
        out[name] = images.reshape(*z.shape[:2], *images.shape[1:])
    return out


def is_style_based(G: torch.nn.Module) -> bool:
    """True for generators with a mapping network and a synthesis network (stylegan2)."""
    return hasattr(G, "mapping") and hasattr(G, "synthesis")


@torch.no_grad()
def _w_lerp_images(G: torch.nn.Module, z: torch.Tensor, c: torch.Tensor | None
                   ) -> torch.Tensor:
    """Images [R * S, ...] along straight lines in W between the w of each row's first and
    last latent of z [R, S, z_dim] (a lerp path: its ends are the endpoints)."""
    rows, steps = z.shape[:2]
    ends = torch.stack([z[:, 0], z[:, -1]], dim=1).flatten(0, 1)  # [R * 2, z_dim]
    c_ends = None if c is None else c.reshape(rows, steps)[:, [0, -1]].flatten()
    t = torch.linspace(0.0, 1.0, steps, device=z.device)[None, :]
    with eval_mode(G):
        w = G.mapping(ends, c_ends).reshape(rows, 2, -1)  # [R, 2, w_dim]
        path = lerp(w[:, :1], w[:, 1:], t).flatten(0, 1)  # [R * S, w_dim]
        images = torch.cat([G.synthesis(part[:, None].expand(-1, G.num_ws, -1)).float().cpu()
                            for part in path.split(500)])
    return images


def interpolation_grids(run_dir: str | Path, out_dir: str | Path, rows: int = 8,
                        steps: int = 10, seed: int = 0, ema: bool = True,
                        device: str = "cpu") -> list[Path]:
    """Write ``interpolate_lerp.png`` (``interpolate_w_lerp.png``, linear in W, for a
    stylegan2 run), ``interpolate_slerp.png`` and ``traverse.png``.

    Each grid has one row per path and ``steps`` columns (``make_grid`` layout, 2 px padding,
    upscaled like the sample grids: [R * (H + 2) + 2, steps * (W + 2) + 2] times the scale).
    The paths are those of ``latent_paths``: the lerp and slerp grids share their endpoints
    (``latent_endpoints``), and the traversal has ``min(rows, z_dim)`` rows, each sweeping one
    latent dimension from -3 to +3 with the others fixed at a base latent.

    Args:
        run_dir: a run directory with at least one checkpoint (image data only).
        out_dir: folder for the three PNGs (created if needed).
        rows: interpolation paths (and traversed dimensions, at most z_dim).
        steps: images per path, >= 2 (both endpoints included).
        seed: seed of the latents.
        ema: use G_ema when the run kept one.
        device: where to run G.

    Returns:
        The three paths, in the order above.

    Raises:
        ValueError: for a points run, rows < 1 or steps < 2.
    """
    _check_grid(rows, steps)  # before loading anything
    run = load_image_run(run_dir, device, "latent interpolation")
    images = interpolation_images(run, rows, steps, seed, ema)
    out_dir = Path(out_dir)
    written = []
    linear = ("interpolate_w_lerp", "w_lerp") if "w_lerp" in images else (
        "interpolate_lerp", "lerp")
    for name, key in (linear, ("interpolate_slerp", "slerp"), ("traverse", "traverse")):
        grid = images[key].flatten(0, 1)  # [R * S, C, H, W]
        path = out_dir / f"{name}.png"
        atomic_write_bytes(path, png_bytes(make_grid(grid, nrow=steps),
                                           auto_scale(grid.shape[-1])))
        written.append(path)
    return written


def _check_grid(rows: int, steps: int) -> None:
    if rows < 1 or steps < 2:
        raise ValueError(f"rows must be >= 1 and steps >= 2, got rows={rows}, steps={steps}")


def _as_weight(t: float | torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``t`` as a tensor with a trailing 1 so it scales whole latent vectors."""
    return torch.as_tensor(t, dtype=z.dtype, device=z.device).unsqueeze(-1)
