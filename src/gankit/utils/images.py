"""Image utilities with Pillow and numpy only: sample grids and 2D scatter plots.

``make_grid`` follows torchvision's layout (``nrow`` images per row, ``padding`` pixels
between and around them) so grids look familiar, without depending on torchvision.
"""

from __future__ import annotations

import io
import math
import os

import numpy as np
import torch
from PIL import Image, ImageDraw

from gankit.utils.io import atomic_write_bytes


def _levels(x: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] -> their 8-bit levels round((x + 1) * 127.5) in 0..255
    (as float32; values outside [-1, 1] are clamped, ties round half to even)."""
    return x.detach().float().clamp(-1.0, 1.0).add_(1.0).mul_(127.5).round_()  # one copy


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Images [N, C, H, W] in [-1, 1] -> uint8 array [N, H, W, C] in [0, 255]."""
    return _levels(x.cpu()).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def quantize_8bit(x: torch.Tensor) -> torch.Tensor:
    """Round float images in [-1, 1] to the 256 values an 8-bit image holds, as the
    StyleGAN2-ADA and clean-fid metric protocols do with generated images:
    ``round((x + 1) * 127.5).clamp(0, 255) / 127.5 - 1``, float32, same shape and device."""
    return _levels(x).div_(127.5).sub_(1.0)


def make_grid(x: torch.Tensor, nrow: int | None = None, padding: int = 2,
              pad_value: int = 0) -> np.ndarray:
    """Tile images [N, C, H, W] in [-1, 1] into one uint8 array [H', W', C].

    Args:
        x: images in [-1, 1].
        nrow: images per row; defaults to ceil(sqrt(N)).
        padding: pixels between tiles and around the border.
        pad_value: the padding's grey level in [0, 255].
    """
    if x.dim() != 4:
        raise ValueError(f"make_grid expects images [N, C, H, W], got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / nrow)
    tiles = to_uint8(x)
    grid = np.full((rows * (h + padding) + padding, nrow * (w + padding) + padding, c),
                   pad_value, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[top:top + h, left:left + w] = tiles[i]
    return grid


def png_bytes(array: np.ndarray, scale: int = 1) -> bytes:
    """Encode a uint8 [H, W, C] (C in 1, 3) array as PNG, optionally upscaled."""
    img = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


HEADER_BAND = 18  # pixels of the text band `annotate` puts above an image


def grid_scale(side: int) -> int:
    """How much a grid of images ``side`` pixels wide is upscaled to stay visible."""
    return max(1, 4 // max(1, side // 16)) if side < 64 else 1


def save_grid(x: torch.Tensor, path: str | os.PathLike, nrow: int | None = None,
              scale: int | None = None, row_labels: list[str] | None = None) -> None:
    """Write a sample grid PNG atomically; small images are upscaled to stay visible.
    ``row_labels`` are written left of the rows (e.g. the class of each row)."""
    scale = grid_scale(x.shape[-1]) if scale is None else scale
    data = png_bytes(make_grid(x, nrow), scale)
    if row_labels:
        row_height = (x.shape[-2] + 2) * scale
        data = annotate(data, row_labels=row_labels, row_height=row_height, top=2 * scale)
    atomic_write_bytes(path, data)


def annotate(png: bytes, *, row_labels: list[str] | None = None, row_height: int = 0,
             top: int = 0, header: str | None = None) -> bytes:
    """A PNG with a text band above it (``header``, e.g. a legend) and a column of
    ``row_labels`` on its left, one per ``row_height`` pixels from ``top``."""
    from PIL import ImageFont

    img = Image.open(io.BytesIO(png)).convert("RGB")
    font = ImageFont.load_default()
    margin = 8 + max((int(font.getlength(t)) for t in row_labels or []), default=-8)
    band = HEADER_BAND if header else 0
    out = Image.new("RGB", (img.width + margin, img.height + band), "white")
    out.paste(img, (margin, band))
    draw = ImageDraw.Draw(out)
    if header:
        draw.text((margin + 2, 3), header, fill=(0, 0, 0), font=font)
    for i, text in enumerate(row_labels or []):
        y = band + top + i * row_height + max(0, (row_height - 12) // 2)
        draw.text((4, y), text, fill=(0, 0, 0), font=font)
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()


def save_images(x: torch.Tensor, directory: str | os.PathLike) -> list[str]:
    """Write one PNG per image [N, C, H, W] into ``directory`` (000000.png, ...)."""
    os.makedirs(directory, exist_ok=True)
    paths = []
    for i, tile in enumerate(to_uint8(x)):
        p = os.path.join(directory, f"{i:06d}.png")
        atomic_write_bytes(p, png_bytes(tile))
        paths.append(p)
    return paths


def scatter_png(points: np.ndarray, path: str | os.PathLike, real: np.ndarray | None = None,
                size: int = 512, extent: float | None = None) -> None:
    """Plot 2D points (fake in blue over real in light grey) and write the PNG atomically."""
    pts = np.asarray(points, dtype=np.float64)
    ref = np.asarray(real, dtype=np.float64) if real is not None else pts
    if extent is None:
        extent = float(np.abs(ref).max()) * 1.25 + 1e-6
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)

    def px(p: np.ndarray) -> np.ndarray:
        return (p / extent * 0.5 + 0.5) * (size - 1)

    mid = (size - 1) / 2
    draw.line([(0, mid), (size, mid)], fill=(225, 225, 225))
    draw.line([(mid, 0), (mid, size)], fill=(225, 225, 225))
    if real is not None:
        for x, y in px(ref[:5000]):
            draw.point((x, size - 1 - y), fill=(170, 170, 170))
    for x, y in px(pts):
        draw.ellipse([x - 1, size - 2 - y, x + 1, size - y], fill=(30, 80, 200))
    draw.text((8, 6), "generated", fill=(30, 80, 200))
    if real is not None:
        draw.text((8, 20), "real data", fill=(120, 120, 120))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
