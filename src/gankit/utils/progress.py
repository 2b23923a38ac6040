"""Progress bars on stderr: the one helper that every long command (train, eval, sample,
refine, bench) creates its bar with, so they look and behave alike.

A bar shows a count, a rate and an ETA (tqdm). It shows only when it is asked for (no
``--no-progress``) and stderr is a terminal, as tqdm's ``disable=None``: a log file or a
pipe gets no carriage-return noise. A disabled bar is a tqdm object that does nothing, so
callers never branch on it.
"""

from __future__ import annotations

import sys


def shows_progress(enabled: bool = True) -> bool:
    """Whether a bar asked for with ``enabled`` shows: stderr must be a terminal."""
    if not enabled:
        return False
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty is not None and isatty())
    except ValueError:  # a closed stream
        return False


def progress_bar(total: int | None, *, desc: str | None = None, unit: str = "it",
                 initial: int = 0, enabled: bool = True):
    """A tqdm bar on stderr of ``total`` ``unit``s (``initial`` done), or a silent one.

    Args:
        total: the count the bar runs to (None: no ETA).
        desc: a short label left of the bar (``"sampling"``).
        unit: what is counted (``"step"``, ``"sample"``); the rate is ``unit/s``.
        initial: already done (a resumed run's step).
        enabled: False gives a silent bar (``--no-progress``); so does a stderr that is
            not a terminal (`shows_progress`).
    """
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True,
                mininterval=0.5, file=sys.stderr, disable=not shows_progress(enabled))


def write(message: str) -> None:
    """Print ``message`` on stderr above any bar shown (the bar is redrawn below it)."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)
