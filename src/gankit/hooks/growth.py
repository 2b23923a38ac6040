"""Progressive growing's schedule, Karras et al. 2018 ("Progressive Growing of GANs",
section 3): the ``pggan`` G and D (`gankit.models.pggan`) start at 4x4 and grow one level
(side x2) at a time; each new level first fades in, its weight alpha rising linearly from
0 to 1, then trains stabilised at alpha 1; the target side then trains until the end.

Phases of ``phase_steps`` G steps each: stabilise 4x4, then per level k = 1..L a fade-in
and a stabilisation (the paper: 800k real images per phase). The (level, alpha) of a step
is a pure function of the step (`growth_at`), set on G, D and G_ema before every D update,
after every G step and before sampling, so a run resumed from any step, mid-fade included,
continues exactly; the checkpoint also carries it in the networks' ``growth`` buffers, so
``gankit sample`` and ``gankit export`` use the level the run had reached. The real
images D sees are brought to the current level (`gankit.models.pggan.real_images_at`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.components import HookBase
from gankit.models._base import registered_name
from gankit.models.pggan import Growing, real_images_at
from gankit.registry import DISCRIMINATORS, GENERATORS, HOOKS
from gankit.utils.checks import at_least


def growth_at(step: int, levels: int, phase_steps: int) -> tuple[int, float]:
    """(level, alpha) of G step ``step`` (0-based) when growing from 4x4 (level 0) to level
    ``levels`` in phases of ``phase_steps`` steps.

    Phase p = step // phase_steps: p = 0 stabilises level 0; p = 2k - 1 fades level k in
    with alpha = (step mod phase_steps) / phase_steps; p = 2k stabilises level k (alpha 1);
    from p = 2 * levels on, level ``levels`` at alpha 1.
    """
    phase, into = divmod(step, phase_steps)
    level = (phase + 1) // 2
    if level > levels:
        return levels, 1.0
    if phase % 2 == 1:  # a fade-in
        return level, into / phase_steps
    return level, 1.0


@HOOKS.register("growth", "progressive growing: pggan's level and fade-in alpha from the "
                          "step (Karras 2018)")
class Growth(HookBase):
    """Sets the growth state of the ``pggan`` G, D and G_ema from the training step, and
    gives D the real images at the current level."""

    @dataclass(frozen=True)
    class Options:
        phase_steps: int = 2000  # G steps of each phase: stabilise 4x4, then fade + stabilise

        def __post_init__(self) -> None:
            at_least("phase_steps", self.phase_steps, 1)

    def setup(self, state) -> None:
        if state.config.pack > 1:
            raise ValueError(f"hooks.growth needs pack 1 (a packed D is not grown), got pack "
                             f"{state.config.pack}; use --set pack=1")
        for who, net, registry in (("generator", state.G, GENERATORS),
                                   ("discriminator", state.D, DISCRIMINATORS)):
            if not isinstance(net, Growing):
                raise ValueError(f"hooks.growth grows a progressively grown network, but the "
                                 f"{who} is {registered_name(net, registry)}; use --set "
                                 f"{who}=pggan, or remove hooks.growth")
        if state.G.levels != state.D.levels:
            raise ValueError(f"hooks.growth: G has {state.G.levels} levels above 4x4 and D "
                             f"{state.D.levels}; build both for the same image side")
        self._apply(state, state.step)

    def schedule(self, step: int, levels: int) -> tuple[int, float]:
        """(level, alpha) of G step ``step`` for networks with ``levels`` levels."""
        return growth_at(step, levels, self.options.phase_steps)

    def _apply(self, state, step: int) -> tuple[int, float]:
        level, alpha = self.schedule(step, state.G.levels)
        for net in (state.G, state.D, state.G_ema):
            if net is not None and (net.level, net.alpha) != (level, alpha):
                net.set_growth(level, alpha)
        return level, alpha

    def prepare_real(self, state, real: torch.Tensor) -> torch.Tensor:
        level, alpha = self._apply(state, state.step)
        return real_images_at(real, level, alpha, state.G.levels)

    def after_g_step(self, state, step: int) -> None:
        self._apply(state, step)  # samples and checkpoints of this step show its level

    def before_sampling(self, state) -> None:
        self._apply(state, state.step)
