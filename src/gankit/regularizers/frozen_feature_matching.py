"""Feature matching against a frozen snapshot of D (gankit; docs/benchmarks.md, "An eleventh
round").

Salimans et al.'s feature matching (`regularizers.feature_matching`) compares the batch mean
of D's features on the fakes with that of the latest real batch. Both move: D's features
change every step, and the real batch mean is itself a noisy estimate. This term fixes
both. At the G update of step ``from_step`` (after that step's D update) it takes a copy
of D, frozen in eval mode (BatchNorm with its running statistics), and computes the exact
mean mu and standard deviation sd of the copy's features over the whole training set. From
then on G also minimises

    weight * sum_j ( mean_i (f_j(G(z_i)) - mu_j) / sd_j )^2

with f the frozen copy's features (``D.score(x)["features"]``, flattened) and sd the
features' sample standard deviation plus 1e-3 (a feature that never varies would divide by
0). The feature space stays the same from one step to the next, so the pull towards the
data's mean features adds up over many steps instead of chasing a moving target, and the
target carries no real-batch noise. Each feature is divided by its spread in the data, so
a few large features do not dominate.

``average=b`` (0 < b < 1) steers G with a running average of the fakes' standardised mean
instead of one batch's: each G step updates a = b * a + (1 - b) * mean_i z(G(z_i)) (bias
corrected as in Adam: a / (1 - b^t)) and the term's gradient is 2 * weight * a . d mean_i z,
the batch term's gradient with its direction averaged over about 1 / (1 - b) batches. The
frozen feature space allows this: only G moves. One batch's mean is mostly noise (at batch
64 its noise is about 6x the squared distance left to the data, docs/benchmarks.md, "A
twelfth round"), so the plain term pushes G along that noise. The reported value is
weight * |a|^2. ``refresh=k`` takes a new snapshot (and restarts the average) every k steps
after ``from_step``.

The snapshot and its statistics are saved in every checkpoint: resume is exact, and a run
resumed with the term newly switched on takes its snapshot at its first G step at or past
``from_step``. Before ``from_step`` the term is 0 and costs nothing. The frozen copy runs in
float32 (as the other regularisers' own D passes do) on G's raw output: no augmentation.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from gankit.registry import REGULARIZERS


@REGULARIZERS.register("frozen_feature_matching",
                       "G matches a frozen D snapshot's mean features to their exact data mean")
class FrozenFeatureMatching:
    """Squared standardised distance between the fakes' mean features and the data's, in
    the feature space of D frozen at ``from_step``."""

    @dataclass(frozen=True)
    class Options:
        weight: float = 1.0  # multiplier of the squared distance, added to G's loss
        from_step: int = 0  # the step at which D is copied and frozen, and the term starts
        interval: int = 1  # apply every k-th G step (weight scaled by k)
        chunk: int = 1000  # real images per forward pass when computing mu and sd
        average: float = 0.0  # decay of a running average of the fakes' mean; 0: one batch
        refresh: int = 0  # take a new snapshot every k steps after from_step; 0: never

        def __post_init__(self) -> None:
            if (self.weight < 0 or self.from_step < 0 or self.interval < 1 or self.chunk < 1
                    or not 0 <= self.average < 1 or self.refresh < 0):
                raise ValueError(f"regularizers.frozen_feature_matching needs weight >= 0, "
                                 f"from_step >= 0, interval >= 1, chunk >= 1, 0 <= average "
                                 f"< 1 and refresh >= 0, got {self}")

    phases = ("G",)  # runs during G updates
    needs_real_grad = False

    def __init__(self, weight: float = 1.0, from_step: int = 0, interval: int = 1,
                 chunk: int = 1000, average: float = 0.0, refresh: int = 0) -> None:
        self.Options(weight, from_step, interval, chunk, average, refresh)  # validates
        self.weight, self.from_step, self.interval, self.chunk = (weight, from_step, interval,
                                                                  chunk)
        self.average, self.refresh = average, refresh
        self.avg: torch.Tensor | None = None  # running average of the fakes' mean (raw)
        self.avg_count = 0  # batches in it, for the bias correction
        self.frozen: nn.Module | None = None
        self.mu: torch.Tensor | None = None
        self.sd: torch.Tensor | None = None
        self.snapshot_step: int | None = None
        self._pending: dict | None = None  # a loaded snapshot, rebuilt at the next call
        self.real_x: torch.Tensor | None = None
        self.real_y: torch.Tensor | None = None

    def setup(self, trainer) -> None:
        """Called by the training loop: the real data the statistics are computed over."""
        self.real_x, self.real_y = trainer.real_x, trainer.real_y

    # -- the snapshot ------------------------------------------------------------------
    @torch.no_grad()
    def snapshot(self, D: nn.Module, step: int) -> None:
        """Freeze a copy of D and compute its features' mean and spread over the data."""
        if self.real_x is None:
            raise RuntimeError("frozen_feature_matching: setup(trainer) was not called, so "
                               "there is no real data to compute the feature statistics on")
        frozen = _frozen_copy(D)
        pack = getattr(frozen, "pack", 1)
        n = len(self.real_x) // pack * pack  # a packed D judges whole packs
        chunk = max(self.chunk // pack * pack, pack)
        total = total_sq = 0.0
        for start in range(0, n, chunk):
            x = self.real_x[start:min(start + chunk, n)].float()
            y = None if self.real_y is None else self.real_y[start:start + len(x)]
            f = frozen.score(x, y if frozen.conditional else None)["features"]
            f = f.flatten(1).double()
            total, total_sq = total + f.sum(0), total_sq + f.square().sum(0)
        rows = n // pack
        mean = total / rows
        var = (total_sq / rows - mean.square()).clamp_min(0.0) * rows / max(rows - 1, 1)
        self.frozen, self.snapshot_step = frozen, int(step)
        self.avg, self.avg_count = None, 0  # a new feature space: the average restarts
        self.mu = mean.float()
        # + 1e-3: a feature that never varies over the data (a dead unit) would divide by 0
        self.sd = var.sqrt().float() + 1e-3

    def __call__(self, ctx) -> torch.Tensor:
        if ctx.step < self.from_step:
            return ctx.fake.new_zeros(())
        if self.frozen is None:
            if self._pending is not None:
                self._restore(ctx.D)
            else:
                self.snapshot(ctx.D, ctx.step)
        if self.refresh and ctx.step >= self.snapshot_step + self.refresh:
            self.snapshot(ctx.D, ctx.step)
        c = ctx.fake_labels if self.frozen.conditional else None
        f = self.frozen.score(ctx.fake.float(), c)["features"].flatten(1)
        m = ((f - self.mu) / self.sd).mean(0)
        scale = self.weight * self.interval
        if not self.average:
            return scale * m.square().sum()
        b, d = self.average, m.detach()
        self.avg = (1 - b) * d if self.avg is None else b * self.avg + (1 - b) * d
        self.avg_count += 1
        a = self.avg / (1 - b ** self.avg_count)
        # value weight * |a|^2; gradient 2 * weight * a . d m (a is held constant)
        return scale * (a.square().sum() + 2 * (a * (m - d)).sum())

    # -- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        if self.frozen is None:
            return dict(self._pending) if self._pending is not None else {}
        state = {"D": self.frozen.state_dict(), "mu": self.mu, "sd": self.sd,
                 "step": self.snapshot_step}
        if self.avg is not None:
            state.update(avg=self.avg, avg_count=self.avg_count)
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore a saved snapshot; the frozen copy is rebuilt, from the run's own D as the
        architecture, at the next call."""
        self.frozen = self.mu = self.sd = self.snapshot_step = self.avg = None
        self.avg_count = 0
        self._pending = dict(state) if state else None
        if state:
            self.mu, self.sd, self.snapshot_step = state["mu"], state["sd"], int(state["step"])
            if "avg" in state:
                self.avg, self.avg_count = state["avg"], int(state["avg_count"])

    def _restore(self, D: nn.Module) -> None:
        frozen = _frozen_copy(D)
        frozen.load_state_dict(self._pending["D"])
        device = next(frozen.parameters()).device  # the checkpoint may load onto the CPU
        self.mu, self.sd = self.mu.to(device), self.sd.to(device)
        if self.avg is not None:
            self.avg = self.avg.to(device)
        self.frozen, self._pending = frozen, None


def _frozen_copy(D: nn.Module) -> nn.Module:
    """A copy of D in eval mode with no trainable parameters (gradients reach its input)."""
    return copy.deepcopy(D).eval().requires_grad_(False)
