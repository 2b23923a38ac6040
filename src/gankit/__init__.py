"""gankit: train, evaluate and apply Generative Adversarial Networks.

Public API::

    import gankit
    result = gankit.train("dcgan", data="mnist5k", steps=2000, out="runs/dcgan")
    x = gankit.sample("runs/dcgan", 64)          # [64, 1, 28, 28] in [-1, 1]
    gankit.evaluate("runs/dcgan", metrics=["fid", "kid"], against="mnist5k", n=5000)
    gankit.export_generator("runs/dcgan", "onnx")  # runs/dcgan/export/generator.onnx
    gankit.list_components()
"""

from __future__ import annotations

import os as _os

# A waiting OpenMP thread spins 3,000 times, not libgomp's 300,000, before it sleeps: as
# fast alone, and a training beside another busy process is not slowed many times over
# (bench/concurrency.py, docs/benchmarks.md). It must be set before PyTorch loads its
# OpenMP runtime, so it applies when gankit is imported first (the gankit command always
# is); OMP_WAIT_POLICY or GOMP_SPINCOUNT set by you are kept.
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["GOMP_SPINCOUNT"] = "3000"

__version__ = "0.1.0"

from gankit import (  # noqa: F401
    augment,
    data,
    hooks,
    losses,
    models,
    optimizers,
    registry,
    regularizers,
)
from gankit.api import export_generator, load, resume, sample, train
from gankit.evaluation import evaluate


def _import_metrics() -> None:
    try:
        from gankit import metrics  # noqa: F401
    except ImportError:  # pragma: no cover - metrics are optional at import time
        pass


_import_metrics()


def list_components() -> dict[str, dict[str, str]]:
    """Every preset and registered component with its one-line description."""
    from gankit.config import preset_description, preset_names

    out = {"presets": {n: preset_description(n) for n in preset_names()}}
    for kind, reg in registry.ALL.items():
        out[kind] = {n: reg.describe(n) for n in reg.names()}
    return out


__all__ = ["train", "resume", "load", "sample", "evaluate", "export_generator", "list_components",
           "__version__"]
