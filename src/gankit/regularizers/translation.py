"""G-phase terms of image-to-image translation, added to G's adversarial loss.

- ``reconstruction`` (pix2pix's L1, Isola et al. 2017 eq. 3, weight 100; SRResNet's MSE,
  Ledig et al. 2017 eq. 5): weight * mean |G(source) - target|^p, p = 1 (``l1``) or 2
  (``l2``), over every pixel of the batch. Needs paired data: the G step's targets are the
  batch its fakes were made from.
- ``cycle`` (CycleGAN, Zhu et al. 2017 eq. 2, weight 10): weight * (mean |G_BA(G_AB(a)) - a|
  + mean |G_AB(G_BA(b)) - b|), each mean over one domain's pixels. Needs two unpaired
  domains (``unpaired:`` data), whose G has ``reconstruct``.
- ``identity`` (CycleGAN sec. 5.2, weight 0.5 * the cycle's: 5): weight * the same sum for
  mean |G_AB(b) - b| and mean |G_BA(a) - a|: a generator fed an image of its output domain
  should leave it unchanged (keeps colours). Needs sources and targets of one shape.

Each runs in every G step (``interval`` 1) unless given a lazy interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.components import RegularizerBase
from gankit.registry import REGULARIZERS
from gankit.utils.checks import at_least, one_of


def _per_domain_l1(a: torch.Tensor, b: torch.Tensor, domains: int) -> torch.Tensor:
    """Sum over the stacked domains of each domain's mean absolute difference."""
    return sum(chunk.mean() for chunk in (a - b).abs().chunk(domains, dim=1))


def _needs(ctx, what: str, name: str, data: str) -> torch.Tensor:
    value = getattr(ctx, what)
    if value is None:
        raise ValueError(f"regularizers.{name} needs {data}; this run's data has none")
    return value


@REGULARIZERS.register("reconstruction", "L1/L2 between G's output and the paired target "
                                         "(pix2pix, SRResNet)")
class Reconstruction(RegularizerBase):
    """Pixel loss against the batch's targets."""

    @dataclass(frozen=True)
    class Options:
        weight: float = 100.0  # pix2pix's lambda
        norm: str = "l1"  # l1 (pix2pix) or l2 (SRResNet's MSE)
        interval: int = 1

        def __post_init__(self) -> None:
            at_least("weight", self.weight, 0)
            one_of("norm", self.norm, ("l1", "l2"))
            at_least("interval", self.interval, 1)

    phases = ("G",)

    def __call__(self, ctx) -> torch.Tensor:
        target = _needs(ctx, "real", "reconstruction", "paired targets (paired:, "
                                                       "edges2mnist, data.lr_scale)")
        diff = ctx.fake - target
        value = diff.abs().mean() if self.options.norm == "l1" else diff.pow(2).mean()
        return self.options.weight * self.options.interval * value


@REGULARIZERS.register("cycle", "CycleGAN cycle consistency: G_BA(G_AB(a)) = a and back "
                                "(Zhu et al. 2017)")
class Cycle(RegularizerBase):
    """L1 between each source and its round trip through both generators."""

    needs_source = True

    @dataclass(frozen=True)
    class Options:
        weight: float = 10.0  # CycleGAN's lambda
        interval: int = 1

        def __post_init__(self) -> None:
            at_least("weight", self.weight, 0)
            at_least("interval", self.interval, 1)

    phases = ("G",)

    def __call__(self, ctx) -> torch.Tensor:
        source = _needs(ctx, "source", "cycle", "two unpaired domains (unpaired:A,B)")
        if not hasattr(ctx.G, "reconstruct"):
            raise ValueError("regularizers.cycle needs two generators, one per domain: train "
                             "on unpaired:A,B data")
        back = ctx.G.reconstruct(ctx.fake)
        o = self.options
        return o.weight * o.interval * _per_domain_l1(back, source, 2)


@REGULARIZERS.register("identity", "CycleGAN identity: a generator leaves images of its "
                                   "output domain unchanged (Zhu et al. 2017)")
class Identity(RegularizerBase):
    """L1 between G(target) and the target, per domain."""

    needs_source = True

    @dataclass(frozen=True)
    class Options:
        weight: float = 5.0  # CycleGAN: 0.5 * the cycle weight
        interval: int = 1

        def __post_init__(self) -> None:
            at_least("weight", self.weight, 0)
            at_least("interval", self.interval, 1)

    phases = ("G",)

    def __call__(self, ctx) -> torch.Tensor:
        target = _needs(ctx, "real", "identity", "targets (translation data)")
        source = _needs(ctx, "source", "identity", "sources (translation data)")
        if source.shape != target.shape:
            raise ValueError(f"regularizers.identity feeds targets to G, which takes sources "
                             f"of shape {tuple(source.shape[1:])}, not "
                             f"{tuple(target.shape[1:])}; remove regularizers.identity")
        domains = 2 if hasattr(ctx.G, "reconstruct") else 1
        o = self.options
        return o.weight * o.interval * _per_domain_l1(ctx.G(target), target, domains)
