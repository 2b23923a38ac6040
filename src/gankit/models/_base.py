"""What every generator and discriminator provides to the loop.

A discriminator computes ``score(x, c) -> {"logits": [N], "features": [N, F], ...}`` in one
pass: the loop and the components that need more than logits (feature matching, ACGAN's
class head) read the dictionary; ``forward`` returns the logits alone, so a D is also a
plain function of its input (for penalties). ``conditional`` tells the loop to feed labels.

Every network class also says which data shapes it can be built for (`supports`) and
which small options build a fast instance (``test_options``): the contract tests read
them, so a new network is tested without editing a table keyed by its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from gankit.components import make_options
from gankit.layers.conditioning import D_MODES, G_MODES
from gankit.layers.output import output_bounds
from gankit.utils.checks import at_least, one_of


def check_generator_options(o) -> None:
    """The range checks every generator's Options shares (conditioning, embed_dim,
    output_scale)."""
    one_of("conditioning", o.conditioning, G_MODES)
    at_least("embed_dim", o.embed_dim, 0, " (0 = one-hot)")
    output_bounds(o.output_scale)


def check_discriminator_options(o) -> None:
    """The range checks every discriminator's Options shares (conditioning, minibatch
    layers, embed_dim)."""
    one_of("conditioning", o.conditioning, D_MODES)
    at_least("minibatch_discrimination", o.minibatch_discrimination, 0)
    at_least("minibatch_stddev", o.minibatch_stddev, 0)
    at_least("embed_dim", o.embed_dim, 0, " (0 = one-hot)")


class ShapeSupport:
    """The facts the contract tests read (defaults: every shape, default options, every
    parameter in use)."""

    test_options: ClassVar[dict] = {}  # small options that build a fast instance

    @classmethod
    def supports(cls, shape: tuple) -> bool:
        """True when the network can be built for samples of ``shape`` ([C, H, W] or [D])."""
        return True

    def idle_parameters(self) -> set[str]:
        """Names (as in ``named_parameters``) of the parameters that get no gradient in the
        network's current state: a progressively grown network's other resolutions
        (`gankit.models.pggan`), a frozen part (`gankit.models.anomaly`). None by default."""
        return set()


@dataclass(frozen=True)
class EqualizedDiscriminatorOptions:
    """The options of the equalised-learning-rate discriminators (stylegan2, pggan)."""

    width: int = 32  # channels at the image side; doubled per halving up to max_channels
    max_channels: int = 256  # channel cap (the paper's 512)
    minibatch_stddev: int = 4  # group size of the minibatch stddev channel; 0 = none
    spectral_norm: bool = False  # not in the paper: spectral norm instead of equalised lr
    conditioning: str = "none"  # none, concat, projection or acgan
    embed_dim: int = 0  # concat: channels of a learned label embedding; 0 = one-hot maps

    def __post_init__(self) -> None:
        at_least("width", self.width, 1)
        at_least("max_channels", self.max_channels, 1)
        at_least("minibatch_stddev", self.minibatch_stddev, 0, " (0 = none)")
        one_of("conditioning", self.conditioning, D_MODES)
        at_least("embed_dim", self.embed_dim, 0, " (0 = one-hot)")


@dataclass(frozen=True)
class UnconditionalOptions:
    """The Generator contract's fields for a generator without class conditioning and with
    its own output layer (translators, anomaly and table models): they accept only these
    values."""

    conditioning: str = "none"
    embed_dim: int = 0
    output_scale: float = 1.0

    def __post_init__(self) -> None:
        one_of("conditioning", self.conditioning, ("none",))
        at_least("embed_dim", self.embed_dim, 0)
        if self.output_scale != 1.0:
            raise ValueError(f"output_scale must be 1 for this generator (it has its own "
                             f"output layer), got {self.output_scale}")


def side_plan(resolution: int) -> tuple[int, int] | None:
    """(start side, number of 2x stages) that reach an image side 4*2^k or 7*2^k (k >= 1),
    or None for any other side: the layout of the dcgan and stylegan2 families."""
    for start in (4, 7):
        side, stages = start, 0
        while side < resolution:
            side, stages = side * 2, stages + 1
        if side == resolution and stages >= 1:
            return start, stages
    return None


def registered_name(net: nn.Module, registry) -> str:
    """The name ``net``'s class is registered under in ``registry`` (else its class name)."""
    for name in registry.names():
        if registry.get(name) is type(net):
            return name
    return type(net).__name__


