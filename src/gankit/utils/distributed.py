"""Data-parallel training on ``torch.distributed``: one process per device, started by
``torchrun`` (or ``gankit train --nproc N``), each holding a full copy of G and D.

Every process reads its own shard of the same global batch and its slice of the same
latents, and after each backward pass the gradients are averaged over the processes
(`World.average_gradients`), before each optimiser step: the semantics of PyTorch's
DistributedDataParallel (averaged gradients), applied explicitly, as NVIDIA's StyleGAN2-ADA
and StyleGAN3 training code does, instead of through DDP's reducer hooks, which do not
support the double backward of R1 and the gradient penalty, nor the loop's several D
updates and unrolled copy per step. Backends: gloo on the CPU, NCCL on CUDA (rank k on
``cuda:LOCAL_RANK``); the process group is created with both where CUDA is present, so
small control messages (errors, the resumed checkpoint) go through gloo.

`World` is read from torchrun's environment variables (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT); without them a run is one process and every call here is a
no-op. Collectives give up after ``GANKIT_DIST_TIMEOUT`` seconds (default 1800, PyTorch's
own default): rank 0 alone evaluates and writes, and the others wait for it that long.
What a run needs beside (refused settings, SyncBatchNorm, rank 0's weights) is in
`gankit.training.parallel`; ``gankit train --nproc N`` is `gankit.utils.launch`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

TIMEOUT_VARIABLE = "GANKIT_DIST_TIMEOUT"


@dataclass
class World:
    """The processes of one data-parallel run, as this process sees them.

    Attributes:
        rank: this process's index, 0..size-1 (0 writes the run directory).
        size: the number of processes (1: no process group, every collective a no-op).
        local_rank: the index on this machine (the CUDA device it uses).
        device: this process's device, set by `use_device`.
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def shard(self) -> tuple[int, int]:
        """(rank, size): which slice of every global batch this process takes."""
        return self.rank, self.size

    @property
    def sync(self) -> Callable[[nn.Module], None] | None:
        """What `gankit.training.updates.Updates` calls between backward and step."""
        return self.average_gradients if self.size > 1 else None

    @classmethod
    def from_env(cls, env=None) -> World:
        """The world torchrun describes in ``env`` (default ``os.environ``); one process
        when WORLD_SIZE is unset."""
        env = os.environ if env is None else env
        size = int(env.get("WORLD_SIZE", "1"))
        return cls(int(env.get("RANK", "0")), size, int(env.get("LOCAL_RANK", "0")))

    def use_device(self, name: str) -> torch.device:
        """Set and return this process's device for ``train.device`` ``name``: one
        process resolves it as usual; several on CUDA take ``cuda:LOCAL_RANK`` each.

        Raises:
            ValueError: CUDA requested where it is not available, or fewer CUDA devices on
                this machine than processes.
        """
        from gankit.training.state import resolve_device

        device = resolve_device(name)
        if self.size > 1 and device.type == "cuda":
            count = torch.cuda.device_count()
            if self.local_rank >= count:
                raise ValueError(f"process {self.local_rank} of this machine needs "
                                 f"cuda:{self.local_rank}, but it has {count} CUDA devices; "
                                 f"start at most {count} processes per machine")
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        self.device = device
        return device

    # -- collectives -------------------------------------------------------------------
    def average_gradients(self, module: nn.Module) -> None:
        """Replace ``module``'s gradients by their mean over the processes (one all-reduce
        of a flat buffer per dtype). A parameter without a gradient is left as it is: the
        loop's phases give every process the same parameters with gradients."""
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if not grads or not dist.is_initialized():  # one process: nothing to average
            return
        for dtype in sorted({g.dtype for g in grads}, key=str):
            group = [g for g in grads if g.dtype == dtype]
            flat = torch.cat([g.reshape(-1) for g in group])
            dist.all_reduce(flat)
            flat.div_(self.size)
            parts = flat.split([g.numel() for g in group])
            torch._foreach_copy_(group, [p.view_as(g) for p, g in zip(parts, group)])
            del flat

    def mean(self, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each scalar of ``values`` (the same keys on every process) averaged over the
        processes: what the log records and the divergence check see. A NaN anywhere is a
        NaN everywhere, so every process rolls back together."""
        if self.size == 1 or not values:
            return values
        keys = sorted(values)
        flat = torch.stack([values[k].detach().float().reshape(()).to(self.device)
                            for k in keys])
        dist.all_reduce(flat)
        flat.div_(self.size)
        reduced = dict(zip(keys, flat.unbind()))
        return {k: reduced[k] for k in values}  # the caller's order (log records keep it)

    def stop_signal(self, signum: int | None) -> int | None:
        """The stop signal any process received (None: none), so that every process stops
        after the same step and rank 0's checkpoint is the step all of them reached."""
        if self.size == 1:
            return signum
        flag = torch.tensor([signum or 0], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag) or None

    def broadcast_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Set ``tensor`` to rank 0's values on every process (in place) and return it."""
        if self.size > 1:
            dist.broadcast(tensor, src=0)
        return tensor

    def broadcast_module(self, module: nn.Module | None) -> None:
        """Copy rank 0's parameters and buffers into ``module`` on every process."""
        if self.size == 1 or module is None:
            return
        with torch.no_grad():
            for t in [*module.parameters(), *module.buffers()]:
                dist.broadcast(t.data, src=0)

    def on_main(self, fn: Callable[[], object], share: bool = False) -> object:
        """Run ``fn`` on rank 0 alone and return its result there (everywhere with
        ``share``, else None elsewhere). An exception it raises is raised on every
        process, so none is left waiting; elsewhere it is marked ``echo`` (the CLI prints
        it once, on rank 0)."""
        result, error = None, None
        if self.is_main:
            try:
                result = fn()
            except Exception as exc:  # noqa: BLE001 - raised again on every rank below
                error = exc
        if self.size > 1:
            error, shared = self.from_main((_picklable(error), result if share else None))
            if not self.is_main:
                result = shared
                if error is not None:
                    error.echo = True
        if error is not None:
            raise error
        return result

    def from_main(self, obj):
        """Rank 0's ``obj`` (picklable) on every process."""
        if self.size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def _picklable(error: Exception | None) -> Exception | None:
    """``error``, or one of its built-in bases with its message when it cannot be pickled
    (to be sent to the other processes)."""
    import pickle

    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001 - any failure to round-trip
        base = next(c for c in type(error).__mro__ if c.__module__ == "builtins")
        return base(str(error))


def lost_peer(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective that failed because another process went away (or
    timed out), rather than this process's own error."""
    text = str(exc)
    return isinstance(exc, dist.DistError) or any(
        s in text for s in ("Connection closed by peer", "Connection reset by peer",
                            "Timed out waiting", "timed out", "Broken pipe"))


def timeout() -> timedelta:
    """The collectives' timeout, ``GANKIT_DIST_TIMEOUT`` seconds (default 1800)."""
    raw = os.environ.get(TIMEOUT_VARIABLE, "1800")
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if seconds <= 0:
        raise ValueError(f"{TIMEOUT_VARIABLE}={raw!r} must be a positive number of seconds")
    return timedelta(seconds=seconds)


@contextlib.contextmanager
def session() -> Iterator[World]:
    """The `World` of this process for the block: under torchrun the default process
    group is created (gloo, plus NCCL where CUDA is present) and destroyed at the end; a
    group that already exists (the caller's) is used and left alone."""
    world = World.from_env()
    if world.size == 1:
        yield world
        return
    owned = not dist.is_initialized()
    if owned:
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend, timeout=timeout())
    world.rank, world.size = dist.get_rank(), dist.get_world_size()
    try:
        yield world
    finally:
        if owned:
            dist.destroy_process_group()
