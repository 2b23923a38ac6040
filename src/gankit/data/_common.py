"""The `Dataset` container and the tensor transforms every reader shares.

Images are float32 ``[N, C, H, W]`` in [-1, 1]; points are float32 ``[N, D]`` raw coordinates.
Resizing scales the shorter side to the target resolution and centre-crops the longer one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gankit.utils.guards import check_memory

KINDS = ("image", "points")
# ITU-R BT.601 luma weights, the ones Pillow's RGB -> L conversion uses.
_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class LoadOptions:
    """What `load_dataset` passes to every registered dataset factory."""

    resolution: int | None = None  # output height = width in pixels; None: the dataset's own
    channels: int | None = None  # 1 (grey) or 3 (RGB); None: the dataset's own
    strict_images: bool = False  # an unreadable image file is an error instead of a warning
    stream: bool | None = None  # folder/npz images read from disk; None: above a size
    workers: int = 0  # processes that decode a streamed folder's images (0: this one)
    columns: dict | None = None  # tables: column name -> type overrides (data.columns)


@dataclass(frozen=True)
class Dataset:
    """A dataset: labels and points in memory, images in memory or streamed from disk.

    Attributes:
        x: float32; images ``[N, C, H, W]`` in [-1, 1], points ``[N, D]`` raw coordinates.
            A streamed dataset's ``x`` is an image store (`gankit.data._store.ImageStore`):
            ``len``, ``shape``, ``dtype``, ``ndim`` and indexing (``x[i]``, ``x[a:b]``,
            ``x[index_tensor]``, ``x.take(indices)``) as the tensor's, each read returning a
            float32 tensor of those rows; `as_tensor` decodes all of it.
        y: int64 labels ``[N]`` in 0..num_classes-1, or None if unlabelled.
        num_classes: number of classes K (0 if unlabelled).
        kind: "image" or "points".
        name: the spec it was loaded from, e.g. "mnist5k" or "folder:/data/faces".
        class_names: K names (index = label), or None.
        source: translation data: float32 images ``[N, C', H', W']`` in [-1, 1] (or
            points, for reconstruction), row i the input whose output should be ``x[i]``
            (`gankit.data.paired`); None otherwise.
        domains: 2 when ``x`` stacks two unpaired image domains on the channel axis
            (``unpaired:``), else 1.
        channel_classes: each channel is an image of its own class (``stacked_mnist``):
            classifier metrics read the channels one at a time (the mode is their tuple).
        table: a table's raw rows and fitted encoding (`gankit.data.tables.TableData`);
            ``x`` is then the encoding, kind "points".
    """

    x: torch.Tensor
    y: torch.Tensor | None
    num_classes: int
    kind: str
    name: str
    class_names: list[str] | None = None
    source: torch.Tensor | None = None
    domains: int = 1
    table: object | None = None  # tables: the raw table and its encoding (data.tables)
    channel_classes: bool = False  # stacked data: one class per channel

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Dataset kind must be one of {KINDS}, got {self.kind!r}")
        want_ndim = 4 if self.kind == "image" else 2
        if self.x.dtype != torch.float32 or self.x.ndim != want_ndim or len(self.x) == 0:
            raise ValueError(
                f"Dataset {self.name!r}: x must be a non-empty float32 tensor with "
                f"{want_ndim} dims for kind {self.kind!r}, got {self.x.dtype} {tuple(self.x.shape)}"
            )
        if self.source is not None and (
                self.source.dtype != torch.float32 or self.source.ndim != self.x.ndim
                or len(self.source) != len(self.x)):
            raise ValueError(
                f"Dataset {self.name!r}: source must be float32 with x's number of dims and "
                f"one row per row of x ({len(self.x)}), got {self.source.dtype} "
                f"{tuple(self.source.shape)}")
        if self.y is None:
            if self.num_classes != 0:
                raise ValueError(f"Dataset {self.name!r}: num_classes must be 0 without labels")
            return
        if self.y.dtype != torch.int64 or self.y.shape != (len(self.x),):
            raise ValueError(
                f"Dataset {self.name!r}: y must be int64 of shape ({len(self.x)},), "
                f"got {self.y.dtype} {tuple(self.y.shape)}"
            )
        if int(self.y.min()) < 0 or int(self.y.max()) >= self.num_classes:
            raise ValueError(f"Dataset {self.name!r}: labels must lie in 0..{self.num_classes - 1}")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(f"Dataset {self.name!r}: need {self.num_classes} class_names")

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample, e.g. ``(1, 28, 28)`` or ``(2,)``."""
        return tuple(self.x.shape[1:])

    def __len__(self) -> int:
        return len(self.x)

    @property
    def streamed(self) -> bool:
        """Whether ``x`` is read from disk on demand (an image store, not a tensor)."""
        return not isinstance(self.x, torch.Tensor)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, kind={self.kind!r}, n={len(self)}, shape={self.shape}, "
            f"num_classes={self.num_classes})"
        )


