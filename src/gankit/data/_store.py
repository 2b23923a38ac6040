"""Image stores read from disk on demand: the ``x`` of a streamed `Dataset`.

A store behaves like the float32 ``[N, C, R, R]`` tensor in [-1, 1] it stands for, without
holding it: ``len``, ``shape``, ``dtype``, ``ndim``, and ``store[i]``, ``store[a:b]``,
``store[index_tensor]`` or ``store.take(indices)`` return float32 tensors of just those rows.
Two kinds:

- `FileStore`: one image file per row, decoded (Pillow) when read; the batches of training
  decode in DataLoader worker processes (`gankit.training.batches`).
- `ArrayStore`: rows of a uint8 or float array on disk, memory-mapped (the decoded cache
  of a folder, `gankit.data._cache`, or the ``x`` of an npz archive).

Stores pickle without their pixels (paths, offsets and shapes), so worker processes open
their own view. Reading the same rows always gives the same bits, in any process.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from gankit.data._common import convert_channels, resize_images
from gankit.utils.guards import check_memory

# A folder or npz dataset streams when its float32 images would take more than this: 1 GiB
# is about 21,800 RGB images at 64 x 64. Below it, memory is the faster and simpler place.
STREAM_BYTES = 1 << 30


def streams(stream: bool | None, n: int, channels: int, resolution: int) -> bool:
    """Whether a dataset of ``n`` images ``[channels, resolution, resolution]`` is read from
    disk: ``stream`` (``data.stream``) when set, else above `STREAM_BYTES` of float32."""
    if stream is not None:
        return stream
    return n * channels * resolution * resolution * 4 > STREAM_BYTES


def default_workers() -> int:
    """``data.workers`` when unset: one decode process per core but one, at most 8."""
    return max(0, min(8, (os.cpu_count() or 1) - 1))


def _rows(index, n: int) -> np.ndarray:
    """``index`` (int, slice, sequence or int tensor) as an int64 array of rows in 0..n-1."""
    if isinstance(index, slice):
        return np.arange(n, dtype=np.int64)[index]
    if isinstance(index, torch.Tensor):
        if index.dtype == torch.bool:
            raise TypeError("image stores take integer indices, not a boolean mask")
        index = index.detach().cpu().numpy()
    rows = np.asarray(index, dtype=np.int64).reshape(-1)
    if rows.size and (rows.min() < -n or rows.max() >= n):
        raise IndexError(f"index out of range for an image store of {n} rows")
    return np.where(rows < 0, rows + n, rows)


class ImageStore:
    """Base of the stores: a lazy float32 ``[N, C, R, R]`` image tensor in [-1, 1].

    Args:
        n: number of rows.
        channels: C, 1 or 3.
        size: (H, W) of the images.
        workers: decode processes for training batches (0: the main process decodes).
    """

    dtype = torch.float32
    ndim = 4
    decodes = False  # True when reading a row costs an image decode (worth prefetching)

    def __init__(self, n: int, channels: int, size: tuple[int, int], workers: int = 0) -> None:
        self.n, self.channels, self.size, self.workers = n, channels, tuple(size), workers

    @property
    def shape(self) -> torch.Size:
        return torch.Size((self.n, self.channels, *self.size))

    def _check_memory(self, rows: int) -> None:
        h, w = self.size
        check_memory(rows * self.channels * h * w * 4,
                     f"{self!r}: {rows} x {self.channels} x {h} x {w} float32 images",
                     "read fewer rows at a time")

    def __len__(self) -> int:
        return self.n

    def take(self, indices) -> torch.Tensor:
        """The rows ``indices`` (int64 tensor or sequence) as float32 ``[k, C, R, R]``."""
        rows = _rows(indices, self.n)
        if len(rows) > 4096:  # a large read must fit in memory
            self._check_memory(len(rows))
        return self._read(rows)

    def __getitem__(self, index) -> torch.Tensor:
        if isinstance(index, (int, np.integer)) or (isinstance(index, torch.Tensor)
                                                    and index.ndim == 0):
            return self.take([int(index)])[0]
        return self.take(index)

    def to_tensor(self) -> torch.Tensor:
        """Every row, decoded into memory (refused when it would not fit)."""
        self._check_memory(self.n)
        out = torch.empty(tuple(self.shape))
        step = 1024
        for start in range(0, self.n, step):
            out[start:start + step] = self._read(np.arange(start, min(self.n, start + step)))
        return out

    def _read(self, rows: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={self.n}, shape={tuple(self.shape[1:])})"


def as_tensor(x) -> torch.Tensor:
    """``x`` itself when it is a tensor; a store's rows decoded into one tensor."""
    return x if isinstance(x, torch.Tensor) else x.to_tensor()


def to_float(pixels: np.ndarray) -> torch.Tensor:
    """uint8 ``[k, R, R, C]`` -> float32 ``[k, C, R, R]`` in [-1, 1] (the folder reader's map,
    the same bits in every process)."""
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).float() \
        .contiguous() / 127.5 - 1


def grey(pixels: np.ndarray) -> np.ndarray:
    """uint8 RGB ``[..., 3]`` -> ``[..., 1]`` by Pillow's integer BT.601 luma:
    (19595 R + 38470 G + 7471 B + 2^15) >> 16."""
    r, g, b = (pixels[..., i].astype(np.uint32) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 32768) >> 16).astype(np.uint8)[..., None]


