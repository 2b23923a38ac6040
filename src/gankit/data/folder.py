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
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from gankit.data._common import Dataset, LoadOptions, check_image_memory, need_arg
from gankit.registry import DATASETS
from gankit.utils.console import warn

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
DEFAULT_RESOLUTION = 64
_READ_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
# Pillow's modes for 16-bit grey (a 16-bit PNG opens as I;16, in older Pillows as I)
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def find_images(root: Path) -> list[Path]:
    """All image files below ``root``, in deterministic order."""
    files = [p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()]
    return sorted(files, key=lambda p: p.relative_to(root).parts)


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit grey -> 8-bit grey: v -> round(v * 255 / 65535). (Pillow's own conversion
    clips every value above 255 to white.)"""
    v = np.clip(np.asarray(img, dtype=np.int64), 0, 65535)
    return Image.fromarray(((v * 255 + 32767) // 65535).astype(np.uint8))  # mode L


def _read(path: Path, resolution: int) -> np.ndarray:
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


@DATASETS.register("folder", "folder:PATH - images under PATH; class subfolders give labels")
def folder(arg: str | None, opts: LoadOptions) -> Dataset:
    """Load a folder of images; x ``[N, C, R, R]`` in [-1, 1], R = resolution (default 64)."""
    root = Path(need_arg("folder", arg)).expanduser()
    if not root.is_dir():
        why = "is not a directory" if root.exists() else "no such directory"
        raise ValueError(f"folder:{arg}: {why}")
    files = find_images(root)
    if not files:
        raise ValueError(f"folder:{arg}: no images ({', '.join(EXTENSIONS)}) found under {root}")
    resolution = opts.resolution or DEFAULT_RESOLUTION
    check_image_memory(f"folder:{arg}", len(files), opts.channels or 3, resolution)
    pixels = np.empty((len(files), resolution, resolution, 3), dtype=np.uint8)
    kept: list[Path] = []
    skipped: list[tuple[Path, Exception]] = []
    for path in files:
        try:
            pixels[len(kept)] = _read(path, resolution)
        except _READ_ERRORS as err:
            if opts.strict_images:
                raise ValueError(f"folder:{arg}: cannot read image {path}: {err}") from err
            skipped.append((path, err))
            continue
        kept.append(path)
    if skipped:
        first, err = skipped[0]
        warn(f"skipped {len(skipped)} unreadable image{'s' * (len(skipped) > 1)} in {root}, "
             f"e.g. {first.relative_to(root)}: {err}; --set data.strict_images=true makes "
             "this an error")
    if not kept:
        raise ValueError(f"folder:{arg}: none of the {len(files)} image files could be read")

    pixels = pixels[: len(kept)]  # [N, R, R, 3] uint8
    r, g, b = (pixels[..., i] for i in range(3))
    is_grey = bool((r == g).all() and (r == b).all())
    channels = opts.channels or (1 if is_grey else 3)
    if channels == 1:  # Pillow's integer luma: (19595 R + 38470 G + 7471 B + 2^15) >> 16
        r, g, b = (c.astype(np.uint32) for c in (r, g, b))
        pixels = ((r * 19595 + g * 38470 + b * 7471 + 32768) >> 16).astype(np.uint8)[..., None]
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().contiguous() / 127.5 - 1

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
