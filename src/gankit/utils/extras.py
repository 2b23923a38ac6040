"""Optional dependencies behind ``pip install 'gankit[EXTRA]'`` extras, imported lazily.

`require` imports the modules a feature needs and raises `MissingExtraError` (an
``ImportError``) naming every missing one and the extra that installs them; the CLI prints
it as one line and exits 2.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """An optional package is not installed; the message names the extra to install."""


def require(modules: tuple[str, ...], extra: str, what: str) -> list[ModuleType]:
    """Import ``modules`` for ``what`` (e.g. "--format onnx"), in order.

    Raises:
        MissingExtraError: any of them cannot be imported; names all missing ones.
    """
    loaded, missing = [], []
    for name in modules:
        try:
            loaded.append(importlib.import_module(name))
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingExtraError(f"{what} needs {', '.join(missing)} (not installed): "
                                f"pip install 'gankit[{extra}]'")
    return loaded
