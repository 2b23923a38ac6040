"""How gankit draws from a generator: the one place that the API, the training evaluator,
the health monitor, sample grids, refinement, the benchmarks and ``gankit show`` use.

- `eval_mode` puts networks in eval mode for a block and restores each one's own mode.
- `stream` gives the random generator of a named, fixed stream of draws. Every draw that
  is not training's own (``state.generator``) comes from one: the streams are seeded by
  the run's seed plus the stream's offset in `STREAMS`, so they never touch training's
  randomness and a number reported once can be drawn again.
- `generate` runs G over given latents in batches (``truncation``: through
  ``G.truncated``); `draw` draws the latents (and labels) from a generator first.
- `truncate_latent` is BigGAN's truncated normal (Brock et al. 2019, section 3.1).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn

from gankit.utils.precision import autocast
from gankit.utils.progress import progress_bar

# Offsets added to a run's seed, one per stream of draws outside training.
STREAMS = {
    "eval": 777,  # the training evaluator's latents (train.eval)
    "latents": 12345,  # mixture metrics at the end of training; the benchmarks' samples
    "health_modes": 0x4EA1,  # the health monitor's fixed mode-coverage latents
    "health_real": 0x4EA2,  # its choice of a fixed real batch
    "standing": 0x57A9D,  # G_ema's standing BatchNorm statistics (hooks.ema)
    "refine_fit": 7_777_777,  # the fakes refine's critics are fitted on (of RefineOptions.seed)
    "refine_coins": 1_000_003,  # refined sampling's accept/reject coins (of the sampling seed)
}


def stream(seed: int, name: str, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator on ``device`` seeded ``seed + STREAMS[name]``."""
    return torch.Generator(device=device).manual_seed(seed + STREAMS[name])


@contextlib.contextmanager
def eval_mode(*nets: nn.Module) -> Iterator[None]:
    """Eval mode for ``nets`` inside the block; each gets its own mode back after."""
    modes = [net.training for net in nets]
    for net in nets:
        net.eval()
    try:
        yield
    finally:
        for net, mode in zip(nets, modes):
            net.train(mode)


def check_truncation(psi: float) -> float:
    """``psi`` as a float; a ``ValueError`` unless it is a finite number >= 0."""
    if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not (
            math.isfinite(psi) and psi >= 0):
        raise ValueError(f"--truncation must be a finite number >= 0 (BigGAN: the threshold "
                         f"on |z|, 0 = every z at 0), got {psi!r}")
    return float(psi)


def truncate_latent(z: torch.Tensor, psi: float) -> torch.Tensor:
    """BigGAN's truncation trick: each component of z whose magnitude exceeds ``psi`` is
    redrawn from N(0, 1) restricted to [-psi, psi]; the others are kept.

    The redraw is a function of the component itself rather than a fresh random draw: a
    component z beyond the threshold has u = Phi(-|z|) / Phi(-psi) uniform on (0, 1], and
    Phi^-1(Phi(-psi) + u (Phi(psi) - Phi(-psi))) is then an exact draw of the truncated
    normal. So the same z gives the same images, and no random stream is needed.
    ``psi = 0`` sends every component to 0.

    Args:
        z: [N, D] latents drawn from N(0, I).
        psi: the threshold, a finite number >= 0.

    Returns:
        [N, D] latents in [-psi, psi], distributed as N(0, I) truncated there.
    """
    psi = check_truncation(psi)
    z64 = z.double()
    outside = z64.abs() > psi
    low = torch.special.ndtr(torch.tensor(-psi, dtype=torch.float64, device=z.device))
    u = torch.special.ndtr(-z64.abs()) / low  # uniform on (0, 1] beyond the threshold
    redrawn = torch.special.ndtri(low + u * (1.0 - 2.0 * low))
    redrawn = redrawn.clamp(-psi, psi)  # rounding at the ends of the interval
    return torch.where(outside, redrawn, z64).to(z.dtype)


@torch.no_grad()
def generate(G: nn.Module, z: torch.Tensor, labels: torch.Tensor | None = None, *,
             batch_size: int = 500, bf16: bool = False, cpu: bool = True,
             progress: bool = False, truncation: float | None = None) -> torch.Tensor:
    """``G(z, labels)`` in eval mode, ``batch_size`` latents at a time: float32 samples
    [n, ...] (on the CPU unless ``cpu`` is False). ``bf16`` runs G under bfloat16 autocast.
    A conditional G without labels cycles through its classes. ``progress``: a bar of the
    samples on stderr when they take more than one batch (`gankit.utils.progress`).
    ``truncation`` (psi) samples ``G.truncated(z, labels, psi)`` instead (a ``ValueError``
    for a G without the trick)."""
    device = z.device
    parts = []
    bar = progress_bar(len(z), desc="sampling", unit="sample",
                       enabled=progress and len(z) > batch_size)
    with eval_mode(G), bar:
        for i, zb in enumerate(z.split(batch_size)):
            cb = None if labels is None else labels[i * batch_size:(i + 1) * batch_size]
            with autocast(device, bf16):
                if truncation is not None:
                    x = G.truncated(zb, cb, truncation).float()
                else:
                    x = (G(zb) if cb is None else G(zb, cb)).float()
            parts.append(x.cpu() if cpu else x)
            bar.update(len(zb))
    return torch.cat(parts)


def draw(G: nn.Module, n: int, z_dim: int, generator: torch.Generator, *,
         labels: torch.Tensor | None = None, batch_size: int = 500,
         bf16: bool = False, progress: bool = False) -> torch.Tensor:
    """``n`` samples of G from latents z ~ N(0, I) drawn from ``generator`` (on G's device):
    float32 [n, ...] on the CPU."""
    device = next(G.parameters()).device
    z = torch.randn(n, z_dim, generator=generator, device=device)
    return generate(G, z, labels, batch_size=batch_size, bf16=bf16, progress=progress)
