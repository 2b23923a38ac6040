"""How good a synthetic table is: fidelity per column, association structure, machine-learning
efficacy and privacy (the measures of the CTGAN paper's benchmark and SDMetrics, written
here with scipy and scikit-learn).

- **Column fidelity**: a continuous or integer column's two-sample Kolmogorov-Smirnov
  statistic (non-missing values; 0 = same distribution, 1 = disjoint), a categorical or
  boolean column's total variation distance between the label frequencies (missing a label
  of its own). ``fidelity_mean`` averages all columns (lower is better).
- **Association difference**: for every pair of columns, an association in [0, 1] (|Pearson
  r| for two numbers, Cramer's V for two label columns, the correlation ratio eta for a
  number and labels; missing rows of the pair dropped), its absolute difference between
  real and synthetic tables, averaged over the pairs.
- **ML efficacy** (Xu et al. 2019, sec. 5): a gradient-boosting model (scikit-learn's
  ``HistGradientBoosting*``, seeded) trained on the synthetic rows and one trained on the
  real training rows, both tested on real held-out rows, predicting ``target``: accuracy
  for labels, R^2 for numbers; ``efficacy_ratio`` = synthetic / real.
- **Privacy** (distance to the closest record, DCR): every column standardised with the
  real training rows' statistics (numbers; missing as 0 with an indicator) or one-hot
  (labels); the median distance of each synthetic row to its nearest training row, and the
  same for held-out real rows; ``dcr_ratio`` = synthetic / held-out (below 1: synthetic rows
  sit closer to training rows than new real rows do, a sign of copying).
"""

from __future__ import annotations

import math

import numpy as np

from gankit.tabular.table import Table, _is_missing

NUMERIC = ("continuous", "integer")


def _numbers(values) -> np.ndarray:
    return np.array([v for v in values if not _is_missing(v)], dtype=float)


def _labels(values) -> list[str]:
    return ["<missing>" if v is None else str(v) for v in values]


def column_fidelity(real: Table, synth: Table) -> dict[str, float]:
    """``fidelity_<column>`` per column and ``fidelity_mean`` (module docstring)."""
    from scipy.stats import ks_2samp

    out = {}
    for col in real.columns:
        other = synth.column(col.name)
        if col.type in NUMERIC:
            a, b = _numbers(col.values), _numbers(other.values)
            stat = 1.0 if len(a) == 0 or len(b) == 0 else float(ks_2samp(a, b).statistic)
        else:
            a, b = _labels(col.values), _labels(other.values)
            labels = sorted(set(a) | set(b))
            pa = np.array([a.count(x) for x in labels]) / len(a)
            pb = np.array([b.count(x) for x in labels]) / len(b)
            stat = float(0.5 * np.abs(pa - pb).sum())
        out[f"fidelity_{col.name}"] = stat
    out["fidelity_mean"] = float(np.mean(list(out.values())))
    return out


def _cramers_v(a: list[str], b: list[str]) -> float:
    from scipy.stats.contingency import association, crosstab

    table = crosstab(a, b).count
    if min(table.shape) < 2:
        return 0.0
    return float(association(table, method="cramer"))


def _eta(labels: list[str], values: np.ndarray) -> float:
    """Correlation ratio: sqrt(between-group variance / total variance)."""
    total = ((values - values.mean()) ** 2).sum()
    if total == 0:
        return 0.0
    between = sum(len(g) * (g.mean() - values.mean()) ** 2
                  for g in (values[np.array(labels) == x] for x in set(labels)))
    return float(math.sqrt(between / total))


def association(table: Table, a: str, b: str) -> float:
    """The association of columns ``a`` and ``b`` in [0, 1] (module docstring)."""
    ca, cb = table.column(a), table.column(b)
    keep = [i for i in range(len(table)) if not _is_missing(ca.values[i])
            and not _is_missing(cb.values[i])]
    if len(keep) < 3:
        return 0.0
    va, vb = [ca.values[i] for i in keep], [cb.values[i] for i in keep]
    if ca.type in NUMERIC and cb.type in NUMERIC:
        x, y = np.array(va, float), np.array(vb, float)
        if x.std() == 0 or y.std() == 0:
            return 0.0
        return float(abs(np.corrcoef(x, y)[0, 1]))
    if ca.type not in NUMERIC and cb.type not in NUMERIC:
        return _cramers_v(_labels(va), _labels(vb))
    labels, values = (va, vb) if cb.type in NUMERIC else (vb, va)
    return _eta(_labels(labels), np.array(values, float))


