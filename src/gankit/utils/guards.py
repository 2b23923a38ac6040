"""Guards on user input: arrays that must be finite, and allocations that must fit in memory.

Each raises a one-line ``ValueError`` that names the input, the bad value and the fix.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

MEMINFO = Path("/proc/meminfo")


def _where(index: tuple[int, ...]) -> str:
    if len(index) == 2:
        return f"row {index[0]}, column {index[1]}"
    return f"sample {index[0]}"


def check_finite(x, where: str, name: str = "x", original=None) -> None:
    """Raise ValueError naming the first NaN or infinite entry of ``x`` (C order).

    Args:
        x: a numpy array or torch tensor.
        where: what holds it, e.g. ``"npz:data.npz"``; starts the message.
        name: the array's name in the message.
        original: the array ``x`` was converted from (same shape): a finite value there
            that became inf is reported as overflowing ``x``'s dtype (``1e300`` in float32).
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    bad = ~np.isfinite(x)
    if not bad.any():
        return
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), x.shape))
    spot = f"{name}[{', '.join(map(str, index))}] ({_where(index)})"
    was = original[index] if original is not None else x[index]
    if np.isfinite(was):
        what = f"= {float(was):g} overflows {x.dtype}"
    else:
        what = f"is {float(was)}"
    raise ValueError(f"{where}: {spot} {what}; {name} must hold finite values: remove or "
                     "replace the non-finite ones")


def finite_float32(x: np.ndarray, where: str, name: str = "x") -> np.ndarray:
    """``x`` as float32, refused by `check_finite` where it holds NaN or inf, or a finite
    value float32 cannot hold (1e300)."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = x.astype(np.float32, copy=False)
    check_finite(out, where, name, original=x)
    return out


def format_bytes(n: float) -> str:
    """A byte count for messages, in powers of 1000: 999 B, 1.5 kB, 2.5 MB, 72.0 TB."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def available_memory(meminfo: str | os.PathLike | None = None) -> int | None:
    """Bytes of memory available for new allocations: ``MemAvailable`` of ``/proc/meminfo``
    (``meminfo``), else free pages times the page size from ``os.sysconf``, else None."""
    try:
        for line in Path(meminfo or MEMINFO).read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # the value is in kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (AttributeError, OSError, ValueError):  # not a POSIX system
        return None


def check_memory(nbytes: int, what: str, fix: str) -> None:
    """Raise ValueError when ``nbytes`` exceed `available_memory` (unknown: no check).

    The message reads ``{what} would need {nbytes} but {available} of memory is
    available; {fix}``.
    """
    available = available_memory()
    if available is not None and nbytes > available:
        raise ValueError(f"{what} would need {format_bytes(nbytes)} but "
                         f"{format_bytes(available)} of memory is available; {fix}")
