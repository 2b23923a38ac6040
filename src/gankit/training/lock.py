"""The lock of a run directory: ``RUN/.lock`` names the process training in it.

`run_lock` creates the file with ``O_CREAT | O_EXCL``, so of two processes only one can,
writes its pid, host name and start time into it, and removes it when the block ends, also
on an exception. A lock left by a process of this host that is no longer alive (it was
killed) is taken over with a warning. A lock from another host is never taken over, since
whether its process still runs cannot be checked from here.
"""

from __future__ import annotations

import errno
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from gankit.utils.console import warn

LOCK_NAME = ".lock"


class RunLockedError(ValueError):
    """Another process holds the run directory's lock."""


@contextmanager
def run_lock(run_dir: str | Path) -> Iterator[Path]:
    """Hold ``run_dir``'s lock for the block; yields the lock file's path.

    Raises:
        RunLockedError: a live process (or one on another host) holds it; the message
            names its pid and host.
        ValueError: the lock file cannot be created (e.g. no permission to write there).
    """
    path = Path(run_dir) / LOCK_NAME
    mine = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    _acquire(path, mine)
    try:
        yield path
    finally:
        if _holder(path) == mine:
            path.unlink(missing_ok=True)


def _acquire(path: Path, mine: dict) -> None:
    for _ in range(3):  # again after a stale lock is removed, or vanishes while read
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if holder is None:  # released since
                continue
            if not _stale(holder):
                raise RunLockedError(_in_use(path, holder)) from None
            warn(f"{path}: taking over the lock of process {holder['pid']} on "
                 f"{holder['host']} (started {holder.get('started', '?')}), which is no "
                 "longer running")
            if _holder(path) == holder:  # not taken over by another process meanwhile
                path.unlink(missing_ok=True)
            continue
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise
            raise ValueError(f"{path.parent}: cannot create the lock file {path.name} "
                             f"({exc.strerror}); check the directory's permissions or "
                             "choose another directory") from None
        try:
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(mine) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return
    raise RunLockedError(f"{path.parent} is in use: other processes keep taking its lock "
                         f"{path}")


def _holder(path: Path) -> dict | None:
    """The lock's content; None when there is no lock, {} when it cannot be read."""
    try:
        holder = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _stale(holder: dict) -> bool:
    """Whether the lock's process ran on this host and is gone."""
    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, under another user
        return False
    return False


def _in_use(path: Path, holder: dict) -> str:
    who = (f"process {holder['pid']} on {holder['host']} (since {holder.get('started', '?')})"
           if "pid" in holder and "host" in holder else
           "an unknown process (the lock file is unreadable)")
    return (f"{path.parent} is in use by {who}: a second training there would mix both runs; "
            f"wait for it to finish or choose another directory. If you are sure no training "
            f"runs there, remove the lock (rm {path})")
