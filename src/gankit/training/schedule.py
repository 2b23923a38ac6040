"""The learning-rate schedule: a pure function of the generator step, so resume needs no
scheduler state, and what extending a run (``--resume RUN --steps N'``) does to it.

``train.lr_decay=linear`` holds both rates at their configured values for the first
``lr_decay_start * steps`` updates, then lowers them along a straight line that would reach
0 at ``train.steps`` (the last update runs at 1 / (decayed steps) of the rate).

Extending a run changes ``train.steps``. The rate never jumps up because of it: a run whose
decay has not begun yet is scheduled anew on the new total; a run whose decay has begun
keeps its current rate at the step it resumes from (the last update's rate, if the old
schedule has run out) and falls on a straight line from there to 0 at the new total. The
schedule a run follows is kept in its checkpoints (``extra["lr_schedule"]``): ``total``,
the ``train.steps`` it was made for, and ``anchor``, None or ``[step, factor]``.
"""

from __future__ import annotations


def lr_factor(step: int, train, schedule: dict | None = None) -> float:
    """The multiplier of the configured rates for the update made at 0-based ``step``.

    Args:
        step: generator steps done before this update.
        train: the run's ``TrainConfig`` (``lr_decay``, ``lr_decay_start``, ``steps``).
        schedule: the run's ``extra["lr_schedule"]``; None schedules on ``train.steps``.
    """
    if train.lr_decay == "none":
        return 1.0
    total = train.steps
    anchor = schedule.get("anchor") if schedule else None
    if anchor is not None:
        start, factor = int(anchor[0]), float(anchor[1])
        if step < start:
            return factor
        return max(0.0, factor * (total - step) / (total - start))
    start = int(train.lr_decay_start * total)
    if step < start:
        return 1.0
    return max(0.0, (total - step) / (total - start))


def schedule_for(train, step: int, previous: dict | None) -> dict:
    """The schedule a run at ``step`` follows under ``train`` (see the module docstring).

    ``previous`` is the schedule the run has followed so far (None for a fresh run).
    """
    if previous is None or int(previous["total"]) == train.steps or train.lr_decay == "none":
        return {"total": train.steps, "anchor": previous.get("anchor") if previous else None}
    old_total = int(previous["total"])
    old = _Train(train.lr_decay, train.lr_decay_start, old_total)
    factor = lr_factor(min(step, old_total - 1), old, previous)
    fresh = {"total": train.steps, "anchor": None}
    if factor == 1.0 and step <= int(train.lr_decay_start * train.steps):
        return fresh  # the decay has not begun: the new total's fraction applies
    return {"total": train.steps, "anchor": [step, factor]}


class _Train:
    """The three fields of a TrainConfig that `lr_factor` reads."""

    def __init__(self, lr_decay: str, lr_decay_start: float, steps: int) -> None:
        self.lr_decay, self.lr_decay_start, self.steps = lr_decay, lr_decay_start, steps


def set_learning_rates(state) -> None:
    """Both optimisers' rates for the coming update: the configured rate (as its optimiser
    builds it: `OptimizerFactory.learning_rate`) times `lr_factor`
    times the scale that divergence rollbacks left (``extra["lr_scale"]``)."""
    from gankit.registry import OPTIMIZERS

    factor = lr_factor(state.step, state.config.train, state.extra["lr_schedule"])
    factor *= state.extra.get("lr_scale", 1.0)
    for opt, comp in ((state.g_opt, state.config.g_optimizer),
                      (state.d_opt, state.config.d_optimizer)):
        base = OPTIMIZERS.get(comp.name)(**comp.options).learning_rate()  # e.g. lazy-rescaled
        for group in opt.param_groups:
            group["lr"] = base * factor
