"""Tables: ``csv:PATH`` and built-in real tables, encoded for a tabular GAN.

- ``csv:PATH``: a CSV file with a header (`gankit.tabular.table.read_csv`); column types
  are inferred and overridden with ``--set data.columns.NAME=categorical`` (continuous,
  integer, categorical, boolean).
- ``breast_cancer``: scikit-learn's Wisconsin breast cancer table, 569 rows, 30
  continuous features and the ``diagnosis`` (malignant/benign).
- ``wine``: scikit-learn's wine table, 178 rows, 13 continuous features and the
  ``cultivar`` (3 classes).
- ``grunfeld`` (``pip install 'gankit[tables]'``): statsmodels' Grunfeld investment
  panel, 220 rows: ``firm`` (11 firm names, categorical), ``year`` (integer) and three
  continuous columns: a real table of mixed types that ships offline.

The built-in tables take a fixed split: ``NAME:train`` (80 % of the rows) and ``NAME:test``
(the other 20 %), drawn with a seed (`split_rows`), for protocols that hold rows out.

The dataset's ``x`` is the CTGAN encoding (`gankit.tabular.transform`, fitted here with
the seed 0) as float32 points [N, dim]; ``table`` holds the raw `Table` and its fitted
`TableTransform`, which a run saves to write synthetic rows in the original columns.
"""

from __future__ import annotations

import dataclasses

from gankit.data._common import Dataset, LoadOptions, need_arg, split_arg
from gankit.registry import DATASETS
from gankit.tabular.table import Column, Table, read_csv


@dataclasses.dataclass
class TableData:
    """A raw table and its fitted encoding."""

    table: Table
    transform: object  # gankit.tabular.transform.TableTransform


def _encoded(table: Table, name: str, opts: LoadOptions) -> Dataset:
    from gankit.tabular.transform import TableTransform

    if opts.resolution is not None or opts.channels is not None:
        raise ValueError(f"{name} is a table: data.resolution and data.channels apply to "
                         "images only")
    transform = TableTransform.fit(table, seed=0)
    x = transform.encode(table, seed=0)
    return Dataset(x=x, y=None, num_classes=0, kind="points", name=name,
                   table=TableData(table, transform))


def _sklearn_table(loader, target: str, labels, name: str) -> Table:
    bunch = loader()
    columns = [Column(str(f).replace(" ", "_"), "continuous", bunch.data[:, j].tolist())
               for j, f in enumerate(bunch.feature_names)]
    columns.append(Column(target, "categorical", [labels[int(t)] for t in bunch.target]))
    return Table(columns, name)


@DATASETS.register("csv", "a CSV table: csv:PATH; column types inferred, overridden with "
                          "data.columns.NAME=TYPE; missing values kept")
def csv_table(arg: str | None, opts: LoadOptions) -> Dataset:
    path = need_arg("csv", arg)
    return _encoded(read_csv(path, opts.columns), f"csv:{path}", opts)


@DATASETS.register("breast_cancer", "scikit-learn's breast cancer table: 569 rows, 30 "
                                    "continuous features and the diagnosis")
def breast_cancer(arg: str | None, opts: LoadOptions) -> Dataset:
    from sklearn.datasets import load_breast_cancer

    table = _sklearn_table(load_breast_cancer, "diagnosis", ["malignant", "benign"],
                           "breast_cancer")
    return _encoded(split_rows(_retype(table, opts), "breast_cancer", arg), _name(
        "breast_cancer", arg), opts)


@DATASETS.register("wine", "scikit-learn's wine table: 178 rows, 13 continuous features and "
                           "the cultivar")
def wine(arg: str | None, opts: LoadOptions) -> Dataset:
    from sklearn.datasets import load_wine

    table = _sklearn_table(load_wine, "cultivar", ["class_0", "class_1", "class_2"], "wine")
    return _encoded(split_rows(_retype(table, opts), "wine", arg), _name("wine", arg), opts)


