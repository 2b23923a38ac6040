"""What training does when something goes wrong: a stop signal, or a loss that is no
longer finite.

- **Signals.** SIGINT (Ctrl-C) and SIGTERM (schedulers, ``docker stop``) ask the loop to
  stop after the step under way: it writes a checkpoint of that step and raises
  `TrainingInterrupted`, so ``--resume`` continues exactly where the run stopped. A second
  SIGINT stops at once, without a checkpoint (the last one on disk is intact).
- **Divergence** (``train.on_nonfinite``). A NaN or infinite loss never reaches a
  checkpoint. Nor does a NaN or infinite weight: a state found non-finite when a checkpoint
  is due counts as diverged too. With ``rollback`` (the default) the state returns to the
  last good snapshot (taken at the start and at every checkpoint), both learning rates are
  multiplied by ``train.nonfinite_lr_factor``, and training goes on; after
  ``train.nonfinite_retries`` rollbacks, or at once with ``stop``, training raises
  `TrainingDiverged`.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

import torch

from gankit.training.checkpoint import NonFiniteStateError, nonfinite_tensor

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(Exception):
    """A stop signal ended training; ``checkpoint`` holds the step it stopped at (None
    when the run has no directory)."""

    def __init__(self, signum: int, step: int, checkpoint) -> None:
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        where = f"saved {checkpoint}" if checkpoint is not None else "no run directory"
        super().__init__(f"interrupted by {signal.Signals(signum).name} at step {step}; "
                         f"{where}")


class TrainingDiverged(RuntimeError):
    """A loss stayed non-finite through every allowed rollback."""


class StopRequest:
    """Set by the signal handlers; the loop polls ``signum`` once per step."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def handle(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # asked twice: stop now
        self.signum = signum


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Route SIGINT and SIGTERM to a `StopRequest` while the block runs (main thread only:
    elsewhere signals cannot be caught and the request stays empty)."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {s: signal.signal(s, request.handle) for s in SIGNALS}
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class DivergenceGuard:
    """Keeps the last good state in memory and rolls back to it (see the module docstring).

    Args:
        train: the run's ``TrainConfig`` (``on_nonfinite``, ``nonfinite_retries``,
            ``nonfinite_lr_factor``).
    """

    def __init__(self, train) -> None:
        self.train = train
        self._good: dict | None = None  # a state dict, its tensors copied to the CPU
        self.good_step: int | None = None

    def snapshot(self, state, strict: bool = False) -> str | None:
        """Keep ``state`` as the rollback point; when a tensor of it is NaN or infinite,
        keep the previous one and return that tensor's name (raise with ``strict``).

        Raises:
            NonFiniteStateError: ``strict`` and a tensor of the state is not finite.
        """
        full = state.state_dict()
        bad = nonfinite_tensor(full)
        if bad is not None and strict:
            raise NonFiniteStateError(f"step {state.step}: {bad} holds non-finite values "
                                      "(NaN or inf); not saved", tensor=bad)
        if bad is not None:
            return bad
        self._good, self.good_step = _cpu_copy(full), state.step
        return None

    def rollback(self, state, reason: str) -> dict:
        """Restore the snapshot with lowered rates; returns the log record of the event.

        Raises:
            TrainingDiverged: ``on_nonfinite=stop``, no snapshot, or no retries left.
        """
        t = self.train
        retries = int(state.extra.get("nonfinite_retries", 0))
        scale = float(state.extra.get("lr_scale", 1.0))
        failed = state.step
        if t.on_nonfinite == "stop" or self._good is None or retries >= t.nonfinite_retries:
            why = ("train.on_nonfinite=stop" if t.on_nonfinite == "stop" else
                   f"{retries} rollbacks already (train.nonfinite_retries)")
            last = f"the last good state is step {self.good_step}" if self._good else \
                "no good state was kept"
            raise TrainingDiverged(
                f"training diverged at step {failed} ({reason}); {why}, so it stops: {last}. "
                f"Lower the learning rates (--set g_optimizer.lr=... --set "
                f"d_optimizer.lr=...) or add a stabiliser (gankit doctor RUN lists them)")
        # a fresh copy: optimisers keep the tensors they load, and would change the snapshot
        state.load_state_dict(_cpu_copy(self._good))
        scale *= t.nonfinite_lr_factor
        state.extra.update(nonfinite_retries=retries + 1, lr_scale=scale)
        return {"step": state.step, "event": "rollback", "failed_step": failed,
                "reason": reason, "lr_scale": scale}

    def recover(self, trainer, bad: str, bar=None) -> None:
        """Roll ``trainer``'s state back (`rollback`), reset the step's own records, apply
        its strategies again, drop the failed attempt's log records, log the event, warn and
        move the progress ``bar`` back.

        Raises:
            TrainingDiverged: as `rollback`.
        """
        from gankit.training.health import HealthMonitor

        trainer.last_real_view, trainer.last, trainer.step_losses = None, {}, {}
        event = self.rollback(trainer.state, bad)
        for strategy in trainer.strategies:
            strategy.apply(trainer)
        trainer.out.rewind(trainer.state.step)
        trainer.out.log(event)
        if trainer.health is not None:  # its rules replay the log up to the restored step
            trainer.health = HealthMonitor(trainer, trainer.state.config.health)
        trainer.out.warn(f"non-finite values at step {event['failed_step']} ({bad}); rolled "
                         f"back to step {event['step']} with the learning rates scaled by "
                         f"{event['lr_scale']:g}")
        if bar is not None:
            bar.n = trainer.state.step
            bar.refresh()


def _cpu_copy(tree):
    """A copy of a state dict whose tensors are copied to the CPU (GPU memory is not
    doubled by the rollback point)."""
    if torch.is_tensor(tree):
        return tree.detach().to("cpu", copy=True)
    if isinstance(tree, dict):
        return {k: _cpu_copy(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_cpu_copy(v) for v in tree)
    return tree
