"""``npz:PATH``: ``numpy.savez`` arrays: images or points ``x``, optional labels ``y``.

Shape of ``x`` decides the kind:

- ``[N, C, H, W]`` or ``[N, H, W, C]`` with C in {1, 3} (NCHW wins if both read as valid),
  or ``[N, H, W]`` (one channel): images, returned as float32 ``[N, C, H, W]`` in [-1, 1].
- ``[N, D]``: points, returned unchanged as float32 (any real dtype).

NaN and infinite values are refused, naming the first (points after the conversion to
float32, so 1e300 is refused too).

Image value rule: uint8 is 0..255 and maps by ``x / 127.5 - 1``. Float arrays with every value
in [0, 1] map by ``2x - 1``; otherwise values in [-1, 1] are kept as they are; anything else is
an error (so a float set in [-1, 1] that happens to have no negative value is read as [0, 1]).
``y``, if present, is a 1-D integer array of length N with values >= 0; num_classes = max + 1.

Streaming (`gankit.data.streams`): images whose float32 size is above the threshold (or any
with ``stream=True``) are not loaded: when ``x`` is stored uncompressed in the archive
(``numpy.savez``), ``x`` becomes an `ArrayStore` memory-mapping it in place, which applies
the value rule, resolution and channels to the rows it reads (the same bits as the
in-memory reader). A compressed archive's ``x`` (``numpy.savez_compressed``) is first
decompressed once into the data cache (`extract_x`; also ``gankit data cache npz:PATH``)
and mapped there.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import torch

from gankit.data._common import Dataset, LoadOptions, need_arg
from gankit.data._folder_index import data_cache_dir, writable_cache
from gankit.data._store import ArrayStore, streams
from gankit.registry import DATASETS
from gankit.utils.guards import check_finite, finite_float32
from gankit.utils.io import atomic_open

_EXPECTED = "x of shape [N, C, H, W], [N, H, W, C] (C = 1 or 3), [N, H, W] or points [N, D]"


def _to_nchw(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim == 3:
        return x[:, None]
    if x.shape[1] in (1, 3):
        return x
    if x.shape[3] in (1, 3):
        return x.transpose(0, 3, 1, 2)
    raise ValueError(f"{where}: x has shape {x.shape}, with no channel axis of size 1 or 3")


def _scale(x: np.ndarray, where: str) -> torch.Tensor:
    """Images to float32 in [-1, 1] by the module's value rule."""
    if x.dtype == np.uint8:
        return torch.from_numpy(x).float() / 127.5 - 1
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{where}: image x must be uint8 (0..255) or float, got {x.dtype}")
    low, high = float(x.min()), float(x.max())
    t = torch.from_numpy(x.astype(np.float32))
    if low >= 0 and high <= 1:
        return t * 2 - 1
    if low >= -1 and high <= 1:
        return t
    raise ValueError(
        f"{where}: float image x must lie in [0, 1] or [-1, 1], got [{low:g}, {high:g}]; "
        "save 0..255 data as uint8"
    )


def _labels(data: np.lib.npyio.NpzFile, n: int, where: str) -> torch.Tensor | None:
    if "y" not in data.files:
        return None
    y = data["y"]
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{where}: y must be a 1-D integer array, got {y.dtype} {y.shape}")
    if len(y) != n:
        raise ValueError(f"{where}: y has {len(y)} labels but x has {n} samples")
    if y.min() < 0:
        raise ValueError(f"{where}: labels y must be >= 0, got min {y.min()}")
    return torch.from_numpy(y.astype(np.int64))


def _x_member(path: Path) -> tuple[int | None, tuple, bool, np.dtype] | None:
    """(offset of the data of ``x.npy`` in the archive file, or None when the member is
    compressed; shape; Fortran order; dtype), or None without an ``x.npy``."""
    with zipfile.ZipFile(path) as archive:
        try:
            info = archive.getinfo("x.npy")
        except KeyError:
            return None
        with archive.open(info) as f:
            version = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read(f)
            header = f.tell()
    if info.compress_type != zipfile.ZIP_STORED:
        return None, shape, fortran, dtype
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)  # the member's local header: its name and extra field follow
        if local[:4] != b"PK\x03\x04":
            return None, shape, fortran, dtype
        name_len, extra_len = struct.unpack("<HH", local[26:30])
    return info.header_offset + 30 + name_len + extra_len + header, shape, fortran, dtype


