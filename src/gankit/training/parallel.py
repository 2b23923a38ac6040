"""What data-parallel training (`gankit.utils.distributed`) needs of a run: the settings
several processes refuse, the note when a resumed run changes its number of processes, and
the state made ready (SyncBatchNorm, rank 0's weights everywhere)."""

from __future__ import annotations

import torch
from torch import nn

from gankit.training.state import resolve_device
from gankit.utils.console import note
from gankit.utils.distributed import World


def check_config(config, size: int, device: torch.device) -> None:
    """Refuse settings that ``size`` processes cannot run (one line each, naming the
    option and the fix).

    Raises:
        ValueError: a batch size that does not split evenly (PacGAN packs included),
            ``train.sync_batchnorm`` on the CPU, or second-order unrolling.
    """
    if size == 1:
        return
    t = config.train
    for size_ in (t.batch_size, *(s for _, s in t.batch_schedule)):
        if size_ % size or (size_ // size) % config.pack:
            per = size * config.pack
            raise ValueError(f"train.batch_size (and batch_schedule) {size_} is the global "
                             f"batch, split evenly over {size} processes"
                             f"{f' in packs of {config.pack}' if config.pack > 1 else ''}; "
                             f"use a multiple of {per}")
    if t.sync_batchnorm and device.type != "cuda":
        raise ValueError("train.sync_batchnorm=true needs CUDA (torch.nn.SyncBatchNorm has "
                         "no CPU implementation); set train.sync_batchnorm=false on the CPU")
    if t.unrolled_steps and t.unrolled_order == 2:
        raise ValueError("train.unrolled_order=2 is not supported with several processes "
                         "(the unrolled updates' gradients are not averaged); use "
                         "--set train.unrolled_order=1")


def check_launch(config, nproc: int) -> None:
    """`check_config` for ``nproc`` processes on this machine, which must have as many
    CUDA devices when the run is on CUDA.

    Raises:
        ValueError: as `check_config`, or too few CUDA devices.
    """
    device = resolve_device(config.train.device)
    if device.type == "cuda" and nproc > torch.cuda.device_count():
        raise ValueError(f"--nproc {nproc} on CUDA needs {nproc} GPUs, this machine has "
                         f"{torch.cuda.device_count()}; use --nproc "
                         f"{torch.cuda.device_count()} (or --device cpu)")
    check_config(config, nproc, device)


def note_world_change(state, size: int) -> None:
    """When a resumed run's checkpoint (``state``) was written by another number of
    processes than ``size``, say what changes."""
    old = int(state.extra.get("world_size", 1))
    if old == size:
        return
    b, sync = state.config.train.batch_size, state.config.train.sync_batchnorm
    per = {n: b if n == 1 or sync else b // n for n in (old, size)}  # what BatchNorm sees
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                 for net in (state.G, state.D) for m in net.modules())
    bn = "" if not has_bn or per[old] == per[size] else (
        f"; BatchNorm layers now normalise over {per[size]} samples instead of {per[old]}, "
        f"which changes the results beyond rounding")
    note(f"the checkpoint was trained by {old} process(es), this run has {size}: the "
         f"global batch ({b}), its data order and the latents stay the same; the gradients "
         f"are summed in another order, so the run is not bitwise the one {old} would "
         f"give{bn}")


def prepare(world: World, state) -> None:
    """Make ``state`` ready for data parallelism: BatchNorm of G and D converted to
    SyncBatchNorm (``train.sync_batchnorm``; G_ema keeps plain BatchNorm, it is sampled by
    rank 0 alone), and every network set to rank 0's weights. The number of processes
    is recorded in ``state.extra`` (checkpoints say which trained them)."""
    state.extra["world_size"] = world.size
    if world.size == 1:
        return
    if state.config.train.sync_batchnorm:
        # the converted layers keep the same Parameter objects, so the optimisers still
        # hold them, and the same state_dict keys, so checkpoints do not change
        state.G = nn.SyncBatchNorm.convert_sync_batchnorm(state.G)
        state.D = nn.SyncBatchNorm.convert_sync_batchnorm(state.D)
    for net in (state.G, state.D, state.G_ema):
        world.broadcast_module(net)
