"""``gankit train --nproc N``: the same command run as N processes under torchrun
(``python -m torch.distributed.run --standalone``) on this machine."""

from __future__ import annotations

import signal
import subprocess
import sys


def without_nproc(argv: list[str]) -> list[str]:
    """``argv`` less ``--nproc N`` / ``--nproc=N`` (and argparse's abbreviations of it)."""
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
            continue
        name = token.split("=", 1)[0]
        if len(name) >= 4 and "--nproc".startswith(name):
            skip = "=" not in token
            continue
        out.append(token)
    return out


def torchrun_command(argv: list[str], nproc: int) -> list[str]:
    """The command that runs ``gankit ARGV`` (``--nproc`` removed) as ``nproc`` processes
    on this machine: torchrun (``python -m torch.distributed.run``) with ``--standalone``,
    whose rendezvous picks a free port."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc_per_node", str(nproc), "-m", "gankit", *without_nproc(argv)]


def launch(argv: list[str], nproc: int) -> tuple[int, bool]:
    """Run ``gankit ARGV`` as ``nproc`` processes under torchrun; returns its exit status
    and whether Ctrl-C (SIGINT) was pressed. Ctrl-C reaches the processes (rank 0 saves the
    step reached) and torchrun; this process only waits for them."""
    pressed: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
    try:
        code = subprocess.run(torchrun_command(argv, nproc), check=False).returncode
    finally:
        signal.signal(signal.SIGINT, previous)
    return code, bool(pressed)
