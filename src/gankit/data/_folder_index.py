"""Decoding a folder of images, once: its index (which files are readable, whether all are
grey) and its decoded uint8 cache, both stored on disk and keyed by the files.

Files live in ``$GANKIT_CACHE/data`` (default ``~/.cache/gankit/data``), named
``{folder}-{path hash}-{R}px-{key}.json`` (the index) and ``...-{key}.npy`` (the pixels,
uint8 RGB ``[N, R, R, 3]``; grey datasets are converted when read). The key hashes the
folder's absolute path, the resolution and every image's relative path, size and mtime,
so an added, removed or rewritten file gives a new key, and the old files of that folder
and resolution are deleted when the new ones are written. Both are written to a temp file
and renamed (`gankit.utils.io`): a killed build leaves no file that is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from gankit.utils.io import atomic_open, atomic_write_json

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
READ_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
INDEX_VERSION = 1
_CHUNK = 256  # images per decode task
# Pillow's modes for 16-bit grey (a 16-bit PNG opens as I;16, in older Pillows as I)
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_HEADER_BYTES = 128  # fixed .npy header (magic + length + dict), rewritten with the final N


def data_cache_dir() -> Path:
    """Where folder indexes and decoded caches live: $GANKIT_CACHE/data or
    ~/.cache/gankit/data."""
    root = os.environ.get("GANKIT_CACHE") or os.path.join(Path.home(), ".cache", "gankit")
    return Path(root) / "data"


def find_images(root: Path) -> list[Path]:
    """All image files below ``root``, in deterministic order."""
    files = [p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()]
    return sorted(files, key=lambda p: p.relative_to(root).parts)


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit grey -> 8-bit grey: v -> round(v * 255 / 65535). (Pillow's own conversion
    clips every value above 255 to white.)"""
    v = np.clip(np.asarray(img, dtype=np.int64), 0, 65535)
    return Image.fromarray(((v * 255 + 32767) // 65535).astype(np.uint8))  # mode L


def read_image(path: Path, resolution: int) -> np.ndarray:
    """One image as uint8 ``[resolution, resolution, 3]``."""
    with Image.open(path) as img:
        img.draft("RGB", (resolution, resolution))  # JPEG: decode at a reduced scale, if >= res
        img = ImageOps.exif_transpose(img)
        if img.mode in _SIXTEEN_BIT:
            img = _to_8bit(img)
        img = img.convert("RGB")
        # Crops the centred region of the target aspect, then resizes it: the same pixels as
        # resizing the shorter side to `resolution` and centre-cropping.
        img = ImageOps.fit(img, (resolution, resolution), method=Image.Resampling.BICUBIC)
        return np.asarray(img)


class _Chunks(torch.utils.data.Dataset):
    """Decode task ``i``: files ``[i * _CHUNK, (i + 1) * _CHUNK)`` -> (uint8 pixels of the
    readable ones [k, R, R, 3] or None, {position: error} of the others, all grey?)."""

    def __init__(self, files: list[Path], resolution: int, keep: bool) -> None:
        self.files, self.resolution, self.keep = files, resolution, keep

    def __len__(self) -> int:
        return (len(self.files) + _CHUNK - 1) // _CHUNK

    def __getitem__(self, i: int):
        part = self.files[i * _CHUNK:(i + 1) * _CHUNK]
        pixels, errors, grey = [], {}, True
        for j, path in enumerate(part):
            try:
                image = read_image(path, self.resolution)
            except READ_ERRORS as err:
                errors[i * _CHUNK + j] = str(err)
                continue
            grey = grey and bool((image[..., 0] == image[..., 1]).all()
                                 and (image[..., 0] == image[..., 2]).all())
            if self.keep:
                pixels.append(image)
        stacked = np.stack(pixels) if self.keep and pixels else None
        return stacked, errors, grey


def decode_all(files: list[Path], resolution: int, workers: int, keep: bool):
    """Decode every file in order, in ``workers`` processes (0: here); yields each task's
    (pixels or None, {index: error}, all grey)."""
    tasks = _Chunks(files, resolution, keep)
    loader = torch.utils.data.DataLoader(tasks, batch_size=None,  # one task: no process
                                         num_workers=workers if len(tasks) > 1 else 0)
    yield from loader


def listing_key(root: Path, files: list[Path], resolution: int) -> str:
    """Hash of the folder's path, the resolution and each file's relative path, size and
    mtime (nanoseconds)."""
    digest = hashlib.sha256(f"{INDEX_VERSION}|{root.resolve()}|{resolution}".encode())
    for path in files:
        st = path.stat()
        digest.update(f"\0{path.relative_to(root).as_posix()}|{st.st_size}|{st.st_mtime_ns}"
                      .encode())
    return digest.hexdigest()[:20]


def _prefix(root: Path, resolution: int) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", root.resolve().name or "root")[:40]
    where = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:10]
    return f"{safe}-{where}-{resolution}px"


def index_path(root: Path, resolution: int, key: str) -> Path:
    return data_cache_dir() / f"{_prefix(root, resolution)}-{key}.json"


def pixels_path(root: Path, resolution: int, key: str) -> Path:
    return data_cache_dir() / f"{_prefix(root, resolution)}-{key}.npy"


def read_index(path: Path) -> dict | None:
    """The stored index, or None when absent or unreadable."""
    try:
        index = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(index, dict) and index.get("version") == INDEX_VERSION
    return index if ok else None


def remove_stale(root: Path, resolution: int, key: str) -> None:
    """Delete this folder's index and caches at ``resolution`` under another key, and temp
    files of killed builds older than an hour."""
    folder = data_cache_dir()
    prefix = _prefix(root, resolution)
    for path in folder.glob(f"{prefix}*"):
        if not path.name.endswith(f"-{key}.json") and not path.name.endswith(f"-{key}.npy"):
            path.unlink(missing_ok=True)
    for path in folder.glob(f".{prefix}*.tmp"):
        try:
            if time.time() - path.stat().st_mtime > 3600:
                path.unlink(missing_ok=True)
        except OSError:
            pass


def _npy_header(n: int, resolution: int) -> bytes:
    """A version 1.0 .npy header of exactly `_HEADER_BYTES` for uint8 [n, R, R, 3]."""
    text = (f"{{'descr': '|u1', 'fortran_order': False, "
            f"'shape': ({n}, {resolution}, {resolution}, 3), }}")
    text = text.ljust(_HEADER_BYTES - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def scan(files: list[Path], resolution: int, workers: int, *, keep: bool = False,
         out: Path | None = None, strict: bool = False,
         where: str = "") -> tuple[dict, np.ndarray | None]:
    """Decode every file once: the index ``{"skipped": [[index, error], ...], "grey": bool}``
    and, with ``keep``, the readable images' pixels (uint8 RGB ``[N, R, R, 3]``, written to
    the .npy ``out`` atomically when given, else returned).

    Raises:
        ValueError: ``strict`` and a file cannot be read.
    """
    skipped: list[list] = []
    all_grey, parts = True, []
    with atomic_open(out, "wb") if out is not None else nullcontext() as f:
        if f is not None:
            f.write(_npy_header(len(files), resolution))
        for pixels, errors, is_grey in decode_all(files, resolution, workers, keep):
            for i, err in sorted(errors.items()):
                if strict:
                    raise ValueError(f"{where}: cannot read image {files[i]}: {err}")
                skipped.append([i, err])
            all_grey = all_grey and is_grey
            if pixels is None:
                continue
            if f is not None:
                f.write(np.ascontiguousarray(pixels).data)
            else:
                parts.append(pixels)
        if f is not None:  # the header now holds the number of readable images
            f.seek(0)
            f.write(_npy_header(len(files) - len(skipped), resolution))
    index = {"version": INDEX_VERSION, "skipped": skipped, "grey": all_grey}
    if not keep or out is not None:
        return index, None
    empty = np.empty((0, resolution, resolution, 3), dtype=np.uint8)
    return index, np.concatenate(parts) if parts else empty


def writable_cache() -> Path:
    """`data_cache_dir`, created.

    Raises:
        ValueError: it cannot be created or written.
    """
    folder = data_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create the data cache {folder} ({err.strerror}); set "
                         "GANKIT_CACHE to a writable directory") from None
    if not os.access(folder, os.W_OK):
        raise ValueError(f"the data cache {folder} is not writable; set GANKIT_CACHE to a "
                         "writable directory")
    return folder


def write_index(path: Path, index: dict) -> None:
    """Store ``index``; where the cache cannot be written, warn and go on (the next load
    scans again)."""
    from gankit.utils.console import warn

    try:
        writable_cache()
        atomic_write_json(path, index)
    except (ValueError, PermissionError) as err:
        warn(f"the folder's scan is not kept: {err}")
