"""Data for image-to-image translation: a ``source`` image beside each target image.

- ``paired:A,B``: two folders whose files match by relative path, the suffix aside
  (``A/cats/1.jpg`` pairs with ``B/cats/1.png``): A holds G's inputs, B the targets.
  ``paired:FILE.npz``: arrays ``x`` (inputs) and ``target`` of equal length, each as
  ``npz:`` reads images.
- ``unpaired:A,B``: two dataset specs of any kind (``unpaired:digits,mnist5k``,
  ``unpaired:folder:photos,folder:paintings``); both are brought to one resolution and
  channel count, and the shorter one is repeated in a seeded order to the longer one's
  length. A sample holds both domains stacked on the channel axis, ``x = [b | a]`` and
  ``source = [a | b]``, so that a two-domain translator maps the source to the target of
  each domain (CycleGAN: G_AB(a) and G_BA(b)); the pairing carries no meaning.
- ``adapt:SOURCE,TARGET``: one-way unpaired translation for domain adaptation: the target
  domain's images, the source images and their labels (PixelDA).
- ``edges2mnist``: the mnist5k digits (targets) and their edge maps (inputs): the Sobel
  gradient magnitude, scaled per image to [-1, 1] (``edges2mnist:canny`` takes scikit-image's
  Canny edges, sigma 1, from the ``images`` extra).

`with_sr_source` adds the inputs of super-resolution to any image dataset: each target
downscaled by the scale factor (bicubic with antialiasing, as MATLAB's ``imresize``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gankit.data._common import Dataset, LoadOptions, convert_channels, need_arg, resize_images
from gankit.data._folder_index import find_images, read_image
from gankit.registry import DATASETS

_UNPAIRED_SEED = 20_180_328  # seeds the repetition order of the shorter domain


def _split_pair(name: str, arg: str | None) -> tuple[str, str]:
    arg = need_arg(name, arg)
    left, sep, right = arg.partition(",")
    if not sep or not left or not right:
        raise ValueError(f"dataset {name}:{arg}: expected two parts, '{name}:A,B'")
    return left, right


def _folder_pairs(a: Path, b: Path, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    for side, root in (("A", a), ("B", b)):
        if not root.is_dir():
            raise ValueError(f"paired:{a},{b}: side {side} ({root}) is not a folder")
    files_a, files_b = ({p.relative_to(root).with_suffix("").as_posix(): p
                         for p in find_images(root)} for root in (a, b))
    for side, files, root in (("A", files_a, a), ("B", files_b, b)):
        if not files:
            raise ValueError(f"paired:{a},{b}: side {side} ({root}) holds no images")
    for key in sorted(files_a.keys() | files_b.keys()):
        if key not in files_b:
            raise ValueError(f"paired:{a},{b}: {files_a[key]} has no partner in {b} "
                             f"(files pair by relative path without the suffix)")
        if key not in files_a:
            raise ValueError(f"paired:{a},{b}: {files_b[key]} has no partner in {a} "
                             f"(files pair by relative path without the suffix)")
    keys = sorted(files_a)

    def load(files) -> torch.Tensor:
        pixels = np.stack([read_image(files[k], resolution) for k in keys])
        return torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 127.5 - 1

    return load(files_a), load(files_b)


def _npz_pairs(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    from gankit.data.npz import _scale, _to_nchw

    with np.load(path) as data:
        missing = [k for k in ("x", "target") if k not in data.files]
        if missing:
            raise ValueError(f"paired:{path}: needs arrays 'x' (inputs) and 'target', "
                             f"missing {', '.join(missing)}")
        x, target = data["x"], data["target"]
    if len(x) == 0 or len(target) == 0:
        raise ValueError(f"paired:{path}: {'x' if len(x) == 0 else 'target'} is empty")
    if len(x) != len(target):
        raise ValueError(f"paired:{path}: x has {len(x)} images but target has "
                         f"{len(target)}; they pair by index")
    return (_scale(_to_nchw(x, f"paired:{path} x"), f"paired:{path} x"),
            _scale(_to_nchw(target, f"paired:{path} target"), f"paired:{path} target"))


@DATASETS.register("paired", "paired images for translation: paired:INPUTS,TARGETS (folders "
                             "matched by relative name) or paired:FILE.npz (x and target)")
def paired(arg: str | None, opts: LoadOptions) -> Dataset:
    """Inputs as ``source`` and targets as ``x``, both at ``opts.resolution`` (folders:
    default 64; npz: their own, which must then match where no resolution is given)."""
    arg = need_arg("paired", arg)
    if arg.endswith(".npz") and "," not in arg:
        source, target = _npz_pairs(Path(arg))
        if opts.resolution is None and source.shape[2:] != target.shape[2:]:
            raise ValueError(f"paired:{arg}: x is {tuple(source.shape[2:])} and target "
                             f"{tuple(target.shape[2:])}; pass data.resolution to resize both")
    else:
        a, b = _split_pair("paired", arg)
        source, target = _folder_pairs(Path(a), Path(b), opts.resolution or 64)
    if opts.resolution is not None:
        source = resize_images(source, opts.resolution)
    return Dataset(x=target, y=None, num_classes=0, kind="image", name=f"paired:{arg}",
                   source=source)


@DATASETS.register("unpaired", "two unpaired image domains for CycleGAN: unpaired:A,B with A "
                               "and B any dataset specs")
def unpaired(arg: str | None, opts: LoadOptions) -> Dataset:
    """Both domains at one resolution and channel count, stacked: x = [b | a]."""
    from gankit.data import load_dataset

    spec_a, spec_b = _split_pair("unpaired", arg)
    a, b = (load_dataset(s, resolution=opts.resolution, channels=opts.channels,
                         strict_images=opts.strict_images, stream=False, workers=opts.workers)
            for s in (spec_a, spec_b))
    for spec, ds in ((spec_a, a), (spec_b, b)):
        if ds.kind != "image":
            raise ValueError(f"unpaired:{arg}: {spec} holds {ds.kind}, not images")
    xa, xb = a.x, b.x
    if opts.resolution is None and xa.shape[2:] != xb.shape[2:]:
        side = max(xa.shape[-1], xb.shape[-1])
        xa, xb = resize_images(xa, side), resize_images(xb, side)
    if opts.channels is None and xa.shape[1] != xb.shape[1]:
        xa, xb = convert_channels(xa, 3), convert_channels(xb, 3)
    n = max(len(xa), len(xb))
    g = torch.Generator().manual_seed(_UNPAIRED_SEED)
    xa, xb = (_repeat(t, n, g) for t in (xa, xb))
    return Dataset(x=torch.cat([xb, xa], 1), y=None, num_classes=0, kind="image",
                   name=f"unpaired:{arg}", source=torch.cat([xa, xb], 1), domains=2)


@DATASETS.register("adapt", "domain adaptation: adapt:SOURCE,TARGET, target images with "
                            "source images (and their labels) to translate")
def adapt(arg: str | None, opts: LoadOptions) -> Dataset:
    """One-way unpaired translation (PixelDA, Bousmalis et al. 2017): ``x`` the TARGET
    domain's images (what D calls real), ``source`` the SOURCE images G translates, ``y``
    the SOURCE labels (the class each translation must keep). Both at one resolution; the
    targets are repeated (seeded) or cut to the number of sources, which are all kept in
    their order. The rows pair no content: a source and its target row are unrelated."""
    from gankit.data import load_dataset

    spec_s, spec_t = _split_pair("adapt", arg)
    src, tgt = (load_dataset(s, resolution=opts.resolution, strict_images=opts.strict_images,
                             stream=False, workers=opts.workers) for s in (spec_s, spec_t))
    for spec, ds in ((spec_s, src), (spec_t, tgt)):
        if ds.kind != "image":
            raise ValueError(f"adapt:{arg}: {spec} holds {ds.kind}, not images")
    xs, xt = src.x, tgt.x
    if xs.shape[2:] != xt.shape[2:]:
        side = max(xs.shape[-1], xt.shape[-1])
        xs, xt = resize_images(xs, side), resize_images(xt, side)
    g = torch.Generator().manual_seed(_UNPAIRED_SEED)
    xt = _repeat(xt, len(xs), g) if len(xt) < len(xs) else \
        xt[torch.randperm(len(xt), generator=g)[:len(xs)]]
    if opts.channels is not None:
        xt = convert_channels(xt, opts.channels)
    return Dataset(x=xt.contiguous(), y=src.y, num_classes=src.num_classes, kind="image",
                   name=f"adapt:{arg}", class_names=src.class_names, source=xs)


def _repeat(x: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    """``x`` itself when it has n rows, else every row once plus a seeded draw without
    repetition (cycling) up to n."""
    if len(x) == n:
        return x
    extra = torch.cat([torch.randperm(len(x), generator=g)
                       for _ in range((n - len(x)) // len(x) + 1)])[:n - len(x)]
    return torch.cat([x, x[extra]])


def sobel_edges(x: torch.Tensor) -> torch.Tensor:
    """Edge maps of grey images x [N, 1, H, W] in [-1, 1]: the Sobel gradient magnitude
    (border pixels repeated: no edge at the frame), divided by each image's maximum,
    mapped to [-1, 1] (-1: no edge)."""
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    k = torch.stack([kx, kx.t()]).unsqueeze(1)  # [2, 1, 3, 3]
    g = F.conv2d(F.pad((x + 1) / 2, (1, 1, 1, 1), mode="replicate"), k)
    mag = g.pow(2).sum(1, keepdim=True).sqrt()
    peak = mag.flatten(1).amax(1).clamp_min(1e-8).view(-1, 1, 1, 1)
    return mag / peak * 2 - 1


def canny_edges(x: torch.Tensor) -> torch.Tensor:
    """scikit-image's Canny edges (sigma 1) of grey images x [N, 1, H, W]: -1 or 1."""
    from gankit.utils.extras import require

    (feature,) = require(("skimage.feature",), "images", "edges2mnist:canny")
    maps = [feature.canny(img[0].numpy().astype(np.float64), sigma=1.0) for img in x]
    return torch.from_numpy(np.stack(maps)).unsqueeze(1).float() * 2 - 1