class Generator(ShapeSupport, nn.Module):
    """Base of registered generators: ``forward(z [N, z_dim], c [N] | None) -> x``; the
    constructor's ``options`` (or keyword values) become ``self.options``."""

    conditional: bool = False  # True when the output depends on class labels c
    supports_truncation: ClassVar[bool] = False  # `truncated` gives samples (not an error)

    def __init__(self, options=None, values: dict | None = None) -> None:
        super().__init__()
        self.options = make_options(type(self), options, values)

    @classmethod
    def conditioning_modes(cls) -> list[str]:
        """The conditioning modes this family's Options accept (with its ``test_options``)."""
        accepted = []
        for mode in G_MODES:
            try:
                cls.Options(**cls.test_options, conditioning=mode)
            except ValueError:
                continue
            accepted.append(mode)
        return accepted

    def truncated(self, z: torch.Tensor, c: torch.Tensor | None, psi: float) -> torch.Tensor:
        """Samples with the truncation trick at strength ``psi`` (``gankit sample
        --truncation``): x [N, ...] from z [N, z_dim] and labels c [N] (or None).

        Raises:
            ValueError: this generator has no truncation trick (the default).
        """
        from gankit.registry import GENERATORS

        raise ValueError(f"--truncation: this generator ({registered_name(self, GENERATORS)}) "
                         "has no truncation trick; --truncation applies to biggan and "
                         "stylegan2 runs")


class Discriminator(ShapeSupport, nn.Module):
    """Base of registered discriminators; ``options`` as for `Generator` (none for a
    wrapper such as `PackedDiscriminator`)."""

    conditional: bool = False  # True when the score depends on class labels c

    def __init__(self, options=None, values: dict | None = None) -> None:
        super().__init__()
        has_options = hasattr(type(self), "Options")
        self.options = make_options(type(self), options, values) if has_options else None

    def score(self, x: torch.Tensor, c: torch.Tensor | None = None) -> dict:
        """The common layout: ``cond.attach`` -> ``body`` (features) -> optional minibatch
        layers -> ``head`` (one logit), then ``cond.finish`` (projection / class head)."""
        features = self.body(self.cond.attach(x, c))
        logits = self.head(self.batch_layers(features)).squeeze(1)
        return self.cond.finish({"logits": logits, "features": features}, c)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.score(x, c)["logits"]


class PackedDiscriminator(Discriminator):
    """PacGAN (Lin et al. 2018): D judges ``pack`` samples at once, concatenated along the
    channel (images) or feature (points) axis: [N, C, H, W] -> [N / m, m * C, H, W]."""

    def __init__(self, inner: Discriminator, pack: int) -> None:
        super().__init__()
        if inner.conditional:
            raise ValueError("pack > 1 cannot be combined with a conditional discriminator")
        self.inner, self.pack = inner, pack

    @staticmethod
    def packed_shape(shape: tuple[int, ...], pack: int) -> tuple[int, ...]:
        return (shape[0] * pack, *shape[1:])

    def score(self, x: torch.Tensor, c: torch.Tensor | None = None) -> dict:
        n = x.shape[0]
        if n % self.pack:
            raise ValueError(f"a packed D needs batches divisible by pack={self.pack}, got {n}")
        # sample i of each pack sits in channels [i*C, (i+1)*C): group consecutive samples
        packed = x.reshape(n // self.pack, self.pack * x.shape[1], *x.shape[2:])
        return self.inner.score(packed)
