"""Feature extractors for the metrics: every public module registers entries in ``EXTRACTORS``.

Specs: a registered name (``"raw"``, ``"lenet_mnist5k"``, ``"inception_v3_fid"``) or
``"name:ARG"``, which passes ARG as the first argument (the weights file), e.g.
``"lenet:runs/lenet_faces.safetensors"`` or ``"inception_v3_fid:/data/pt_inception.pth"``.
"""

from __future__ import annotations

from gankit._autoimport import import_submodules
from gankit.metrics.features._base import Extractor
from gankit.metrics.features.inception import (
    FIDInceptionV3,
    load_inception_v3_fid,
    resolve_inception_weights,
)
from gankit.metrics.features.lenet import (
    LeNet,
    load_lenet,
    save_lenet,
    stratified_split,
    train_and_save_extractor,
    train_classifier,
)
from gankit.registry import EXTRACTORS

MODULES = import_submodules(__name__, __path__)

__all__ = [
    "Extractor",
    "FIDInceptionV3",
    "LeNet",
    "build_extractor",
    "load_inception_v3_fid",
    "load_lenet",
    "resolve_inception_weights",
    "save_lenet",
    "stratified_split",
    "train_and_save_extractor",
    "train_classifier",
]


def build_extractor(spec: str, **kwargs) -> Extractor:
    """Build an extractor from a spec ``"name"`` or ``"name:ARG"`` (see the module docstring).

    Raises:
        ValueError: unknown name (listing the valid ones and the closest match).
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"extractor spec must be a non-empty string, got {spec!r}")
    name, sep, arg = spec.partition(":")
    factory = EXTRACTORS.get(name)
    if sep:
        if not arg:
            raise ValueError(f"extractor spec {spec!r}: nothing after ':' (expected a path)")
        return factory(arg, **kwargs)
    return factory(**kwargs)