@DATASETS.register("edges2mnist", "mnist5k digits paired with their edge maps for paired "
                                  "translation: edges2mnist[:canny][,test]")
def edges2mnist(arg: str | None, opts: LoadOptions) -> Dataset:
    """Targets: the digits of the fixed mnist5k train split (4,000; ``test``: the 1,000
    held out, `gankit.data.mnist5k.mnist5k_split`), labels kept for the classifier check;
    inputs: their edges (``sobel``, the default, or ``canny``), computed at 28x28."""
    from gankit.data.mnist5k import mnist5k, mnist5k_split

    words = set(arg.split(",")) if arg else set()
    if not words <= {"sobel", "canny", "train", "test"} or {"sobel", "canny"} <= words \
            or {"train", "test"} <= words:
        raise ValueError(f"edges2mnist:{arg}: expected an edge detector (sobel, the default, "
                         f"or canny) and/or a split (train, the default, or test), e.g. "
                         f"edges2mnist:canny,test")
    digits = mnist5k(None, LoadOptions())
    idx = mnist5k_split()[1 if "test" in words else 0]
    x = digits.x[idx]
    edges = canny_edges(x) if "canny" in words else sobel_edges(x)
    return Dataset(x=x, y=digits.y[idx], num_classes=10, kind="image",
                   name=f"edges2mnist:{arg}" if arg else "edges2mnist",
                   class_names=digits.class_names, source=edges)


def with_sr_source(ds: Dataset, scale: int) -> Dataset:
    """``ds`` with ``source`` = each image downscaled ``scale`` times (bicubic, antialiased):
    the low-resolution inputs of super-resolution."""
    if ds.kind != "image" or ds.streamed:
        raise ValueError(f"data.lr_scale needs images held in memory; {ds.name} is "
                         f"{'streamed' if ds.streamed else ds.kind}")
    h, w = ds.x.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"data.lr_scale={scale} does not divide the {h}x{w} images; choose "
                         f"a data.resolution that is a multiple of {scale}")
    lr = F.interpolate(ds.x, size=(h // scale, w // scale), mode="bicubic",
                       align_corners=False, antialias=True).clamp(-1, 1)
    return dataclasses.replace(ds, source=lr)
