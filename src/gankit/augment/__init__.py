"""Registered augmentations of D's inputs (real and fake alike): each module registers its
entries on import. An augmentation is ``aug(x, step, generator) -> x`` and draws its
randomness from the run's generator, so resume stays exact."""

from gankit._autoimport import import_submodules

MODULES = import_submodules(__name__, __path__)
