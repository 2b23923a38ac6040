"""Atomic file writes (temp file in the same folder, flush, fsync, rename) and the JSON-lines
records of a run's ``log.jsonl``.

A crash mid-write leaves the previous file intact, never a truncated one. The temp file,
``.NAME.XXXXXXXX.tmp`` beside ``NAME``, is removed on any error; a kill can leave one
behind, which `remove_stale_temps` clears. A full disk raises ``OSError(ENOSPC)`` whose
``filename`` is the file being written.

``log.jsonl`` holds one record per line in strict JSON (RFC 8259, which has no NaN or
infinity): `json_record` writes a non-finite float as the string ``"nan"``, ``"inf"`` or
``"-inf"``, and `read_jsonl` turns those strings back into floats (it also reads the bare
``NaN`` / ``Infinity`` tokens of logs written before this format).
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from gankit.utils.console import warn

# ".NAME." + tempfile.mkstemp's 8 random characters (a-z, 0-9, _) + ".tmp"
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temp file beside ``path``; on success it is fsynced and renamed over it."""
    path = Path(path)
    with _temp_file(path, mode) as (f, tmp):
        yield f
    _commit([(tmp, path)])


def atomic_write_all(files: Sequence[tuple[str | os.PathLike, bytes]]) -> None:
    """Write several files as a group: each ``(path, data)`` goes to its temp file, and only
    when all are written and fsynced are they renamed into place, in the order given.

    A failed write (e.g. a full disk) replaces none of the files; a kill between two renames
    can leave the first ones replaced.
    """
    temps: list[tuple[str, Path]] = []
    try:
        for path, data in files:
            with _temp_file(Path(path), "wb") as (f, tmp):
                f.write(data)
            temps.append((tmp, Path(path)))
    except BaseException:
        for tmp, _ in temps:
            _unlink(tmp)
        raise
    _commit(temps)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    atomic_write_all([(path, data)])


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the temp files (``.NAME.XXXXXXXX.tmp``) that a killed atomic write left in
    ``folder``, and nothing else; returns the paths removed. Call it only while no other
    process writes there (e.g. under the run's lock)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if _TEMP_NAME.match(p.name) and p.is_file()]
    for path in stale:
        _unlink(str(path))
    return stale


# -- log.jsonl ---------------------------------------------------------------------------
def json_record(record: dict) -> str:
    """``record`` as one line of strict JSON; NaN and +-inf become "nan", "inf", "-inf"."""
    return json.dumps(_strict(record), allow_nan=False)


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append ``record`` to a JSON-lines file as one `json_record` line."""
    line = json_record(record) + "\n"
    try:
        with open(path, "a") as f:
            f.write(line)
    except OSError as exc:
        _raise_named(exc, Path(path))
        raise


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The records of a JSON-lines file (as `json_record` writes them), in order.

    Blank lines are skipped. A last line that does not parse (cut short by a kill, or still
    being written) is dropped with a warning naming the file and line.

    Raises:
        ValueError: a line before the last is not a JSON object (names the file and line).
    """
    path = Path(path)
    lines = [(number, line) for number, line in
             enumerate(path.read_bytes().decode("utf-8", "replace").split("\n"), 1)
             if line.strip()]
    records = []
    for k, (number, line) in enumerate(lines):
        try:
            record = json.loads(line, object_hook=_floats_back)
            if not isinstance(record, dict):
                raise ValueError(f"a {type(record).__name__}, not a record")
        except ValueError as err:  # json.JSONDecodeError is a ValueError
            if k == len(lines) - 1:
                warn(f"{path}, line {number}: dropped an incomplete last record (the run "
                     "was stopped while writing it, or is writing it now)")
                break
            raise ValueError(f"{path}, line {number}: not JSON ({err}); fix or delete that "
                             "line") from None
        records.append(record)
    return records


def _strict(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def _float_back(value):
    if isinstance(value, str):
        return _NON_FINITE.get(value, value)
    if isinstance(value, list):
        return [_float_back(v) for v in value]
    return value


def _floats_back(obj: dict) -> dict:
    return {k: _float_back(v) for k, v in obj.items()}


# -- temp files --------------------------------------------------------------------------
@contextmanager
def _temp_file(path: Path, mode: str) -> Iterator[tuple[IO, str]]:
    """``(file, temp path)`` beside ``path``, flushed and fsynced on success; on any error
    the temp file is removed."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, mode) as f:
            yield f, tmp
            f.flush()
            os.fsync(f.fileno())
    except BaseException as exc:
        if tmp is not None:
            _unlink(tmp)
        _raise_named(exc, path)
        raise


def _commit(temps: list[tuple[str, Path]]) -> None:
    """Rename each temp file over its path, in order; on an error the rest are removed."""
    for i, (tmp, path) in enumerate(temps):
        try:
            os.replace(tmp, path)
        except BaseException:
            for rest, _ in temps[i:]:
                _unlink(rest)
            raise
    for folder in dict.fromkeys(path.parent for _, path in temps):
        _fsync_dir(folder)


def _raise_named(exc: BaseException, path: Path) -> None:
    """For a full disk, raise ``OSError(ENOSPC)`` naming ``path`` (write and fsync name no
    file, mkstemp names the temp file); return for any other error."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC and exc.filename != str(path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from exc


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def truncate_log(path: str | os.PathLike, step: int) -> None:
    """Keep the records of the JSON-lines log ``path`` up to ``step`` (those a resume or a
    rollback continues from), drop a last line cut short (with a warning) and rewrite the
    rest as strict JSON."""
    path = Path(path)
    if not path.exists():
        return
    keep = [r for r in read_jsonl(path) if r.get("step", 0) <= step]
    atomic_write_text(path, "".join(json_record(r) + "\n" for r in keep))
