"""The precision of every update the loop makes (the forward passes' autocast), and its
backward pass and optimiser step, in one place: dynamic loss scaling for float16 (one
``torch.amp.GradScaler`` per optimiser, Micikevicius et al. 2018) and gradient averaging
across data-parallel processes.

Gradients are unscaled right after the backward pass, so what the loop logs (gradient
norms) and what the processes average are true gradients. An fp16 update whose gradients
hold an inf or a NaN is skipped by the scaler, which then halves its scale; the skips are
counted per phase and logged as ``precision/skipped_D`` and ``precision/skipped_G``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

from gankit.utils.precision import LOW_PRECISION, autocast, check_bf16


class Updates:
    """Autocast, backward and step for the phases ``"D"`` and ``"G"``.

    Args:
        precision: ``train.precision``; ``"fp16"`` turns loss scaling on.
        device: the run's device (the scalers live there).
        sync: called with a module after its backward pass and before its step, e.g. to
            average gradients over processes (`gankit.utils.distributed`); None: nothing.
    """

    PHASES = ("D", "G")

    def __init__(self, precision: str, device: torch.device,
                 sync: Callable[[torch.nn.Module], None] | None = None) -> None:
        if precision == "bf16":
            check_bf16(device, "train.precision")
        self.low_precision = precision != "fp32"
        self.autocast = partial(autocast, device, LOW_PRECISION[precision])  # forward passes
        self.scalers = {p: torch.amp.GradScaler(device.type) for p in self.PHASES} \
            if precision == "fp16" else {}
        self.sync = sync
        self.skipped = dict.fromkeys(self.PHASES, 0)

    def backward(self, loss: torch.Tensor, opt: torch.optim.Optimizer, phase: str) -> None:
        """``loss.backward()``, scaled under fp16 and unscaled again in ``opt``'s gradients."""
        scaler = self.scalers.get(phase)
        if scaler is None:
            loss.backward()
            return
        scaler.scale(loss.float()).backward()
        scaler.unscale_(opt)

    def step(self, opt: torch.optim.Optimizer, module: torch.nn.Module, phase: str) -> None:
        """Synchronise ``module``'s gradients, then step ``opt`` (under fp16: unless they
        overflowed, which is counted)."""
        if self.sync is not None:
            self.sync(module)
        scaler = self.scalers.get(phase)
        if scaler is None:
            opt.step()
            return
        before = scaler.get_scale()
        scaler.step(opt)
        scaler.update()
        if scaler.get_scale() < before:  # the scale only falls when the step was skipped
            self.skipped[phase] += 1

    def log_values(self) -> dict[str, float]:
        """The skip counters (fp16 only) for the log record."""
        return {f"precision/skipped_{p}": float(n) for p, n in self.skipped.items()} \
            if self.scalers else {}

    def state_dict(self) -> dict:
        return {"scalers": {p: s.state_dict() for p, s in self.scalers.items()},
                "skipped": dict(self.skipped)}

    def load_state_dict(self, state: dict | None) -> None:
        """Restore a `state_dict`; None (a checkpoint from before fp16) keeps fresh scalers."""
        if not state:
            return
        for p, s in state.get("scalers", {}).items():
            if p in self.scalers:
                self.scalers[p].load_state_dict(s)
        self.skipped.update(state.get("skipped", {}))
