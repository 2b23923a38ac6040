"""`gankit bench tabular`: gankit's ``ctgan`` preset against the ``ctgan`` PyPI package (the
authors' implementation, installed only for this benchmark: ``pip install
'gankit[bench-tabular]'``) on the same splits, epochs and batch size.

Per table (``breast_cancer``, ``wine``; ``grunfeld`` with the tables extra) and seed: both
train on the fixed ``NAME:train`` split (80 %) for ``epochs`` epochs of batch 500 drawn by
training-by-sampling (``max(1, rows // 500)`` steps an epoch, as the package counts);
each draws as many rows as the split holds; both are scored against the same real rows
(`gankit.tabular.metrics`): mean column fidelity (lower is better), association
difference, ML efficacy (a gradient-boosting model trained on the synthetic rows, tested
on ``NAME:test``, predicting the table's label column; accuracy, and its ratio to training
on the real split) and wall time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from gankit.benchmarks._common import fmt, loaded_run, mean_se, out_dir
from gankit.utils.io import atomic_write_json

TABLES = {"breast_cancer": "diagnosis", "wine": "cultivar", "grunfeld": "firm"}
BATCH = 500


def _frame(table):
    import pandas as pd

    return pd.DataFrame({c.name: c.values for c in table.columns})


def _from_frame(frame, like):
    """A `Table` of a DataFrame with ``like``'s columns and types."""
    import math as m

    from gankit.tabular.table import Column, Table

    cols = []
    for c in like.columns:
        values = frame[c.name].tolist()
        if c.type in ("continuous", "integer"):
            values = [float("nan") if v is None or (isinstance(v, float) and m.isnan(v))
                      else float(v) for v in values]
        else:
            values = [None if v is None or (isinstance(v, float) and m.isnan(v)) else str(v)
                      for v in values]
        cols.append(Column(c.name, c.type, values))
    return Table(cols, "ctgan-package")


def _scores(train, test, synth, target: str, seed: int) -> dict:
    from gankit.tabular import metrics as tm

    return {"fidelity_mean": tm.column_fidelity(train, synth)["fidelity_mean"],
            "association_difference": tm.association_difference(train, synth),
            **{k: v for k, v in tm.ml_efficacy(train, test, synth, target, seed).items()
               if k != "efficacy_metric"}}


def run(tables: Sequence[str] = ("breast_cancer", "wine"), seeds: int = 3, epochs: int = 300,
        *, first_seed: int = 0, out: str | Path | None = None, progress: bool = False,
        log: Callable[[str], None] | None = None) -> dict:
    """Both synthesizers per table and seed; returns the report."""
    from gankit import api
    from gankit.data import load_dataset
    from gankit.tabular.sampler import sample_table
    from gankit.utils.extras import require

    (ctgan_pkg,) = require(("ctgan",), "bench-tabular", "gankit bench tabular")
    rows = []
    for name in tables:
        if name not in TABLES:
            raise ValueError(f"--tables: {name} is not one of {', '.join(TABLES)}")
        train = load_dataset(f"{name}:train").table.table
        test = load_dataset(f"{name}:test").table.table
        target = TABLES[name]
        steps = epochs * max(1, len(train) // BATCH)  # as the package: full batches
        discrete = [c.name for c in train.columns if c.type in ("categorical", "boolean")]
        for seed in range(first_seed, first_seed + seeds):
            t0 = time.perf_counter()
            run_dir = out_dir(out, f"{name}_seed{seed}")
            result = api.train("ctgan", out=run_dir, data=f"{name}:train", seed=seed,
                               steps=steps, progress=progress,
                               overrides=[f"train.batch_size={BATCH}"])
            loaded = api.load(run_dir) if run_dir is not None else loaded_run(result)
            ours = sample_table(loaded, len(train), seed)
            t_ours = time.perf_counter() - t0
            t0 = time.perf_counter()
            model = ctgan_pkg.CTGAN(epochs=epochs, batch_size=BATCH, pac=10, verbose=False)
            model.set_random_state(seed)
            model.fit(_frame(train), discrete_columns=discrete)
            theirs = _from_frame(model.sample(len(train)), train)
            t_theirs = time.perf_counter() - t0
            row = {"table": name, "seed": seed,
                   "gankit": {**_scores(train, test, ours, target, seed), "minutes": t_ours / 60},
                   "ctgan_package": {**_scores(train, test, theirs, target, seed),
                                     "minutes": t_theirs / 60}}
            rows.append(row)
            if log is not None:
                log(f"{name} seed {seed}: gankit efficacy "
                    f"{row['gankit']['efficacy_synthetic']:.3f} fidelity "
                    f"{row['gankit']['fidelity_mean']:.3f} ({t_ours / 60:.1f} min); ctgan "
                    f"{row['ctgan_package']['efficacy_synthetic']:.3f} / "
                    f"{row['ctgan_package']['fidelity_mean']:.3f} ({t_theirs / 60:.1f} min)")
    report = {"benchmark": "tabular", "epochs": epochs, "batch": BATCH, "rows": rows,
              "tables": list(tables)}
    if out is not None:
        atomic_write_json(Path(out) / "results.json", report)
    return report


def table(report: dict) -> str:
    """Markdown: per table, both synthesizers' mean +- s.e. of each measure."""
    keys = ("efficacy_synthetic", "efficacy_ratio", "fidelity_mean", "association_difference",
            "minutes")
    lines = ["| table | synthesizer | ML efficacy | ratio to real | column fidelity (KS/TV, "
             "lower better) | association diff. | minutes |", "|---|---|---|---|---|---|---|"]
    for name in report["tables"]:
        rows = [r for r in report["rows"] if r["table"] == name]
        for who in ("gankit", "ctgan_package"):
            cells = []
            for k in keys:
                m, se = mean_se([r[who][k] for r in rows])
                cells.append(fmt(m, se, 3 if k != "minutes" else 1))
            lines.append(f"| {name} | {who} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
