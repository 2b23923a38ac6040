"""Tables read from CSV: column types inferred (or set), missing values kept.

`read_csv` parses a file with a header row (Python's ``csv`` module, comma separated; the
dialect is sniffed, so semicolons and tabs work too) into a `Table`: one `Column` per
header field, each with a type:
- ``boolean``: the non-missing values are exactly two of true/false, yes/no, t/f, y/n,
  1/0 (any case);
- ``integer``: every non-missing value parses as an int;
- ``continuous``: every non-missing value parses as a float;
- ``categorical``: anything else (labels kept as written).
An empty field, ``NA``, ``N/A``, ``NaN``, ``null`` or ``?`` (any case) is missing. Missing
values are never dropped: the encoding (`gankit.tabular.transform`) keeps them as a
category or a missing indicator. Errors: an empty file or one without data rows, a row
with the wrong number of fields (named by line), a column with no value at all, a type
override naming an unknown column or type.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

TYPES = ("continuous", "integer", "categorical", "boolean")
MISSING = {"", "na", "n/a", "nan", "null", "none", "?"}
_TRUE = {"true", "yes", "t", "y", "1"}
_FALSE = {"false", "no", "f", "n", "0"}


@dataclass
class Column:
    """One column: its name, type and values (floats for numbers, NaN missing; strings for
    categorical and boolean, None missing)."""

    name: str
    type: str
    values: list = field(repr=False)

    @property
    def missing(self) -> int:
        return sum(1 for v in self.values if _is_missing(v))


@dataclass
class Table:
    """Columns of equal length."""

    columns: list[Column]
    name: str = "table"

    def __len__(self) -> int:
        return len(self.columns[0].values) if self.columns else 0

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def rows(self, idx) -> Table:
        """The rows ``idx`` (a sequence of ints) as a new table."""
        return Table([Column(c.name, c.type, [c.values[i] for i in idx]) for c in self.columns],
                     self.name)


def _is_missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _as_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def infer_type(raw: list[str | None]) -> str:
    """The type of a column's non-missing strings (module docstring)."""
    present = [v for v in raw if v is not None]
    lowered = {v.strip().lower() for v in present}
    if len(lowered) == 2 and lowered <= _TRUE | _FALSE and (lowered & _TRUE) and \
            (lowered & _FALSE):
        return "boolean"
    numbers = [_as_float(v) for v in present]
    if all(n is not None and math.isfinite(n) for n in numbers):
        if all(n == int(n) and "." not in v and "e" not in v.lower()
               for n, v in zip(numbers, present)):
            return "integer"
        return "continuous"
    return "categorical"


def convert(raw: list[str | None], kind: str, name: str) -> list:
    """Values of one column as ``kind`` (floats with NaN, or strings with None)."""
    if kind in ("continuous", "integer"):
        out = []
        for v in raw:
            if v is None:
                out.append(math.nan)
                continue
            number = _as_float(v)
            if number is None or not math.isfinite(number):
                raise ValueError(f"column {name!r} is set to {kind} but holds {v!r}; set it "
                                 f"to categorical (data.columns.{name}=categorical)")
            out.append(number)
        return out
    return list(raw)  # categorical and boolean keep their labels as written


def parse_csv(text: str, where: str, types: dict[str, str] | None = None) -> Table:
    """A `Table` of CSV ``text`` (``where`` names it in errors); ``types`` overrides the
    inferred type of named columns."""
    if not text.strip():
        raise ValueError(f"{where}: the file is empty; expected a header row and data rows")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = next(reader)
    names = [h.strip() for h in header]
    if len(set(names)) != len(names) or any(not n for n in names):
        raise ValueError(f"{where}: the header needs distinct, non-empty column names, got "
                         f"{names}")
    raw: list[list[str | None]] = [[] for _ in names]
    for row in reader:
        if not row or all(not f.strip() for f in row):
            continue  # a blank line
        if len(row) != len(names):
            raise ValueError(f"{where}: line {reader.line_num} has {len(row)} fields, the "
                             f"header {len(names)}; fix the row (quote fields that hold "
                             f"the separator)")
        for column, value in zip(raw, row):
            column.append(None if value.strip().lower() in MISSING else value.strip())
    if not raw[0]:
        raise ValueError(f"{where}: the file has a header but no data rows")
    types = dict(types or {})
    unknown = [n for n in types if n not in names]
    if unknown:
        raise ValueError(f"data.columns.{unknown[0]}: no such column in {where}; columns: "
                         f"{', '.join(names)}")
    columns = []
    for name, values in zip(names, raw):
        if all(v is None for v in values):
            raise ValueError(f"{where}: column {name!r} has no value in any row; remove it")
        kind = types.get(name) or infer_type(values)
        if kind not in TYPES:
            raise ValueError(f"data.columns.{name}={kind}: the type must be one of "
                             f"{', '.join(TYPES)}")
        columns.append(Column(name, kind, convert(values, kind, name)))
    return Table(columns, where)


def read_csv(path: str | Path, types: dict[str, str] | None = None) -> Table:
    """`parse_csv` of a file (UTF-8, a byte-order mark allowed)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"csv:{path}: no such file")
    return parse_csv(path.read_text(encoding="utf-8-sig"), f"csv:{path}", types)


def write_csv(table: Table, path: str | Path) -> None:
    """Write ``table`` as CSV (missing values as empty fields; integers without a decimal
    point), atomically."""
    from gankit.utils.io import atomic_write_text

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.names)
    for i in range(len(table)):
        row = []
        for c in table.columns:
            v = c.values[i]
            if _is_missing(v):
                row.append("")
            elif c.type == "integer":
                row.append(str(int(round(v))))
            elif c.type == "continuous":
                row.append(repr(float(v)))
            else:
                row.append(str(v))
        writer.writerow(row)
    atomic_write_text(path, buf.getvalue())