def check_options(resolution: object, channels: object) -> None:
    """Raise ValueError unless resolution is None or an int >= 1 and channels None, 1 or 3."""
    if resolution is not None and (
        isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1
    ):
        raise ValueError(f"resolution must be a positive integer or None, got {resolution!r}")
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise ValueError(f"channels must be 1, 3 or None, got {channels!r}")


def check_image_memory(where: str, n: int, channels: int, resolution: int) -> None:
    """Refuse ``n`` float32 images ``[channels, resolution, resolution]`` that would not fit
    in the memory available, before they are allocated."""
    check_memory(n * channels * resolution * resolution * 4,
                 f"{where} at resolution {resolution}: {n} x {channels} x {resolution} x "
                 f"{resolution} float32 images", "choose a smaller resolution (data.resolution)")


def no_arg(name: str, arg: str | None) -> None:
    """Reject ``name:arg`` for a dataset that takes no argument."""
    if arg is not None:
        raise ValueError(f"dataset {name!r} takes no argument, got {name}:{arg}; use {name!r}")


def need_arg(name: str, arg: str | None) -> str:
    """Return the path of ``name:PATH``; raise if it is missing."""
    if not arg:
        raise ValueError(f"dataset {name!r} needs a path: use '{name}:PATH'")
    return arg


def resize_images(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Scale the shorter side to ``resolution``, then centre-crop to a square.

    Args:
        x: ``[N, C, H, W]`` in [-1, 1].
        resolution: output height and width.

    Returns:
        ``[N, C, resolution, resolution]`` in [-1, 1] (antialiased bilinear, no overshoot).
    """
    h, w = x.shape[-2:]
    if (h, w) == (resolution, resolution):
        return x
    scale = resolution / min(h, w)
    nh, nw = max(resolution, round(h * scale)), max(resolution, round(w * scale))
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    top, left = (nh - resolution) // 2, (nw - resolution) // 2
    return x[..., top : top + resolution, left : left + resolution].clamp(-1, 1).contiguous()


def convert_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Grey -> RGB repeats the channel; RGB -> grey takes BT.601 luma. ``x``: ``[N, C, H, W]``."""
    c = x.shape[1]
    if c == channels:
        return x
    if c == 1 and channels == 3:
        return x.repeat(1, 3, 1, 1)
    if c == 3 and channels == 1:
        weights = torch.tensor(_LUMA, dtype=x.dtype).view(1, 3, 1, 1)
        return (x * weights).sum(dim=1, keepdim=True)
    raise ValueError(f"cannot convert images with {c} channels to {channels}; supported: 1 or 3")


def fixed_split(y: torch.Tensor, test_per_class: int, seed: int) -> tuple[torch.Tensor,
                                                                         torch.Tensor]:
    """A stratified split of labels ``y`` [N]: (train indices, test indices), sorted, with
    ``test_per_class`` of every class held out, drawn by a generator seeded ``seed``."""
    g = torch.Generator().manual_seed(seed)
    classes = int(y.max()) + 1
    test = torch.cat([torch.nonzero(y == c).flatten()[torch.randperm(int((y == c).sum()),
                      generator=g)[:test_per_class]] for c in range(classes)]).sort().values
    keep = torch.ones(len(y), dtype=torch.bool)
    keep[test] = False
    return torch.nonzero(keep).flatten(), test


def split_arg(name: str, arg: str | None) -> str | None:
    """``train`` or ``test`` of ``name:SPLIT`` (None: the whole dataset)."""
    if arg not in (None, "train", "test"):
        raise ValueError(f"{name}:{arg}: the split must be train or test (or none: all of "
                         f"{name})")
    return arg
