"""`gankit bench anomaly`: leave-one-digit-out anomaly detection on mnist5k (the protocol of
GANomaly, Akcay et al. 2018, sec. 4.1, on the 5,000 digits available offline).

For each left-out digit d and seed: the method trains on the ``mnist5k:train`` digits other
than d (the normal classes); it scores the held-out normals (the ``mnist5k:test`` digits
other than d) and all 500 images of d (those of both splits: no model saw any of them);
AUROC of the scores with d as the positive class (scikit-learn's ``roc_auc_score``). A run
directory that already holds the finished run of a (digit, seed) is scored again without
training (a bench run again over the same ``--out``). In the same command, the classical
baselines a user would try: IsolationForest and OneClassSVM (RBF, gamma "scale", nu 0.1)
on raw pixels, fitted on the same normal training images (the shipped LeNet's features are
left out: it was trained on every digit, the left-out one included, which is not fair).
Reported: AUROC per digit and its mean, mean +- s.e. over seeds.

``data="breast_cancer"``: scikit-learn's breast cancer table as 30 standardised features
(``breast_cancer_points``), benign = normal, malignant = anomaly: the method and the
baselines fit the benign rows of the fixed train split (80 %) and score the test split
(20 %: benign and malignant rows); one row per seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from gankit.benchmarks._common import fmt, loaded_run, mean_se, out_dir
from gankit.utils.io import atomic_write_json

BASELINES = ("isolation_forest", "one_class_svm")


def auroc(scores, is_anomaly) -> float:
    """Area under the ROC curve, anomalies positive (scikit-learn's definition)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.asarray(is_anomaly, int), np.asarray(scores, float)))


def baseline_scores(name: str, train: np.ndarray, test: np.ndarray, seed: int) -> np.ndarray:
    """Scores (higher = more anomalous) of a classical detector fitted on ``train`` [N, F]."""
    from sklearn.ensemble import IsolationForest
    from sklearn.svm import OneClassSVM

    if name == "isolation_forest":
        model = IsolationForest(n_estimators=200, random_state=seed).fit(train)
    elif name == "one_class_svm":
        model = OneClassSVM(kernel="rbf", gamma="scale", nu=0.1).fit(train)
    else:
        raise ValueError(f"unknown baseline {name!r}: {', '.join(BASELINES)}")
    return -model.score_samples(test)


def run(method: str = "ganomaly", digits: Sequence[int] = tuple(range(10)), seeds: int = 3,
        steps: int | None = None, *, first_seed: int = 0, out: str | Path | None = None,
        overrides: Sequence[str] = (), progress: bool = False, data: str = "mnist5k",
        log: Callable[[str], None] | None = None) -> dict:
    """The protocol above; returns the report (``out``/results.json when ``out`` is set)."""
    from gankit import anomaly, api
    from gankit.data import load_dataset

    if data not in ("mnist5k", "breast_cancer"):
        raise ValueError(f"--data must be mnist5k or breast_cancer, got {data!r}")
    spec = "mnist5k" if data == "mnist5k" else "breast_cancer_points"
    train, test = load_dataset(f"{spec}:train"), load_dataset(f"{spec}:test")
    # (anomalous class, normal classes) per row: each left-out digit, or malignant (0)
    cases = [(d, [c for c in range(10) if c != d]) for d in digits] \
        if data == "mnist5k" else [(0, [1])]
    rows = []
    for seed in range(first_seed, first_seed + seeds):
        for d, normal in cases:
            keep = torch.isin(train.y, torch.tensor(normal))
            # the held-out rows, plus (digits) the anomalous class's training images
            x_test = test.x if data != "mnist5k" else torch.cat([test.x, train.x[~keep]])
            y_test = test.y if data != "mnist5k" else torch.cat([test.y, train.y[~keep]])
            is_anomaly = (y_test == d).numpy()
            run_dir = out_dir(out, f"{method}_digit{d}_seed{seed}")
            loaded = _finished(run_dir, steps, log)
            if loaded is None:
                result = anomaly.fit(method, run_dir, normal=normal, steps=steps, seed=seed,
                                     overrides=overrides, progress=progress,
                                     data=f"{spec}:train")
                loaded = api.load(run_dir) if run_dir is not None else loaded_run(result)
            row = {"seed": seed, "digit": d,
                   method: auroc(anomaly.score(loaded, x_test).numpy(), is_anomaly)}
            flat_train = train.x[keep].flatten(1).numpy()
            for name in BASELINES:
                row[name] = auroc(baseline_scores(name, flat_train, x_test.flatten(1).numpy(),
                                                  seed), is_anomaly)
            rows.append(row)
            if log is not None:
                log(f"seed {seed}, digit {d}: " + ", ".join(
                    f"{k} {v:.3f}" for k, v in row.items() if k not in ("seed", "digit")))
    report = {"benchmark": "anomaly", "method": method, "steps": steps, "rows": rows,
              "overrides": list(overrides), "data": data,
              "digits": [d for d, _ in cases],
              "protocol": "mnist5k leave one digit out; test = mnist5k:test normals and "
              "every image of the left-out digit"
              if data == "mnist5k" else "breast_cancer: benign normal, malignant anomaly; "
              "train split benign rows; test split"}
    for name in (method, *BASELINES):
        per_seed = [np.mean([r[name] for r in rows if r["seed"] == s])
                    for s in sorted({r["seed"] for r in rows})]
        report[name] = mean_se([float(v) for v in per_seed])
    if out is not None:
        atomic_write_json(Path(out) / "results.json", report)
    return report


def _finished(run_dir: Path | None, steps: int | None, log):
    """The finished run in ``run_dir`` to score again, or None when there is none."""
    from gankit import api
    from gankit.training.checkpoint import list_checkpoints

    if run_dir is None or not list_checkpoints(run_dir):
        return None
    run = api.load(run_dir)
    planned = run.config.train.steps
    if run.step != planned:
        raise ValueError(f"{run_dir} holds an unfinished run (step {run.step} of {planned}); "
                         f"continue it with gankit train --resume {run_dir}, or remove it")
    if steps is not None and steps != planned:
        raise ValueError(f"{run_dir} holds a run of {planned} steps, not --steps {steps}; "
                         f"choose another --out")
    if log is not None:
        log(f"scoring the finished run in {run_dir} (no training)")
    return run


def table(report: dict) -> str:
    """Markdown: AUROC per left-out digit (mean over seeds) and the mean over digits."""
    names = (report["method"], *BASELINES)
    first = "left-out digit" if report.get("data", "mnist5k") == "mnist5k" else "anomaly"
    lines = [f"| {first} | " + " | ".join(names) + " |",
             "|---|" + "---|" * len(names)]
    for d in report["digits"]:
        cells = [np.mean([r[n] for r in report["rows"] if r["digit"] == d]) for n in names]
        lines.append(f"| {d} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
    means = []
    for n in names:
        m, se = report[n]
        means.append(fmt(m, se, 3))
    lines.append("| **mean** | " + " | ".join(means) + " |")
    return "\n".join(lines)