def association_difference(real: Table, synth: Table) -> float:
    """Mean over column pairs of |association(real) - association(synthetic)|."""
    names = real.names
    diffs = [abs(association(real, a, b) - association(synth, a, b))
             for i, a in enumerate(names) for b in names[i + 1:]]
    return float(np.mean(diffs)) if diffs else 0.0


def design(table: Table, reference: Table, target: str | None = None) -> np.ndarray:
    """Numbers (standardised by ``reference``, missing -> 0 plus an indicator) and one-hot
    labels (``reference``'s labels), without ``target``: [N, F]."""
    parts = []
    for col in reference.columns:
        if col.name == target:
            continue
        values = table.column(col.name).values
        if col.type in NUMERIC:
            ref = _numbers(col.values)
            mu, sd = (ref.mean(), ref.std() or 1.0) if len(ref) else (0.0, 1.0)
            x = np.array([0.0 if _is_missing(v) else (v - mu) / sd for v in values])
            parts.append(x[:, None])
            if any(_is_missing(v) for v in col.values):
                parts.append(np.array([[float(_is_missing(v))] for v in values]))
        else:
            labels = sorted(set(_labels(col.values)))
            got = _labels(values)
            parts.append(np.array([[float(g == x) for x in labels] for g in got]))
    return np.concatenate(parts, 1) if parts else np.zeros((len(table), 0))


def ml_efficacy(train: Table, test: Table, synth: Table, target: str,
                seed: int = 0) -> dict[str, float]:
    """Scores of a gradient-boosting model trained on ``synth`` and on ``train``, both
    tested on ``test`` (accuracy for a label target, R^2 for a number)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import accuracy_score, r2_score

    col = train.column(target)
    numeric = col.type in NUMERIC
    scores = {}
    for name, source in (("real", train), ("synthetic", synth)):
        x = design(source, train, target)
        y_raw = source.column(target).values
        keep = [i for i, v in enumerate(y_raw) if not _is_missing(v)]
        y = np.array([y_raw[i] for i in keep], float) if numeric else \
            np.array(_labels([y_raw[i] for i in keep]))
        x = x[keep]
        x_test = design(test, train, target)
        t_raw = test.column(target).values
        t_keep = [i for i, v in enumerate(t_raw) if not _is_missing(v)]
        y_test = np.array([t_raw[i] for i in t_keep], float) if numeric else \
            np.array(_labels([t_raw[i] for i in t_keep]))
        if not numeric and len(set(y)) < 2:  # a synthesizer that draws one label only
            scores[name] = float(np.mean(y_test == y[0])) if len(y) else 0.0
            continue
        model = (HistGradientBoostingRegressor if numeric else
                 HistGradientBoostingClassifier)(random_state=seed)
        model.fit(x, y)
        pred = model.predict(x_test[t_keep])
        scores[name] = float(r2_score(y_test, pred) if numeric else accuracy_score(y_test, pred))
    real = scores["real"]
    return {"efficacy_real": real, "efficacy_synthetic": scores["synthetic"],
            "efficacy_ratio": scores["synthetic"] / real if real else float("nan"),
            "efficacy_metric": "r2" if numeric else "accuracy"}


def dcr(train: Table, holdout: Table, synth: Table) -> dict[str, float]:
    """Median distance to the closest training record of synthetic and of held-out rows,
    and their ratio (module docstring)."""
    from sklearn.neighbors import NearestNeighbors

    base = design(train, train)
    nn = NearestNeighbors(n_neighbors=1).fit(base)
    d_synth = float(np.median(nn.kneighbors(design(synth, train))[0]))
    d_hold = float(np.median(nn.kneighbors(design(holdout, train))[0]))
    return {"dcr_synthetic": d_synth, "dcr_holdout": d_hold,
            "dcr_ratio": d_synth / d_hold if d_hold else float("nan")}
