"""Registered hooks: each module registers its entries on import."""

from gankit._autoimport import import_submodules

MODULES = import_submodules(__name__, __path__)
