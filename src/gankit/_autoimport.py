"""Import every module of a sub-package so its components register themselves."""

from __future__ import annotations

import importlib
import pkgutil


def import_submodules(package_name: str, package_path: list[str]) -> list[str]:
    names = []
    for info in sorted(pkgutil.iter_modules(package_path), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        importlib.import_module(f"{package_name}.{info.name}")
        names.append(info.name)
    return names