class FileStore(ImageStore):
    """One image file per row, decoded by ``gankit.data.folder.read_image`` when read."""

    decodes = True

    def __init__(self, files: list[Path], channels: int, resolution: int,
                 workers: int = 0) -> None:
        super().__init__(len(files), channels, (resolution, resolution), workers)
        self.resolution = resolution
        self.files = [str(f) for f in files]

    def pixels(self, rows: np.ndarray) -> np.ndarray:
        """uint8 ``[k, R, R, C]`` of the rows, C = ``channels``."""
        from gankit.data._folder_index import READ_ERRORS, read_image

        out = np.empty((len(rows), self.resolution, self.resolution, 3), dtype=np.uint8)
        for i, row in enumerate(rows):
            try:
                out[i] = read_image(Path(self.files[row]), self.resolution)
            except READ_ERRORS as err:  # the folder's scan read it: the file changed since
                raise ValueError(f"cannot read image {self.files[row]} (it was readable when "
                                 f"the folder was scanned; rebuild with `gankit data cache`): "
                                 f"{err}") from err
        return grey(out) if self.channels == 1 else out

    def _read(self, rows: np.ndarray) -> torch.Tensor:
        return to_float(self.pixels(rows))


class ArrayStore(ImageStore):
    """Rows of an array in a file (a ``.npy``, or an uncompressed member of a ``.npz``),
    memory-mapped on first read in each process.

    Args:
        path: the file.
        offset: byte offset of the array's data in it.
        dtype: numpy dtype of the array (uint8 or a float type).
        file_shape: the array's shape, ``[N, H, W, C]`` (``layout="nhwc"``), ``[N, C, H, W]``
            (``"nchw"``) or ``[N, H, W]`` (``"nhw"``).
        layout: see ``file_shape``.
        scale: float arrays only: "unit" maps [0, 1] by ``2x - 1``, "signed" keeps [-1, 1].
        resolution, channels: the output's; other sizes are resized (`resize_images`) and
            converted (`convert_channels`) as the in-memory reader does, per batch.
        fortran: the array is in Fortran order.
        luma: uint8 NHWC RGB (the folder cache) read as grey by Pillow's integer luma
            (`grey`), the folder reader's conversion, instead of `convert_channels`.
    """

    def __init__(self, path: Path, offset: int, dtype: np.dtype, file_shape: tuple[int, ...],
                 layout: str, *, scale: str = "unit", resolution: int | None = None,
                 channels: int | None = None, fortran: bool = False, luma: bool = False,
                 workers: int = 0) -> None:
        self.luma = luma
        self.path, self.offset, self.dtype_np = str(path), int(offset), np.dtype(dtype)
        self.file_shape, self.layout, self.scale = tuple(file_shape), layout, scale
        self.fortran = fortran
        h, w, c = {"nhwc": file_shape[1:4], "nchw": (*file_shape[2:4], file_shape[1]),
                   "nhw": (*file_shape[1:3], 1)}[layout]
        self.own_channels = c
        size = (h, w) if resolution is None else (resolution, resolution)
        super().__init__(file_shape[0], channels or c, size, workers)
        self._resize = size != (h, w)
        self._array: np.ndarray | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_array": None}  # each process maps the file itself

    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = np.memmap(self.path, dtype=self.dtype_np, mode="r", offset=self.offset,
                                    shape=self.file_shape, order="F" if self.fortran else "C")
        return self._array

    def stored(self, rows: np.ndarray) -> np.ndarray:
        """The rows as they are in the file (its layout and dtype), in the order asked."""
        order = np.argsort(rows, kind="stable")  # ascending reads are sequential on disk
        part = np.empty((len(rows), *self.file_shape[1:]), dtype=self.dtype_np)
        part[order] = self.array()[rows[order]]
        return part

    def raw(self, rows: np.ndarray) -> np.ndarray:
        """The stored rows in NCHW layout."""
        part = self.stored(rows)
        if self.layout == "nhwc":
            part = part.transpose(0, 3, 1, 2)
        elif self.layout == "nhw":
            part = part[:, None]
        return np.ascontiguousarray(part)

    def _read(self, rows: np.ndarray) -> torch.Tensor:
        if self.luma and self.channels == 1:  # the folder cache: RGB -> grey as FileStore does
            return to_float(grey(self.stored(rows)))
        part = self.raw(rows)
        if self.dtype_np == np.uint8:
            x = torch.from_numpy(part).float() / 127.5 - 1
        else:
            x = torch.from_numpy(part.astype(np.float32))
            if self.scale == "unit":
                x = x * 2 - 1
        if self._resize:
            x = resize_images(x, self.size[0])
        if self.channels != self.own_channels:
            x = convert_channels(x, self.channels)
        return x


def mapped_npy(path: Path, **kwargs) -> ArrayStore:
    """An `ArrayStore` over a ``.npy`` file of uint8 ``[N, R, R, C]`` (the folder cache's)."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
    return ArrayStore(path, offset, dtype, shape, "nhwc", fortran=fortran, **kwargs)
