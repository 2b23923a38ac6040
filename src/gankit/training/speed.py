"""Speed and repeatability switches of a training run: ``train.compile`` (torch.compile),
``train.channels_last`` (channels-last memory format) and ``train.deterministic``
(PyTorch's deterministic algorithms).

Compilation replaces the entry point the loop calls, G's ``forward`` and D's ``score``, by a
compiled version of the class's function bound to the instance. The weights, their names
in ``state_dict`` and checkpoints are untouched, and a deep copy (the EMA generator, the
unrolled critic) binds the copy, not the original. D stays eager when a D regulariser
differentiates D's gradient (R1, gradient penalty): torch.compile has no double backward.
"""

from __future__ import annotations

import contextlib
import functools
import os

import torch


def _compile_method(module: torch.nn.Module, name: str) -> None:
    """Make ``module.NAME`` a torch.compile'd version of its class's function, bound to
    ``module`` through a partial (which `copy.deepcopy` rebinds to the copy)."""
    compiled = torch.compile(getattr(type(module), name))
    setattr(module, name, functools.partial(compiled, module))


def prepare_networks(state, double_backward_d: bool) -> list[str]:
    """Apply ``train.channels_last`` and ``train.compile`` to G, D (and G_ema's layout);
    returns notes for the user (what stayed eager and why)."""
    cfg, notes = state.config.train, []
    if cfg.channels_last:
        for net in (state.G, state.D, state.G_ema):
            if net is not None:
                net.to(memory_format=torch.channels_last)
    if cfg.compile:
        _compile_method(state.G, "forward")
        if double_backward_d:
            notes.append("train.compile: D stays eager, because a D regulariser (R1 or the "
                         "gradient penalty) differentiates its gradient, which torch.compile "
                         "cannot; G is compiled")
        else:
            _compile_method(state.D, "score")
    return notes


@contextlib.contextmanager
def deterministic(enabled: bool):
    """PyTorch's deterministic algorithms and cuDNN's deterministic mode (no autotuning)
    while training, restored afterwards. cuBLAS needs ``CUBLAS_WORKSPACE_CONFIG`` set
    before its first use; it is set to ``:4096:8`` unless the user set it."""
    if not enabled:
        yield
        return
    was = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
           torch.backends.cudnn.benchmark)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = was[1], was[2]
