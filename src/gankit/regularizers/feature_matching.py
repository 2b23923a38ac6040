"""Feature matching, Salimans et al. 2016 (section 3.1): G matches the mean of D's features.

weight * ||mean_i f(x_i) - mean_j f(G(z_j))||_2^2, f = D's penultimate features
(``D.score(x)["features"]``). In the G step the loop scores the latest real batch with the
same D that scores the fakes (after D's update), so both means live in one feature space;
the real features are detached, so the gradient reaches G only. The term is added
to G's adversarial loss, it does not replace it (the paper's G minimises feature matching
alone): both objectives act on G, the adversarial one with weight 1.

The squared distance of two batch means overestimates the squared distance of the true
means by tr(Cov_real)/B_real + tr(Cov_fake)/B_fake, and the fake part of that bias depends
on G: minimising it shrinks the spread of G's features, a pull towards less diversity that
grows as the batch shrinks. ``unbiased=True`` subtracts both terms (sample covariances with
B - 1), which makes the value an unbiased estimate of ||E f(x) - E f(G(z))||^2: the
linear-kernel MMD^2 estimator of Gretton et al. 2012, which can be negative.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.components import RegularizerBase
from gankit.registry import REGULARIZERS
from gankit.utils.checks import at_least


@REGULARIZERS.register("feature_matching", "G matches mean D features, Salimans et al. 2016")
class FeatureMatching(RegularizerBase):
    """Squared L2 distance between the batch means of D's features on real and fake data."""

    @dataclass(frozen=True)
    class Options:
        weight: float = 1.0  # multiplier of the squared distance, added to G's loss
        interval: int = 1  # k > 1: every k-th G step, scaled by k, in its own G step
        unbiased: bool = False  # subtract the batch-mean noise, tr(Cov)/B, of both batches

        def __post_init__(self) -> None:
            at_least("weight", self.weight, 0)
            at_least("interval", self.interval, 1)

    phases = ("G",)  # runs during G updates
    needs_real_features = True  # the loop scores the latest real batch with the G step's D

    def __call__(self, ctx) -> torch.Tensor:
        real_f, fake_f = _feature_pair(ctx)  # [B, F]
        value = (real_f.mean(0) - fake_f.mean(0)).pow(2).sum()
        o = self.options
        if o.unbiased:
            if min(len(real_f), len(fake_f)) < 2:
                raise ValueError(f"feature_matching.unbiased needs batches of at least 2, got "
                                 f"{len(real_f)} real and {len(fake_f)} fake; use a larger "
                                 f"train.batch_size or unbiased=false")
            value = value - _mean_noise(real_f) - _mean_noise(fake_f)
        return o.weight * o.interval * value


def _mean_noise(f: torch.Tensor) -> torch.Tensor:
    """tr(Cov) / B with the unbiased sample covariance: the expected ||mean - E f||^2."""
    # written out: torch's var over dim 0 of [B, F] is several times slower on CPU
    return (f - f.mean(0)).square().sum() / ((len(f) - 1) * len(f))


def _feature_pair(ctx) -> tuple[torch.Tensor, torch.Tensor]:
    """D's features of the latest real batch (detached) and of the fakes, as [B, F]."""
    real_f, fake_f = ctx.real_out.get("features"), ctx.fake_out.get("features")
    if real_f is None or fake_f is None:
        raise ValueError("feature_matching needs a discriminator whose score() returns "
                         "'features' for the real and the fake batch")
    return real_f.detach().flatten(1), fake_f.flatten(1)
