"""Range checks for components' ``Options.__post_init__``: each raises ``ValueError``
naming the option (its bare field name; the config layer prefixes the section, e.g.
``g_optimizer.lr``), the bad value and what is allowed."""

from __future__ import annotations

import math
from collections.abc import Iterable


def at_least(name: str, value: float, low: float, why: str = "") -> None:
    """``value >= low`` (and finite)."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= low):
        raise ValueError(f"{name} must be >= {low}{why}, got {value!r}")


def positive(name: str, value: float, why: str = "") -> None:
    """``value > 0`` (and finite)."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be > 0{why}, got {value!r}")


def fraction(name: str, value: float, why: str = "") -> None:
    """``0 <= value < 1``."""
    if not (isinstance(value, (int, float)) and 0.0 <= value < 1.0):
        raise ValueError(f"{name} must lie in [0, 1){why}, got {value!r}")


def all_at_least(name: str, values: Iterable[float], low: float) -> None:
    """A non-empty sequence whose every entry is ``>= low``."""
    values = list(values)
    if not values or any(v < low for v in values):
        raise ValueError(f"{name} must be a non-empty list of integers >= {low}, got {values}")


def one_of(name: str, value: str, choices: Iterable[str]) -> None:
    """``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
