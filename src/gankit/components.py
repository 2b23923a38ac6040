"""What the loop calls on each kind of pluggable component, as ``typing.Protocol``\\ s, and the
small bases that give a component its options and its no-op defaults.

A component declares its options once, in a frozen dataclass ``Options`` whose
``__post_init__`` checks their ranges (`gankit.utils.checks`). Its constructor takes an
``Options`` or the keyword values of one (``R1(gamma=1)`` is ``R1(R1.Options(gamma=1))``)
and keeps it as ``self.options``. The config layer builds the same ``Options`` from
``--set`` values, so a bad value fails before any work, naming its key.

Networks take their data-dependent arguments (shapes, classes) beside their options; see
`gankit.models._base`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import nn


def make_options(cls: type, options: Any = None, values: dict | None = None) -> Any:
    """``options`` if given (an instance of ``cls.Options``), else ``cls.Options(**values)``."""
    if options is not None:
        if values:
            raise TypeError(f"{cls.__name__}: pass an Options or keyword values, not both")
        if not isinstance(options, cls.Options):
            raise TypeError(f"{cls.__name__}: expected {cls.__name__}.Options, got "
                            f"{type(options).__name__}")
        return options
    return cls.Options(**(values or {}))


class Configurable:
    """Base of components with ``Options``: ``Component(options)`` or ``Component(**values)``."""

    Options: ClassVar[type]

    def __init__(self, options: Any = None, /, **values: Any) -> None:
        self.options = make_options(type(self), options, values)


# -- what the loop calls --------------------------------------------------------------------
@runtime_checkable
class GeneratorNet(Protocol):
    """``G(z [N, z_dim], c [N] | None) -> x [N, ...]``; ``conditional``: it takes labels."""

    conditional: bool

    def __call__(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor: ...


@runtime_checkable
class DiscriminatorNet(Protocol):
    """``D.score(x, c) -> {"logits": [N'], "features": [N', F], ...}`` in one pass (N' = N /
    pack); ``D(x, c)`` is the logits alone."""

    conditional: bool

    def score(self, x: torch.Tensor, c: torch.Tensor | None = None) -> dict: ...

    def __call__(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor: ...


@runtime_checkable
class Loss(Protocol):
    """Two pure functions over logits, and what D's outputs mean."""

    real_threshold: float | None  # D says "real" above this; None: no such threshold
    saturates: bool  # G's gradient vanishes or destabilises when D is confident

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor: ...

    def g_loss(self, fake_logits: torch.Tensor, real_logits=None) -> torch.Tensor: ...


@runtime_checkable
class Regularizer(Protocol):
    """A term added to D's or G's loss, computed from a `gankit.training.context.StepContext`."""

    phases: tuple[str, ...]  # "D" and/or "G": the updates it joins
    interval: int  # it runs on every interval-th D update / G step, scaled by interval
    needs_real_grad: bool  # the loop makes the real batch require grad (R1)
    needs_real_features: bool  # the loop scores the real batch in the G step too

    def __call__(self, ctx) -> torch.Tensor: ...

    def state_dict(self) -> dict: ...  # what it keeps across steps (a running mean), saved

    def load_state_dict(self, state: dict) -> None: ...


@runtime_checkable
class Hook(Protocol):
    """Called around updates; may own state (G_ema) that is checkpointed."""

    def setup(self, state) -> None: ...

    def constrain_d(self, D: nn.Module) -> None: ...

    def prepare_real(self, state, real: torch.Tensor) -> torch.Tensor: ...

    def prepare_fake(self, state, fake: torch.Tensor) -> torch.Tensor: ...

    def after_d_step(self, state, step: int) -> None: ...

    def after_g_step(self, state, step: int) -> None: ...

    def before_sampling(self, state) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@runtime_checkable
class Augmentation(Protocol):
    """``aug(x, step, generator) -> x'``, applied alike to every input of D."""

    def __call__(self, x: torch.Tensor, step: int, generator: torch.Generator
                 ) -> torch.Tensor: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


# -- bases with the defaults ------------------------------------------------------------------
class LossBase(Configurable):
    """A loss without options by default; logits with a 0 threshold."""

    real_threshold: float | None = 0.0
    saturates: bool = False
    g_needs_real: bool = False  # g_loss takes D's logits of the latest real batch too

    def __init__(self, options: Any = None, /, **values: Any) -> None:
        if hasattr(type(self), "Options"):
            super().__init__(options, **values)


@dataclass(frozen=True)
class TermOptions:
    """The options every weighted loss term shares (subclass Options add theirs and may
    change the defaults)."""

    weight: float = 1.0  # multiplier of the term
    interval: int = 1  # k > 1: every k-th update, scaled by k, in its own optimiser step

    def __post_init__(self) -> None:
        from gankit.utils.checks import at_least

        at_least("weight", self.weight, 0)
        at_least("interval", self.interval, 1, " (every k-th update)")


class RegularizerBase(Configurable):
    """Defaults: no real-batch gradient or features; ``interval`` from the options; no
    state."""

    phases: ClassVar[tuple[str, ...]] = ()
    needs_real_grad: ClassVar[bool] = False
    needs_real_features: ClassVar[bool] = False
    generator: ClassVar[str | None] = None  # the one generator it works with (None: any)
    needs_source: ClassVar[bool] = False  # reads ctx.source: translation data only

    @property
    def interval(self) -> int:
        return self.options.interval

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class HookBase(Configurable):
    """Every hook method as a no-op, and no state."""

    def setup(self, state) -> None:
        pass

    def constrain_d(self, D: nn.Module) -> None:
        pass

    def prepare_real(self, state, real: torch.Tensor) -> torch.Tensor:
        """The real batch as D should see it (before augmentations), called at the start of
        every D update with the batch just drawn; unchanged by default."""
        return real

    def prepare_fake(self, state, fake: torch.Tensor) -> torch.Tensor:
        """The fakes D is trained on, called in every main D update with G's fresh batch
        (detached); unchanged by default (CycleGAN's image pool replaces some)."""
        return fake

    def after_d_step(self, state, step: int) -> None:
        pass

    def after_g_step(self, state, step: int) -> None:
        pass

    def before_sampling(self, state) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class AugmentationBase(Configurable):
    """Stateless by default: what it draws comes from the run's generator."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class OptimizerFactory(Configurable):
    """Builds a ``torch.optim.Optimizer`` over parameters from its options."""

    def build(self, params) -> torch.optim.Optimizer:
        raise NotImplementedError

    def learning_rate(self) -> float:
        """The rate ``build`` gives the optimiser (the loop's schedule scales this one)."""
        return self.options.lr
