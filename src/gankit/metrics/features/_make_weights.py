"""Reproduce the shipped LeNet weights (``weights/lenet_<dataset>.safetensors`` + ``.json``).

    python -m gankit.metrics.features._make_weights [mnist5k] [digits]

Runs on one CPU thread, so the files are bit-identical to the shipped ones on the same torch
build (about 2 minutes for mnist5k).
"""

from __future__ import annotations

import sys

import torch

from gankit.metrics.features.lenet import WEIGHTS_DIR, train_and_save_extractor

RECIPES = {
    "mnist5k": {"seed": 0, "epochs": 30},
    "digits": {"seed": 0, "epochs": 40},
}


def main(names: list[str]) -> None:
    from gankit.data import load_dataset

    torch.set_num_threads(1)
    for name in names or list(RECIPES):
        if name not in RECIPES:
            raise SystemExit(f"unknown dataset {name!r}; choose from {sorted(RECIPES)}")
        ds = load_dataset(name)
        report = train_and_save_extractor(
            ds.x,
            ds.y,
            ds.num_classes,
            WEIGHTS_DIR / f"lenet_{name}.safetensors",
            dataset_name=name,
            log=lambda line, name=name: print(f"[{name}] {line}", flush=True),
            **RECIPES[name],
        )
        print(
            f"[{name}] held-out accuracy {report['heldout_accuracy']:.4f} "
            f"sha256 {report['sha256']}",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
