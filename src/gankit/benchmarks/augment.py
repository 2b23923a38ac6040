"""`gankit bench augment`: does synthetic data help a classifier? (Ravuri and Vinyals 2019,
"Classification Accuracy Score for Conditional Generative Models".)

Protocol, for ``mnist5k`` (or the 8x8 ``digits``), per seed:
1. the fixed real split: ``DATA:train`` (mnist5k 4,000; digits 1,437) and ``DATA:test``
   (1,000; 360); the GAN and every classifier see the train split only;
2. a class-conditional GAN (``--preset``, default ``cgan``) trains on the train split with
   that seed, and `gankit.synth.synthesize` draws as many images per class as the train
   split holds;
3. **CAS**: the fixed small classifier (the LeNet of `gankit.metrics.features.lenet`, the
   same settings throughout) trained on the synthetic images alone, tested on the real
   test split; beside it the same classifier trained on the real train split (the CAS of a
   perfect generator);
4. **augmentation gain**: for k in {10, 50} real images per class (drawn with the seed),
   the classifier trained on those alone and on those plus all the synthetic images, both
   tested on the real test split.
Reported: mean +- standard error over seeds and, per k, the paired t-test of the gain.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from gankit.benchmarks._common import fmt, mean_se, out_dir
from gankit.benchmarks.domain_adaptation import paired_t
from gankit.utils.io import atomic_write_json

KS = (10, 50)
EPOCHS = 10


def _fit_score(x, y, test, seed: int, epochs: int) -> float:
    from gankit.metrics.features.lenet import accuracy, prepare, train_classifier

    model = train_classifier(x, y, 10, seed=seed, epochs=epochs, holdout=0.0)
    return float(accuracy(model, prepare(test.x), test.y))


def few_per_class(y: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """Indices of ``k`` samples of every class of ``y`` (seeded draw), sorted."""
    g = torch.Generator().manual_seed(seed)
    picks = [torch.nonzero(y == c).flatten()[torch.randperm(int((y == c).sum()),
                                                            generator=g)[:k]]
             for c in range(int(y.max()) + 1)]
    return torch.cat(picks).sort().values


def run(data: str = "mnist5k", seeds: int = 5, steps: int | None = None, *,
        first_seed: int = 0, preset: str = "cgan", out: str | Path | None = None,
        overrides: Sequence[str] = (), epochs: int = EPOCHS, progress: bool = False,
        log: Callable[[str], None] | None = None) -> dict:
    """The protocol above; returns the report (``out``/results.json when ``out`` is set)."""
    from gankit import api
    from gankit.data import load_dataset
    from gankit.synth import synthesize

    if data not in ("mnist5k", "digits"):
        raise ValueError(f"--data must be mnist5k or digits, got {data!r}")
    train, test = load_dataset(f"{data}:train"), load_dataset(f"{data}:test")
    per_class = len(train) // 10
    rows = []
    for seed in range(first_seed, first_seed + seeds):
        t0 = time.perf_counter()
        run_dir = out_dir(out, f"{preset}_seed{seed}")
        api.train(preset, out=run_dir, data=f"{data}:train", seed=seed, steps=steps,
                  overrides=overrides, progress=progress)
        x_syn, y_syn = synthesize(api.load(run_dir), per_class, seed=seed)
        x_syn = torch.nn.functional.interpolate(x_syn, size=train.x.shape[-2:],
                                                mode="bilinear", align_corners=False) \
            if x_syn.shape[-2:] != train.x.shape[-2:] else x_syn
        row = {"seed": seed,
               "cas": _fit_score(x_syn, y_syn, test, seed, epochs),
               "real": _fit_score(train.x, train.y, test, seed, epochs)}
        for k in KS:
            idx = few_per_class(train.y, k, seed)
            xr, yr = train.x[idx], train.y[idx]
            row[f"real_k{k}"] = _fit_score(xr, yr, test, seed, epochs)
            row[f"augmented_k{k}"] = _fit_score(torch.cat([xr, x_syn]),
                                                torch.cat([yr, y_syn]), test, seed, epochs)
        row["minutes"] = (time.perf_counter() - t0) / 60
        rows.append(row)
        if log is not None:
            log(f"seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items()
                                             if k != "seed"))
    report = {"benchmark": "augment", "data": data, "preset": preset, "steps": steps,
              "overrides": list(overrides), "classifier_epochs": epochs, "rows": rows,
              "train": f"{data}:train ({len(train)})", "test": f"{data}:test ({len(test)})"}
    for key in rows[0]:
        if key not in ("seed", "minutes"):
            report[key] = mean_se([r[key] for r in rows])
    for k in KS:
        report[f"p_value_k{k}"] = paired_t([r[f"real_k{k}"] for r in rows],
                                           [r[f"augmented_k{k}"] for r in rows])
    if out is not None:
        atomic_write_json(Path(out) / "results.json", report)
    return report


def table(report: dict) -> str:
    """Markdown: CAS beside train-on-real, and the gain at each k with its p-value."""
    n = len(report["rows"])

    def pct(key: str) -> str:
        mean, se = report[key]
        return f"{fmt(100 * mean, None if se is None else 100 * se, 1)} %"

    lines = [f"{report['data']}, {report['preset']}, {n} seeds (test: {report['test']})", "",
             "| classifier trained on | test accuracy |", "|---|---|",
             f"| synthetic only (CAS) | {pct('cas')} |",
             f"| real train split | {pct('real')} |"]
    for k in KS:
        p = report.get(f"p_value_k{k}")
        gain = 100 * (report[f"augmented_k{k}"][0] - report[f"real_k{k}"][0])
        lines.append(f"| {k} real per class | {pct(f'real_k{k}')} |")
        lines.append(f"| {k} real per class + synthetic | {pct(f'augmented_k{k}')} (gain "
                     f"{gain:+.1f} points, paired t-test p = "
                     f"{'n/a' if p is None else f'{p:.3g}'}) |")
    return "\n".join(lines)
