"""Write-once registries for every pluggable kind of component.

A component registers itself under an explicit snake_case name::

    @LOSSES.register("hinge")
    class Hinge: ...

A duplicate name is an error; looking up an unknown name raises ``ValueError`` that
lists the valid names and the closest match.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from typing import Any

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def closest(name: str, options: list[str]) -> str:
    """Return a 'did you mean' suffix for ``name`` among ``options`` (or '')."""
    match = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    return f" Did you mean '{match[0]}'?" if match else ""


class Registry:
    """A named mapping from snake_case names to classes or factories."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = {}
        self._descriptions: dict[str, str] = {}

    def register(self, name: str, description: str | None = None) -> Callable[[Any], Any]:
        """Decorator that registers ``obj`` under ``name``."""
        if not _NAME.match(name):
            raise ValueError(f"{self.kind} name {name!r} must be snake_case (a-z, 0-9, _)")

        def deco(obj: Any) -> Any:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = obj
            doc = description or (obj.__doc__ or "").strip().split("\n")[0]
            self._descriptions[name] = doc
            return obj

        return deco

    def get(self, name: str) -> Any:
        """Return the entry for ``name``; an unknown name lists the valid ones."""
        if name not in self._entries:
            valid = ", ".join(sorted(self._entries)) or "(none)"
            raise ValueError(
                f"unknown {self.kind} {name!r}.{closest(str(name), list(self._entries))} "
                f"Valid {self.kind} names: {valid}"
            )
        return self._entries[name]

    def build(self, name: str, **kwargs: Any) -> Any:
        """Instantiate the entry ``name`` with keyword arguments."""
        return self.get(name)(**kwargs)

    def describe(self, name: str) -> str:
        return self._descriptions[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


GENERATORS = Registry("generator")
DISCRIMINATORS = Registry("discriminator")
LOSSES = Registry("loss")
REGULARIZERS = Registry("regularizer")
HOOKS = Registry("hook")
OPTIMIZERS = Registry("optimizer")
DATASETS = Registry("dataset")
AUGMENTATIONS = Registry("augmentation")
METRICS = Registry("metric")
EXTRACTORS = Registry("extractor")
SINKS = Registry("log sink")

ALL = {
    "generators": GENERATORS,
    "discriminators": DISCRIMINATORS,
    "losses": LOSSES,
    "regularizers": REGULARIZERS,
    "hooks": HOOKS,
    "optimizers": OPTIMIZERS,
    "augmentations": AUGMENTATIONS,
    "datasets": DATASETS,
    "metrics": METRICS,
    "extractors": EXTRACTORS,
    "log sinks": SINKS,
}