def extract_x(path: Path) -> tuple[Path, bool]:
    """``x.npy`` of a compressed archive decompressed once into the data cache
    (`gankit.data._folder_index.data_cache_dir`), keyed by the archive's absolute path,
    size and mtime, written atomically; the archive's older extractions are deleted.
    Returns (the .npy, whether it was written now)."""
    path = path.resolve()
    st = path.stat()
    where = hashlib.sha256(str(path).encode()).hexdigest()[:10]
    key = hashlib.sha256(f"{path}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:20]
    prefix = f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', path.name)[:40]}-{where}-npz"
    out = data_cache_dir() / f"{prefix}-{key}.npy"
    if out.is_file():
        return out, False
    writable_cache()
    with zipfile.ZipFile(path) as archive, archive.open("x.npy") as src, \
            atomic_open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 22)
    for old in out.parent.glob(f"{prefix}-*.npy"):
        if old != out:
            old.unlink(missing_ok=True)
    return out, True


def _npy_offset(path: Path) -> int:
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        read(f)
        return f.tell()


def _layout(shape: tuple) -> str | None:
    if len(shape) == 3:
        return "nhw"
    if len(shape) == 4 and shape[1] in (1, 3):
        return "nchw"
    if len(shape) == 4 and shape[3] in (1, 3):
        return "nhwc"
    return None


def _stream(path: Path, where: str, opts: LoadOptions) -> ArrayStore | None:
    """``x`` as an `ArrayStore` when it is images that stream (see the module docstring)."""
    member = _x_member(path)
    if member is None:
        return None
    offset, shape, fortran, dtype = member
    layout = _layout(shape)
    if layout is None or shape[0] == 0 or not (dtype == np.uint8
                                                or np.issubdtype(dtype, np.floating)):
        return None  # the in-memory reader gives the error
    store = ArrayStore(path, offset or 0, dtype, shape, layout, resolution=opts.resolution,
                       channels=opts.channels, fortran=fortran, workers=opts.workers)
    if not streams(opts.stream, store.n, store.channels, max(store.size)):
        return None
    if offset is None:  # compressed: decompressed once into the data cache, mapped there
        extracted, _ = extract_x(path)
        store.path, store.offset = str(extracted), _npy_offset(extracted)
    if dtype != np.uint8:  # the value rule needs the range; NaN and inf are refused
        low, high = np.inf, -np.inf
        for start in range(0, store.n, 1024):
            part = store.array()[start:start + 1024]
            if not np.isfinite(part).all():
                check_finite(np.asarray(part), f"{where} (rows from {start})")
            low, high = min(low, float(part.min())), max(high, float(part.max()))
        if low >= 0 and high <= 1:
            store.scale = "unit"
        elif low >= -1 and high <= 1:
            store.scale = "signed"
        else:
            _scale(np.array([low, high], dtype=np.float32), where)  # raises its error
    store._array = None  # the map is opened again where it is read
    return store


@DATASETS.register("npz", "npz:PATH - array x (images NCHW/NHWC/NHW or points N x D), labels y")
def npz(arg: str | None, opts: LoadOptions) -> Dataset:
    """Load ``x`` (and ``y``) from a .npz file; see the module docstring for the rules."""
    path = Path(need_arg("npz", arg)).expanduser()
    where = f"npz:{arg}"
    if not path.is_file():
        raise ValueError(f"{where}: no such file")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"{where}: not a readable .npz archive ({err})") from err
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{where}: expected a .npz archive (numpy.savez), got a single array")
    with data:
        if "x" not in data.files:
            have = ", ".join(repr(k) for k in data.files) or "none"
            raise ValueError(f"{where}: no array 'x' (it has: {have}); expected {_EXPECTED}")
        store = _stream(path, where, opts) if "x" in data.files else None
        if store is not None:
            y = _labels(data, store.n, where)
            return Dataset(x=store, y=y, num_classes=int(y.max()) + 1 if y is not None else 0,
                           kind="image", name=where)
        x = data["x"]
        if x.ndim not in (2, 3, 4) or len(x) == 0:
            raise ValueError(f"{where}: expected {_EXPECTED} with N >= 1, got shape {x.shape}")
        y = _labels(data, len(x), where)
    num_classes = int(y.max()) + 1 if y is not None else 0
    if x.ndim == 2:
        if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
            raise ValueError(f"{where}: points x must be a real numeric array, got {x.dtype}")
        points = torch.from_numpy(finite_float32(x, where))
        return Dataset(x=points, y=y, num_classes=num_classes, kind="points", name=where)
    if np.issubdtype(x.dtype, np.floating):
        check_finite(x, where)  # indices in the file's own layout
    images = _scale(np.ascontiguousarray(_to_nchw(x, where)), where)
    return Dataset(x=images, y=y, num_classes=num_classes, kind="image", name=where)
