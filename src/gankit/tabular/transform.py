"""CTGAN's table encoding (Xu et al. 2019, "Modeling Tabular Data using Conditional GAN",
sec. 4.2), written from the paper.

- A continuous or integer column gets *mode-specific normalisation*: a variational
  (Dirichlet-process) Gaussian mixture of at most ``max_modes`` components (scikit-learn's
  ``BayesianGaussianMixture``, weight concentration 1e-3) is fitted to its values, and the
  components of weight above 0.005 are kept. A value v is encoded by a mode k drawn from
  its posterior over the kept modes (seeded) and alpha = (v - mu_k) / (4 sigma_k) clipped
  to [-0.99, 0.99]: one scalar (G's output through tanh) and a one-hot mode (softmax).
  Decoding takes the arg-max mode and v = alpha 4 sigma_k + mu_k, clipped to the column's
  observed range, rounded for integers. A column with missing values adds a two-way
  missing indicator (softmax); a missing value is encoded as alpha 0 in its column's most
  common mode with the indicator set, and decoded as missing.
- A categorical or boolean column is one-hot over its labels (a missing value is a label
  of its own), decoded by arg-max to the label as written.

``spans`` lists G's output blocks (width, activation, column); ``discrete`` the one-hot
blocks of categorical columns, with their label frequencies, for the conditional vector
(`gankit.tabular.sampler`). The fitted state is JSON (`state_dict`), saved with a run so
that sampling writes the original columns.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from gankit.tabular.table import Column, Table, _is_missing

WEIGHT_THRESHOLD = 0.005  # CTGAN keeps the modes above this weight


@dataclass
class Span:
    """One block of G's output: ``width`` values through ``activation`` (tanh or softmax)
    belonging to ``column``; ``role`` is alpha, mode, missing or label."""

    width: int
    activation: str
    column: str
    role: str


def _draw_rows(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of probabilities ``p`` [N, K], drawn by inverting each row's CDF
    with one uniform a row."""
    u = rng.random(len(p))[:, None]
    return np.minimum((p.cumsum(1) < u).sum(1), p.shape[1] - 1)