@DATASETS.register("grunfeld", "statsmodels' Grunfeld panel: 220 rows, firm (categorical), "
                               "year (integer), 3 continuous; gankit[tables]")
def grunfeld(arg: str | None, opts: LoadOptions) -> Dataset:
    from gankit.utils.extras import require

    split_arg("grunfeld", arg)
    (module,) = require(("statsmodels.datasets.grunfeld",), "tables", "the grunfeld table")
    frame = module.load_pandas().data
    columns = [Column("firm", "categorical", [str(v) for v in frame["firm"]]),
               Column("year", "integer", [float(v) for v in frame["year"]])]
    columns += [Column(c, "continuous", [float(v) for v in frame[c]])
                for c in ("invest", "value", "capital")]
    return _encoded(split_rows(_retype(Table(columns, "grunfeld"), opts), "grunfeld", arg),
                    _name("grunfeld", arg), opts)


SPLIT_SEED = 2019
TEST_FRACTION = 0.2


def _name(name: str, arg: str | None) -> str:
    return name if arg is None else f"{name}:{arg}"


def split_rows(table: Table, name: str, arg: str | None) -> Table:
    """``table`` whole (``arg`` None), or its fixed ``train`` (80 %) / ``test`` (20 %)
    rows: a permutation seeded with `SPLIT_SEED`, test rows first."""
    import torch

    split_arg(name, arg)
    if arg is None:
        return table
    order = torch.randperm(len(table), generator=torch.Generator().manual_seed(SPLIT_SEED))
    cut = round(TEST_FRACTION * len(table))
    idx = order[:cut] if arg == "test" else order[cut:]
    return table.rows(sorted(idx.tolist()))


def _retype(table: Table, opts: LoadOptions) -> Table:
    """A built-in table with ``data.columns`` overrides applied (labels kept as strings)."""
    from gankit.tabular.table import TYPES

    for name, kind in (opts.columns or {}).items():
        if name not in table.names:
            raise ValueError(f"data.columns.{name}: no such column in {table.name}; columns: "
                             f"{', '.join(table.names)}")
        if kind not in TYPES:
            raise ValueError(f"data.columns.{name}={kind}: the type must be one of "
                             f"{', '.join(TYPES)}")
        col = table.column(name)
        if kind in ("categorical", "boolean") and col.type in ("continuous", "integer"):
            col.values = [None if v != v else (str(int(v)) if v == int(v) else repr(v))
                          for v in col.values]
        elif kind in ("continuous", "integer") and col.type in ("categorical", "boolean"):
            raise ValueError(f"data.columns.{name}={kind}: {table.name}'s {name} holds labels")
        col.type = kind
    return table


@DATASETS.register("breast_cancer_points", "breast cancer's 30 features, standardised, as "
                                           "points; labels malignant 0, benign 1 (anomaly "
                                           "detection); :train / :test as breast_cancer")
def breast_cancer_points(arg: str | None, opts: LoadOptions) -> Dataset:
    """x [N, 30] float32: each feature minus its mean over all 569 rows, divided by its
    standard deviation (label-free statistics); y the diagnosis (0 malignant, 1 benign)."""
    import torch
    from sklearn.datasets import load_breast_cancer

    split_arg("breast_cancer_points", arg)
    bunch = load_breast_cancer()
    x = torch.from_numpy(bunch.data).float()
    x = (x - x.mean(0)) / x.std(0)
    y = torch.from_numpy(bunch.target).long()
    if arg is not None:
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(SPLIT_SEED))
        cut = round(TEST_FRACTION * len(x))
        idx = (order[:cut] if arg == "test" else order[cut:]).sort().values
        x, y = x[idx], y[idx]
    return Dataset(x=x.contiguous(), y=y, num_classes=2, kind="points",
                   name=_name("breast_cancer_points", arg),
                   class_names=["malignant", "benign"])
