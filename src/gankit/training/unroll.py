"""Unrolled GAN, Metz et al. 2017: G is updated against a copy of D advanced k steps.

The copy takes its k updates on its own deterministic stream of real batches (never the
main stream's) and on fresh fakes; the real D, its optimiser state and G's BatchNorm
statistics are left as they were. ``train.unrolled_order`` chooses G's gradient:

- ``2`` (the paper's): G's loss is f(theta_G, theta_D^k(theta_G, theta_D)) and its gradient
  flows through the k updates, which depend on G through their fakes (the paper's second
  term, eq. 4). The updates are the D optimiser's own rule (Adam or RMSprop, with its
  current moments), written as differentiable tensor operations, on a functional view of D
  (``torch.func.functional_call``), so gradients of gradients are taken: each unrolled step
  costs about three D passes and keeps its graph until G's update.
- ``1`` (first order): the copy is a plain module updated by a copy of D's optimiser, and
  G's gradient stops at the copy's weights: G is updated against a D that looked k steps
  ahead, without the term that anticipates D's response.

D constraints (``constrain_d``, e.g. weight clipping) hold for the first-order copy; the
second-order view refuses them (``hooks.weight_clip`` with ``unrolled_order=2`` fails
validation). The gradient penalty interpolates detached fakes, so under second order its
dependence on G is not differentiated (the loss terms are).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call

UNROLL_OFFSET = 1 << 40  # data steps of the unrolled critic never meet the main stream
_TINY = 1e-30  # inside sqrt: a zero second moment would give an infinite derivative


class Unroller:
    """Builds the critic of each G step (see the module docstring).

    Args:
        steps: k, the D updates the critic looks ahead.
        order: 1 (first-order) or 2 (gradient through the updates, Metz et al.).
    """

    def __init__(self, steps: int, order: int = 2) -> None:
        self.steps, self.order = steps, order

    def critic(self, trainer) -> tuple:
        """(critic, (real view, labels) of its last real batch) for the coming G step."""
        if self.order == 2:  # its fakes update copies of G's BatchNorm statistics
            return self._second_order(trainer)
        s = trainer.state
        g_buffers = [b.clone() for b in s.G.buffers()]
        try:
            return self._first_order(trainer)
        finally:
            with torch.no_grad():  # the unrolled fakes leave G's BatchNorm statistics
                for b, saved in zip(s.G.buffers(), g_buffers):
                    b.copy_(saved)

    def _data_step(self, step: int, j: int) -> int:
        return UNROLL_OFFSET + step * self.steps + j

    def _first_order(self, trainer) -> tuple:
        s = trainer.state
        D = copy.deepcopy(s.D)
        opt = type(s.d_opt)(D.parameters(), **s.d_opt.defaults)
        opt.load_state_dict(copy.deepcopy(s.d_opt.state_dict()))
        real_view = None
        for j in range(self.steps):
            real_view = trainer.d_update(D, opt, self._data_step(s.step, j), j, main=False)
        return D, real_view

    def _second_order(self, trainer) -> tuple:
        s = trainer.state
        names = [n for n, _ in s.D.named_parameters()]
        params = [p.detach().requires_grad_(True) for p in s.D.parameters()]
        rules = optimizer_rules(s.d_opt)
        buffers = {n: b.clone() for n, b in s.D.named_buffers()}
        real_view = None
        for j in range(self.steps):
            view = FunctionalD(s.D, dict(zip(names, params)), buffers)
            loss, _, _, real_view = trainer.d_objective(view, self._data_step(s.step, j), j,
                                                        g_grad=True)
            grads = torch.autograd.grad(loss, params, create_graph=True)
            params = [rule.step(p, g) for rule, p, g in zip(rules, params, grads)]
        return FunctionalD(s.D, dict(zip(names, params)), buffers), real_view


class _Score(nn.Module):
    """Wraps D so that `functional_call` runs ``D.score`` (not just its logits)."""

    def __init__(self, D: nn.Module) -> None:
        super().__init__()
        self.D = D

    def forward(self, x, c=None):
        return self.D.score(x, c)


class FunctionalD:
    """D with its parameters replaced by given tensors (which may depend on G): ``score``
    and ``__call__`` as a D module's."""

    def __init__(self, D: nn.Module, params: dict, buffers: dict) -> None:
        self.module, self.conditional = _Score(D), D.conditional
        self.tensors = {f"D.{k}": v for k, v in {**params, **buffers}.items()}

    def score(self, x: torch.Tensor, c: torch.Tensor | None = None) -> dict:
        return functional_call(self.module, self.tensors, (x, c))

    def __call__(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.score(x, c)["logits"]

    def requires_grad_(self, flag: bool = True) -> FunctionalD:
        return self  # its tensors carry G's graph; the real D is not touched

    def modules(self):
        return self.module.D.modules()


class _Rule:
    """One parameter's differentiable optimiser update, from the optimiser's current state."""

    def __init__(self, group: dict, state: dict) -> None:
        self.group = group
        self.state = {k: (v.detach().clone() if torch.is_tensor(v) else v)
                      for k, v in state.items()}


class _Adam(_Rule):
    def step(self, p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        (b1, b2), lr, eps, wd = (self.group[k] for k in ("betas", "lr", "eps", "weight_decay"))
        if wd:
            g = g + wd * p
        st = self.state
        t = float(st.get("step", 0)) + 1
        m = b1 * st.get("exp_avg", torch.zeros_like(p)) + (1 - b1) * g
        v = b2 * st.get("exp_avg_sq", torch.zeros_like(p)) + (1 - b2) * g * g
        self.state = {"step": t, "exp_avg": m, "exp_avg_sq": v}
        return p - lr * (m / (1 - b1 ** t)) / (torch.sqrt(v / (1 - b2 ** t) + _TINY) + eps)


class _RMSprop(_Rule):
    def step(self, p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        alpha, lr, eps, wd, mu = (self.group[k] for k in ("alpha", "lr", "eps",
                                                          "weight_decay", "momentum"))
        if wd:
            g = g + wd * p
        st = self.state
        v = alpha * st.get("square_avg", torch.zeros_like(p)) + (1 - alpha) * g * g
        update = g / (torch.sqrt(v + _TINY) + eps)
        new = {"square_avg": v}
        if mu:
            update = mu * st.get("momentum_buffer", torch.zeros_like(p)) + update
            new["momentum_buffer"] = update
        self.state = new
        return p - lr * update


def optimizer_rules(opt: torch.optim.Optimizer) -> list[_Rule]:
    """Differentiable update rules, one per parameter of ``opt`` in order.

    Raises:
        ValueError: an optimiser (or option) with no differentiable rule here.
    """
    rules: list[_Rule] = []
    for group in opt.param_groups:
        for p in group["params"]:
            state = opt.state.get(p, {})
            if isinstance(opt, torch.optim.Adam) and not group.get("amsgrad", False):
                rules.append(_Adam(group, state))
            elif isinstance(opt, torch.optim.RMSprop) and not group.get("centered", False):
                rules.append(_RMSprop(group, state))
            else:
                raise ValueError(f"train.unrolled_order=2 differentiates D's optimiser "
                                 f"updates, which gankit does for adam and rmsprop only; got "
                                 f"{type(opt).__name__}: use --set train.unrolled_order=1")
    return rules