class TableTransform:
    """The fitted encoding of a table's columns (module docstring)."""

    def __init__(self, columns: list[dict]) -> None:
        self.columns = columns  # per column: name, type and its fitted parameters
        self.spans: list[Span] = []
        for c in columns:
            if c["type"] in ("continuous", "integer"):
                self.spans.append(Span(1, "tanh", c["name"], "alpha"))
                self.spans.append(Span(len(c["means"]), "softmax", c["name"], "mode"))
                if c["has_missing"]:
                    self.spans.append(Span(2, "softmax", c["name"], "missing"))
            else:
                self.spans.append(Span(len(c["labels"]), "softmax", c["name"], "label"))

    @property
    def dim(self) -> int:
        return sum(s.width for s in self.spans)

    @property
    def discrete(self) -> list[dict]:
        """The categorical columns' one-hot blocks: name, start offset, width and label
        counts (in label order)."""
        out, start = [], 0
        for span in self.spans:
            if span.role == "label":
                col = next(c for c in self.columns if c["name"] == span.column)
                out.append({"name": span.column, "start": start, "width": span.width,
                            "counts": col["counts"]})
            start += span.width
        return out

    # -- fitting -----------------------------------------------------------------------
    @classmethod
    def fit(cls, table: Table, max_modes: int = 10, seed: int = 0) -> TableTransform:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import BayesianGaussianMixture

        columns = []
        for col in table.columns:
            if col.type in ("continuous", "integer"):
                values = np.array([v for v in col.values if not _is_missing(v)], dtype=float)
                entry = {"name": col.name, "type": col.type,
                         "has_missing": len(values) < len(col.values),
                         "min": float(values.min()), "max": float(values.max())}
                if np.unique(values).size <= 1 or len(values) < 2:
                    means, stds, weights = [float(values.mean())], [1.0], [1.0]
                else:
                    gm = BayesianGaussianMixture(
                        n_components=min(max_modes, len(values)),
                        weight_concentration_prior_type="dirichlet_process",
                        weight_concentration_prior=1e-3, max_iter=100, n_init=1,
                        random_state=seed)
                    with warnings.catch_warnings():  # 100 iterations, as CTGAN: often
                        warnings.simplefilter("ignore", ConvergenceWarning)  # not converged
                        gm.fit(values.reshape(-1, 1))
                    keep = gm.weights_ > WEIGHT_THRESHOLD
                    if not keep.any():
                        keep = gm.weights_ == gm.weights_.max()
                    means = gm.means_.reshape(-1)[keep].tolist()
                    stds = np.sqrt(gm.covariances_.reshape(-1)[keep]).tolist()
                    weights = (gm.weights_[keep] / gm.weights_[keep].sum()).tolist()
                entry.update(means=means, stds=[max(s, 1e-6) for s in stds], weights=weights)
                columns.append(entry)
            else:
                labels = sorted({v for v in col.values if v is not None})
                if any(v is None for v in col.values):
                    labels.append(None)
                counts = [sum(1 for v in col.values if v == label) for label in labels]
                columns.append({"name": col.name, "type": col.type, "labels": labels,
                                "counts": counts})
        return cls(columns)

    # -- encoding ----------------------------------------------------------------------
    def _posterior(self, c: dict, values: np.ndarray) -> np.ndarray:
        """Posterior of each kept mode for ``values`` [n] under the fitted mixture (its kept
        components, their weights renormalised)."""
        mu, sd = np.array(c["means"]), np.array(c["stds"])
        logp = np.log(np.array(c["weights"])) - 0.5 * ((values[:, None] - mu) / sd) ** 2 \
            - np.log(sd)
        logp -= logp.max(1, keepdims=True)
        p = np.exp(logp)
        return p / p.sum(1, keepdims=True)

    def encode(self, table: Table, seed: int = 0) -> torch.Tensor:
        """The table as float32 [N, dim] (modes drawn from their posteriors, seeded)."""
        rng = np.random.default_rng(seed)
        blocks = []
        for c in self.columns:
            col = table.column(c["name"])
            if c["type"] in ("continuous", "integer"):
                values = np.array([math.nan if _is_missing(v) else v for v in col.values],
                                  dtype=float)
                missing = np.isnan(values)
                k_modes = len(c["means"])
                filled = np.where(missing, c["means"][0], values)
                mode = _draw_rows(self._posterior(c, filled), rng)
                if missing.any():  # missing: alpha 0 in the most common mode
                    common = np.bincount(mode[~missing], minlength=k_modes).argmax() \
                        if (~missing).any() else 0
                    mode = np.where(missing, common, mode)
                mu, sd = np.array(c["means"])[mode], np.array(c["stds"])[mode]
                alpha = np.clip((filled - mu) / (4 * sd), -0.99, 0.99)
                alpha = np.where(missing, 0.0, alpha)
                blocks += [alpha[:, None], np.eye(k_modes)[mode]]
                if c["has_missing"]:
                    blocks.append(np.eye(2)[missing.astype(int)])
            else:
                index = {label: i for i, label in enumerate(c["labels"])}
                unknown = [v for v in col.values if v not in index]
                if unknown:
                    raise ValueError(f"column {c['name']!r}: label {unknown[0]!r} was not in "
                                     f"the data the encoding was fitted on")
                blocks.append(np.eye(len(c["labels"]))[[index[v] for v in col.values]])
        return torch.from_numpy(np.concatenate(blocks, 1).astype(np.float32))

    def decode(self, x: torch.Tensor, name: str = "synthetic", seed: int | None = None) -> Table:
        """A `Table` of encoded rows ``x`` [N, dim] (G's outputs after their activations).

        With ``seed``, every one-hot block (mode, missing indicator, label) is first replaced
        by a one-hot draw from its values as probabilities (seeded): G's softmax outputs are
        then sampled as the Gumbel-softmax draws of training sample them (the arg-max of
        logits + Gumbel noise is a draw from their softmax), instead of always taking the
        likeliest entry, which drops the spread G leaves to the noise. Without, arg-max.
        """
        x = x.detach().double().cpu().numpy()
        if x.shape[1] != self.dim:
            raise ValueError(f"encoded rows have {x.shape[1]} values, the encoding {self.dim}")
        if seed is not None:
            x = self._draw_one_hot(x, np.random.default_rng(seed))
        columns, start = [], 0
        for c in self.columns:
            if c["type"] in ("continuous", "integer"):
                k_modes = len(c["means"])
                alpha = np.clip(x[:, start], -1, 1)
                mode = x[:, start + 1:start + 1 + k_modes].argmax(1)
                start += 1 + k_modes
                values = alpha * 4 * np.array(c["stds"])[mode] + np.array(c["means"])[mode]
                values = np.clip(values, c["min"], c["max"])
                if c["type"] == "integer":
                    values = np.round(values)
                if c["has_missing"]:
                    missing = x[:, start:start + 2].argmax(1) == 1
                    values = np.where(missing, np.nan, values)
                    start += 2
                columns.append(Column(c["name"], c["type"], values.tolist()))
            else:
                width = len(c["labels"])
                labels = [c["labels"][i] for i in x[:, start:start + width].argmax(1)]
                start += width
                columns.append(Column(c["name"], c["type"], labels))
        return Table(columns, name)

    def _draw_one_hot(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x, start = x.copy(), 0
        for span in self.spans:
            if span.activation == "softmax":
                p = np.clip(x[:, start:start + span.width], 0, None)
                p = p / np.maximum(p.sum(1, keepdims=True), 1e-12)
                x[:, start:start + span.width] = np.eye(span.width)[_draw_rows(p, rng)]
            start += span.width
        return x

    def state_dict(self) -> dict:
        return {"columns": self.columns}

    @classmethod
    def from_state(cls, state: dict) -> TableTransform:
        return cls(state["columns"])
