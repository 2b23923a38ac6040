"""One-line messages on stderr in the CLI's style (``gankit: warning: ...``).

For what the library skips, replaces or takes over and then carries on: a torn log line, an
unreadable checkpoint, a stale lock, an unfinished run directory.
"""

from __future__ import annotations

import sys


def warn(message: str) -> None:
    """Print ``gankit: warning: MESSAGE`` to stderr."""
    print(f"gankit: warning: {message}", file=sys.stderr)


def note(message: str) -> None:
    """Print ``gankit: note: MESSAGE`` to stderr."""
    print(f"gankit: note: {message}", file=sys.stderr)
