"""Exponential moving average of the generator's weights (Karras et al. 2018; Yazici et al.
2019): G_ema <- beta * G_ema + (1 - beta) * G after every G step.

With ``warmup`` the decay ramps up as min(beta, (1 + t) / (10 + t)) at step t, the
schedule of TensorFlow's ExponentialMovingAverage(num_updates), so that early samples are
not dominated by the random initial weights.

G_ema samples in eval mode, so its BatchNorm layers use running statistics, and G's own
running statistics belong to G's weights, not to the averaged ones. ``bn_stats`` chooses
what G_ema's statistics are:

- ``standing`` (the default): re-estimated for G_ema's own weights whenever G_ema is about
  to be sampled or saved: the running statistics are reset and set to the plain average of
  the batch statistics over ``standing_samples`` latents, in batches of ``train.batch_size``
  with G_ema in train mode ("standing statistics", Brock et al. 2019, BigGAN section 3.1).
  The latents come from a generator seeded by the run's seed alone, so the statistics are a
  pure function of the weights and training is unaffected;
- ``average``: G's running statistics averaged alongside the weights, with the same decay;
- ``copy``: G's running statistics copied after every step.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from gankit.components import HookBase
from gankit.registry import HOOKS
from gankit.sampling import stream
from gankit.utils.checks import at_least, fraction

BN_STATS = ("standing", "average", "copy")


@HOOKS.register("ema", "exponential moving average of G's weights, kept as G_ema")
class EMA(HookBase):
    """Maintains ``state.G_ema``, the averaged generator used for samples and metrics."""

    @dataclass(frozen=True)
    class Options:
        beta: float = 0.999  # decay per G step
        start_step: int = 0  # before this step G_ema simply copies G
        warmup: bool = True  # ramp the decay up as min(beta, (1 + t) / (10 + t))
        bn_stats: str = "standing"  # G_ema's BatchNorm statistics: standing, average, copy
        standing_samples: int = 1024  # latents averaged into the standing statistics

        def __post_init__(self) -> None:
            fraction("beta", self.beta)
            at_least("start_step", self.start_step, 0)
            if self.bn_stats not in BN_STATS:
                raise ValueError(f"bn_stats must be one of {', '.join(BN_STATS)}, got "
                                 f"{self.bn_stats!r}")
            at_least("standing_samples", self.standing_samples, 1)

    def __init__(self, options=None, /, **values) -> None:
        super().__init__(options, **values)
        self._stale = False  # G_ema's weights moved since its statistics were estimated

    def decay(self, step: int) -> float:
        """The decay used after generator step ``step`` (1-based)."""
        o = self.options
        if step < o.start_step:
            return 0.0
        t = step - o.start_step
        return min(o.beta, (1.0 + t) / (10.0 + t)) if o.warmup else o.beta

    def setup(self, state) -> None:
        if state.G_ema is None:
            state.G_ema = copy.deepcopy(state.G).eval().requires_grad_(False)

    @torch.no_grad()
    def after_g_step(self, state, step: int) -> None:
        beta = self.decay(step)
        torch._foreach_lerp_(list(state.G_ema.parameters()), list(state.G.parameters()),
                             1.0 - beta)
        mode = self.options.bn_stats
        averaged = _bn_running_stats(state.G_ema) if mode == "average" else set()
        for (name, b_ema), b in zip(state.G_ema.named_buffers(), state.G.buffers()):
            if name in averaged:
                b_ema.lerp_(b, 1.0 - beta)
            else:
                b_ema.copy_(b)
        self._stale = mode == "standing"

    def before_sampling(self, state) -> None:
        """Bring G_ema's BatchNorm statistics up to date (``standing``) before it is used."""
        if self._stale:
            cfg = state.config
            standing_statistics(state.G_ema, cfg.z_dim, self.options.standing_samples,
                                cfg.train.batch_size,
                                stream(cfg.train.seed, "standing", state.device))
            self._stale = False

    def load_state_dict(self, state: dict) -> None:
        self._stale = False  # the checkpoint's statistics were estimated when it was saved


def _bn_running_stats(net: nn.Module) -> set[str]:
    """Buffer names of the BatchNorm running means and variances of ``net``."""
    return {f"{name}.{b}" if name else b for name, m in net.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
            for b in ("running_mean", "running_var")}


@torch.no_grad()
def standing_statistics(G: nn.Module, z_dim: int, samples: int, batch_size: int,
                        generator: torch.Generator) -> None:
    """Reset G's BatchNorm running statistics and set them to the plain average of the batch
    statistics over ``samples`` latents drawn from ``generator`` (in batches of
    ``batch_size``, G in train mode); G is left in eval mode. A G without BatchNorm is left
    as it is."""
    norms = [m for m in G.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return
    device, gen = next(G.parameters()).device, generator
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average instead of an exponential one
    G.train()
    try:
        for start in range(0, samples, batch_size):
            n = min(batch_size, samples - start)
            if n < 2 and start > 0:
                break  # a batch of one has no variance
            z = torch.randn(n, z_dim, generator=gen, device=device)
            c = G.cond.draw_labels(n, gen, device) if G.conditional else None
            G(z, c)
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        G.eval()
