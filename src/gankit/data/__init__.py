"""Built-in datasets, folder/npz readers and the resumable batch sampler.

Usage::

    from gankit.data import load_dataset, BatchSampler
    ds = load_dataset("mnist5k", resolution=32)        # ds.x [5000, 1, 32, 32] in [-1, 1]
    sampler = BatchSampler(len(ds), batch_size=64, seed=0)
    real = ds.x[sampler.indices(step)]

A spec is a registered name, optionally with an argument: ``"ring"``, ``"folder:PATH"``,
``"npz:PATH"``. Every public module of this package registers its factories in
``gankit.registry.DATASETS`` and is imported automatically; a factory has the signature
``factory(arg: str | None, opts: LoadOptions) -> Dataset``. Private (``_``) modules hold
shared code.

``folder:`` and ``npz:`` images larger than `STREAM_BYTES` as float32 (or any size with
``stream=True``) are streamed: ``ds.x`` is then an image store that reads rows from disk
when indexed (`gankit.data._store`); `as_tensor` gives a tensor in either case.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pkgutil

from gankit.data._common import (
    Dataset,
    LoadOptions,
    check_image_memory,
    check_options,
    convert_channels,
    resize_images,
)
from gankit.data._sampler import BatchSampler
from gankit.data._store import STREAM_BYTES, ImageStore, as_tensor, default_workers
from gankit.data.mixtures import mixture_spec
from gankit.registry import DATASETS

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["STREAM_BYTES", "BatchSampler", "Dataset", "ImageStore", "LoadOptions", "as_tensor",
           "default_workers", "load_dataset", "mixture_spec"]


def load_dataset(
    spec: str,
    *,
    resolution: int | None = None,
    channels: int | None = None,
    strict_images: bool = False,
    stream: bool | None = None,
    workers: int | None = None,
    columns: dict | None = None,
) -> Dataset:
    """Load a dataset: into memory, or (large ``folder:``/``npz:`` images) as a stream.

    Args:
        spec: a name from ``DATASETS`` (``"ring"``, ``"grid"``, ``"mnist5k"``, ``"digits"``) or
            ``"folder:PATH"`` / ``"npz:PATH"``.
        resolution: images only: output height = width (shorter side scaled, centre crop).
            None keeps the dataset's own (folder: 64).
        channels: images only: 1 (grey) or 3 (RGB). None keeps the dataset's own.
        strict_images: folder only: an unreadable image raises instead of being skipped.
        stream: folder/npz images: True reads them from disk when indexed, False decodes
            them into memory; None streams above `STREAM_BYTES` of float32.
        workers: processes that decode folder images (the first scan, training batches);
            0 decodes in this process; None: `default_workers` (cores - 1, at most 8).
        columns: tables only: column name -> type overrides (``data.columns``).

    Returns:
        A `Dataset` whose ``name`` is ``spec``: images float32 ``[N, C, H, W]`` in [-1, 1],
        points float32 ``[N, D]``.

    Raises:
        ValueError: unknown name (with the closest match), bad path or file, bad options,
            a resolution whose images would not fit in memory.
    """
    if not isinstance(spec, str):
        raise TypeError(f"dataset spec must be a str, got {type(spec).__name__}")
    check_options(resolution, channels)
    if workers is None:
        workers = default_workers()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers must be an integer >= 0 (data.workers), got {workers!r}")
    name, sep, arg = spec.partition(":")
    if name not in DATASETS and not sep and os.path.exists(spec):
        raise ValueError(f"dataset {spec!r} is a path: use 'folder:{spec}' or 'npz:{spec}'")
    factory = DATASETS.get(name)
    opts = LoadOptions(resolution=resolution, channels=channels, strict_images=strict_images,
                       stream=stream, workers=workers, columns=dict(columns or {}))
    ds = factory(arg if sep else None, opts)
    if ds.kind == "points" and (resolution is not None or channels is not None):
        raise ValueError(
            f"dataset {spec!r} holds 2-D points: resolution and channels apply to images only"
        )
    x = ds.x
    if ds.streamed:  # stores apply resolution and channels as they read
        return dataclasses.replace(ds, name=spec)
    source = ds.source
    if ds.kind == "image" and resolution is not None:
        check_image_memory(spec, len(x), channels or x.shape[1], resolution)
        x = resize_images(x, resolution)
        if source is not None and source.shape[-1] != resolution:  # same-size pairs
            source = resize_images(source, resolution)
    if ds.kind == "image" and channels is not None and ds.domains == 1:
        x = convert_channels(x, channels)  # the targets; unpaired: each domain converted
    return dataclasses.replace(ds, x=x, name=spec, source=source)
