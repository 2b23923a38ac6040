"""``folder:PATH``: every image under a directory, optionally labelled by class subfolders.

Files ending in .png .jpg .jpeg .bmp .webp (any case) are found recursively and sorted by
their relative path parts. Labels follow torchvision's ImageFolder convention: if every image
sits below an immediate subfolder (``PATH/<class>/.../img``), the classes are the sorted names
of the subfolders that hold images and ``y`` is their index; if any image lies directly in
PATH, the dataset is unlabelled.

Each image is EXIF-rotated, converted to RGB (16-bit grey is first scaled to 8 bits,
round(v * 255 / 65535)), scaled (bicubic) so its shorter side equals the resolution
(default 64) and centre-cropped to a square. Channels default to 3 if any image has colour
(some pixel with R, G, B not all equal), else 1; grey is Pillow's BT.601 luma.
Unreadable files are skipped with one warning, or raise with ``strict_images=True``.

Streaming (`gankit.data.streams`): a folder whose images would take more float32 memory
than the threshold is not decoded into memory. It is scanned once (every image decoded in
``workers`` processes, to find the unreadable files and whether all are grey; the result
is kept as a small index, `gankit.data._folder_index`), and ``x`` is a `FileStore` that
decodes the rows asked for, or an `ArrayStore` over the folder's decoded uint8 cache when
``gankit data cache folder:PATH`` has built one for these files. Both give the same bits as
the in-memory reader.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gankit.data._common import Dataset, LoadOptions, check_image_memory, need_arg
from gankit.data._folder_index import (
    EXTENSIONS,
    find_images,
    index_path,
    listing_key,
    pixels_path,
    read_index,
    remove_stale,
    scan,
    writable_cache,
    write_index,
)
from gankit.data._store import FileStore, grey, mapped_npy, streams, to_float
from gankit.registry import DATASETS
from gankit.utils.console import warn

DEFAULT_RESOLUTION = 64


def _files(arg: str | None) -> tuple[Path, list[Path]]:
    root = Path(need_arg("folder", arg)).expanduser()
    if not root.is_dir():
        why = "is not a directory" if root.exists() else "no such directory"
        raise ValueError(f"folder:{arg}: {why}")
    files = find_images(root)
    if not files:
        raise ValueError(f"folder:{arg}: no images ({', '.join(EXTENSIONS)}) found under {root}")
    return root, files


def _report(arg, root: Path, files: list[Path], skipped: list, strict: bool) -> list[Path]:
    """The readable files; warns about (or, ``strict``, raises on) the others."""
    if skipped and strict:
        i, err = skipped[0]
        raise ValueError(f"folder:{arg}: cannot read image {files[i]}: {err}")
    if skipped:
        i, err = skipped[0]
        n = len(skipped)
        warn(f"skipped {n} unreadable image{'s' * (n > 1)} in {root}, "
             f"e.g. {files[i].relative_to(root)}: {err}; --set data.strict_images=true makes "
             "this an error")
    bad = {i for i, _ in skipped}
    kept = [p for i, p in enumerate(files) if i not in bad]
    if not kept:
        raise ValueError(f"folder:{arg}: none of the {len(files)} image files could be read")
    return kept


def _labels(arg, root: Path, kept: list[Path], x) -> Dataset:
    parents = [p.relative_to(root).parts for p in kept]
    if any(len(parts) == 1 for parts in parents):  # an image directly in PATH: unlabelled
        return Dataset(x=x, y=None, num_classes=0, kind="image", name=f"folder:{arg}")
    class_names = sorted({parts[0] for parts in parents})
    index = {name: i for i, name in enumerate(class_names)}
    y = torch.tensor([index[parts[0]] for parts in parents], dtype=torch.int64)
    return Dataset(
        x=x, y=y, num_classes=len(class_names), kind="image", name=f"folder:{arg}",
        class_names=class_names,
    )


def folder_index(root: Path, files: list[Path], resolution: int, workers: int,
                 where: str, strict: bool) -> tuple[str, dict]:
    """(key, index) of the folder's files at ``resolution``: the stored index when its key
    matches, else a fresh scan (which is stored)."""
    key = listing_key(root, files, resolution)
    path = index_path(root, resolution, key)
    index = read_index(path)
    if index is None:
        index, _ = scan(files, resolution, workers, strict=strict, where=where)
        write_index(path, index)
        remove_stale(root, resolution, key)
    return key, index


def build_cache(arg: str, resolution: int | None, workers: int) -> tuple[Path, int, bool]:
    """Decode ``folder:arg`` once into its uint8 cache (`gankit data cache`); returns (the
    cache file, its images, whether it was built now rather than found)."""
    root, files = _files(arg)
    resolution = resolution or DEFAULT_RESOLUTION
    key = listing_key(root, files, resolution)
    out = pixels_path(root, resolution, key)
    index = read_index(index_path(root, resolution, key))
    if out.is_file() and index is not None:
        return out, len(files) - len(index["skipped"]), False
    writable_cache()
    index, _ = scan(files, resolution, workers, keep=True, out=out, where=f"folder:{arg}")
    write_index(index_path(root, resolution, key), index)
    remove_stale(root, resolution, key)
    return out, len(files) - len(index["skipped"]), True


@DATASETS.register("folder", "folder:PATH - images under PATH; class subfolders give labels")
def folder(arg: str | None, opts: LoadOptions) -> Dataset:
    """Load a folder of images; x ``[N, C, R, R]`` in [-1, 1], R = resolution (default 64)."""
    root, files = _files(arg)
    resolution = opts.resolution or DEFAULT_RESOLUTION
    where = f"folder:{arg}"
    if streams(opts.stream, len(files), opts.channels or 3, resolution):
        key, index = folder_index(root, files, resolution, opts.workers, where,
                                  opts.strict_images)
        kept = _report(arg, root, files, index["skipped"], opts.strict_images)
        channels = opts.channels or (1 if index["grey"] else 3)
        cache = pixels_path(root, resolution, key)
        if cache.is_file():
            x = mapped_npy(cache, channels=channels, luma=True, workers=opts.workers)
        else:
            x = FileStore(kept, channels, resolution, workers=opts.workers)
        return _labels(arg, root, kept, x)

    check_image_memory(where, len(files), opts.channels or 3, resolution)
    index, pixels = scan(files, resolution, opts.workers, keep=True,
                         strict=opts.strict_images, where=where)
    kept = _report(arg, root, files, index["skipped"], opts.strict_images)
    channels = opts.channels or (1 if index["grey"] else 3)
    x = to_float(grey(pixels) if channels == 1 else pixels)  # [N, C, R, R]
    return _labels(arg, root, kept, x)
