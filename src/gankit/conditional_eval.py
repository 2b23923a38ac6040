"""Conditioning accuracy of a class-conditional generator: the share of samples that a
pretrained classifier assigns to the class they were generated for (the class-accuracy
check of ACGAN, Odena et al. 2017, sec. 4; "GAN-test" of Shmelkov et al. 2018).

Protocol: ``n_per_class`` samples of every class from the EMA generator (seeded z), each
classified by a shipped classifier (``lenet_mnist5k`` for MNIST-like data) by arg-max.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gankit import api


def conditioning_accuracy(run: str | Path | api.LoadedRun, extractor="lenet_mnist5k",
                          n_per_class: int = 100, seed: int = 0, ema: bool = True,
                          device: str = "cpu") -> dict:
    """Classifier accuracy on ``n_per_class`` samples of each class.

    Args:
        run: a run directory or a `gankit.api.LoadedRun` of a conditional run.
        extractor: an extractor spec with a classifier head (``gankit.metrics.features``),
            or a built extractor; its classes must be the run's classes.
        n_per_class: samples generated per class.
        seed: seeds the latents.
        ema: use the EMA generator when the run kept one.
        device: where to load the run.

    Returns:
        ``{"overall": float in [0, 1], "per_class": [K floats], "n": K * n_per_class,
        "extractor": name}``.
    """
    from gankit.metrics.features import build_extractor

    run = api.load(run, device) if not isinstance(run, api.LoadedRun) else run
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be at least 1, got {n_per_class}")
    classes = api.class_grid_labels(run, n_per_class)  # [K * n_per_class], class-major
    ext = build_extractor(extractor) if isinstance(extractor, str) else extractor
    num_classes = run.info.num_classes
    if ext.num_classes != num_classes:
        raise ValueError(f"extractor {ext.name!r} classifies {ext.num_classes} classes, the "
                         f"run has {num_classes}; choose a classifier trained on its data")
    x = api.sample(run, len(classes), classes=classes, seed=seed, ema=ema)
    _, probs = ext.extract(x, with_probs=True)
    correct = (probs.argmax(1) == classes).double()  # [K * n_per_class]
    per_class = correct.view(num_classes, n_per_class).mean(1)
    return {"overall": float(correct.mean()), "per_class": [float(v) for v in per_class],
            "n": len(classes), "extractor": ext.name or str(extractor)}


def format_accuracy(result: dict) -> str:
    """One line: overall and per-class accuracy in percent."""
    per = " ".join(f"{k}:{100 * v:.0f}" for k, v in enumerate(result["per_class"]))
    return (f"conditioning accuracy ({result['extractor']}, n={result['n']}): "
            f"{100 * result['overall']:.1f} %  per class {per}")


if __name__ == "__main__":  # python -m gankit.conditional_eval RUN_DIR [N_PER_CLASS]
    import sys

    torch.set_grad_enabled(False)
    print(format_accuracy(conditioning_accuracy(
        sys.argv[1], n_per_class=int(sys.argv[2]) if len(sys.argv) > 2 else 100)))
