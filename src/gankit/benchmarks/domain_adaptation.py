"""`gankit bench domain-adaptation`: MNIST -> MNIST-M by pixel-level adaptation (Bousmalis et
al. 2017, PixelDA; the protocol of Ganin et al. 2016, DANN).

For each seed, one small classifier (the LeNet of `gankit.metrics.features.lenet`: grey
28x28 input, the same settings for both arms) is trained twice and tested on the
``mnistm:test`` split (1,000 digits never used in training, blended with patches of the
photographs' lower quarters):
- **source only**: on the ``mnist5k:train`` digits (4,000) with their labels;
- **adapted**: on the same digits translated to MNIST-M style by a translation run (the
  ``pixelda`` preset, trained on ``adapt:mnist5k:train,mnistm``: MNIST-M train images are
  seen without labels), with the digits' labels.

Published context: DANN 76.7 % against 52.3 % source only; PixelDA 98.2 % (full MNIST and
MNIST-M; here 4,000 mnist5k digits and photographs from scikit-image). Reported: accuracy
per arm, mean +- standard error over seeds, the per-seed gain and a paired t-test.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from gankit.benchmarks._common import fmt, loaded_run, mean_se, out_dir
from gankit.utils.io import atomic_write_json

PRESET = "pixelda"
CLASSIFIER_EPOCHS = 10
DANN = {"source_only": 0.523, "dann": 0.767, "pixelda": 0.982}


def _accuracy(model, x: torch.Tensor, y: torch.Tensor) -> float:
    from gankit.metrics.features.lenet import accuracy, prepare

    return float(accuracy(model, prepare(x), y))


def paired_t(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of the paired t-test of b - a (None below 2 pairs or no spread)."""
    from scipy import stats

    if len(a) < 2:
        return None
    d = [y - x for x, y in zip(a, b)]
    if max(d) == min(d):
        return None
    return float(stats.ttest_rel(b, a).pvalue)


def run(seeds: int = 3, steps: int | None = None, *, first_seed: int = 0,
        out: str | Path | None = None, overrides: Sequence[str] = (),
        epochs: int = CLASSIFIER_EPOCHS, progress: bool = False,
        log: Callable[[str], None] | None = None) -> dict:
    """Both arms for seeds ``first_seed`` .. ``first_seed + seeds - 1``; returns the report
    (also written to ``out``/results.json when ``out`` is given)."""
    from gankit import api, translation
    from gankit.data import load_dataset
    from gankit.metrics.features.lenet import train_classifier

    source = load_dataset("mnist5k:train")
    test = load_dataset("mnistm:test")
    rows = []
    for seed in range(first_seed, first_seed + seeds):
        t0 = time.perf_counter()
        plain = train_classifier(source.x, source.y, 10, seed=seed, epochs=epochs,
                                 dataset_name="mnist5k:train")
        src_acc = _accuracy(plain, test.x, test.y)
        run_dir = out_dir(out, f"pixelda_seed{seed}")
        result = api.train(PRESET, out=run_dir, seed=seed, steps=steps, overrides=overrides,
                           progress=progress)
        loaded = api.load(run_dir) if run_dir is not None else loaded_run(result)
        translated = translation.translate(loaded, source.x)
        adapted = train_classifier(translated, source.y, 10, seed=seed, epochs=epochs,
                                   dataset_name="mnist5k:train->mnistm")
        row = {"seed": seed, "source_only": src_acc,
               "adapted": _accuracy(adapted, test.x, test.y),
               "minutes": (time.perf_counter() - t0) / 60}
        rows.append(row)
        if log is not None:
            log(f"seed {seed}: source only {row['source_only']:.4f}, adapted "
                f"{row['adapted']:.4f} ({row['minutes']:.1f} min)")
    report = {"benchmark": "domain_adaptation", "preset": PRESET, "steps": steps,
              "overrides": list(overrides), "classifier_epochs": epochs, "rows": rows,
              "test": "mnistm:test (1,000)", "train": "mnist5k:train (4,000)",
              "published": DANN}
    for arm in ("source_only", "adapted"):
        report[arm] = mean_se([r[arm] for r in rows])
    report["p_value"] = paired_t([r["source_only"] for r in rows],
                                 [r["adapted"] for r in rows])
    if out is not None:
        atomic_write_json(Path(out) / "results.json", report)
    return report


def table(report: dict) -> str:
    """A markdown table of both arms (mean +- s.e.) with the published context."""
    lines = ["| arm | MNIST-M test accuracy | seeds |", "|---|---|---|"]
    n = len(report["rows"])
    for arm, label in (("source_only", "source only (mnist5k)"),
                       ("adapted", f"adapted ({report['preset']})")):
        mean, se = report[arm]
        lines.append(f"| {label} | {fmt(100 * mean, None if se is None else 100 * se, 1)} % "
                     f"| {n} |")
    p = report.get("p_value")
    gain = 100 * (report["adapted"][0] - report["source_only"][0])
    lines.append(f"\ngain {gain:+.1f} points; paired t-test p = "
                 f"{'n/a' if p is None or math.isnan(p) else f'{p:.3g}'}; published (full "
                 f"MNIST/MNIST-M): source only 52.3 %, DANN 76.7 %, PixelDA 98.2 %")
    return "\n".join(lines)
