"""Applying a trained translator: ``gankit translate`` and ``gankit upscale``, and the paired
fidelity of its outputs (``gankit eval --metrics psnr,ssim``).

- `translate`: images [N, C, S, S] (the run's source shape) through G, in batches; for a
  CycleGAN run ``direction`` picks G_AB (``AtoB``) or G_BA (``BtoA``).
- `upscale`: one image of any size through a super-resolution G, in overlapping tiles of
  ``tile`` low-resolution pixels: each tile's output is weighted by a ramp that falls
  linearly to the tile's edges inside the overlap, and the weighted sum is divided by the
  summed weights, so no seam shows and memory stays bounded by one tile.
- `read_images` / `write_like`: an image file, a folder of images or an npz (``x``) in, the
  same layout out (a folder mirrors the relative paths as PNG; an npz gets ``x``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gankit.data._common import convert_channels, resize_images
from gankit.data._folder_index import EXTENSIONS, find_images
from gankit.utils.io import atomic_write_bytes

DIRECTIONS = ("AtoB", "BtoA")


def translator(run, direction: str = "AtoB", ema: bool = True) -> torch.nn.Module:
    """The network of ``run`` (a `gankit.api.LoadedRun`) that maps sources one way."""
    G = run.net(ema)
    if getattr(G, "takes", "latent") != "image":
        raise ValueError(f"{run.run_dir}: generator {run.config.generator.name} samples from "
                         f"latents; translate and upscale need a translation run (pix2pix, "
                         f"cyclegan, srresnet, srgan, esrgan, pixelda); use gankit sample")
    if direction not in DIRECTIONS:
        raise ValueError(f"--direction must be AtoB or BtoA, got {direction!r}")
    if hasattr(G, "reconstruct"):  # two domains: G_AB is the first network, G_BA the second
        return G.first if direction == "AtoB" else G.second
    if direction == "BtoA":
        raise ValueError(f"{run.run_dir} translates one way only (A to B); --direction BtoA "
                         f"needs a cyclegan run")
    return G


def source_shape(run) -> tuple[int, int, int]:
    """One source image's shape [C, S, S] (a CycleGAN run: one domain's)."""
    c, h, w = run.info.source_shape
    return (c // run.info.domains, h, w)


@torch.no_grad()
def translate(run, x: torch.Tensor, direction: str = "AtoB", ema: bool = True,
              batch_size: int = 64) -> torch.Tensor:
    """Outputs [N, C', S', S'] in [-1, 1] of sources ``x`` [N, C, H, W] in [-1, 1], resized
    (shorter side, centre crop) and converted to the run's source shape first."""
    G = translator(run, direction, ema)
    c, side, _ = source_shape(run)
    x = convert_channels(resize_images(x.float(), side), c)
    device = next(G.parameters()).device
    return torch.cat([G(x[i:i + batch_size].to(device)).clamp(-1, 1).cpu()
                      for i in range(0, len(x), batch_size)])


def _ramp(n: int, overlap: int) -> torch.Tensor:
    """1-D blending weights: rising linearly over ``overlap`` pixels at both ends."""
    w = torch.ones(n)
    if overlap > 0:
        edge = (torch.arange(overlap, dtype=torch.float32) + 0.5) / overlap
        w[:overlap] = edge
        w[n - overlap:] = edge.flip(0)
    return w


@torch.no_grad()
def upscale(run, image: torch.Tensor, tile: int = 48, overlap: int = 8,
            ema: bool = True) -> torch.Tensor:
    """A super-resolution run's output [C, H*s, W*s] of ``image`` [C, H, W] in [-1, 1], any
    size, computed in ``tile``-pixel low-resolution tiles overlapping by ``overlap``."""
    G = translator(run, "AtoB", ema)
    scale = run.info.sample_shape[-1] // run.info.source_shape[-1]
    if scale < 2:
        raise ValueError(f"{run.run_dir} does not upscale (its outputs are the size of its "
                         f"inputs); use gankit translate")
    if not 0 <= overlap < tile // 2:
        raise ValueError(f"--overlap must lie in [0, tile / 2), got {overlap} with --tile "
                         f"{tile}")
    c = source_shape(run)[0]
    x = convert_channels(image[None].float(), c)
    _, _, h, w = x.shape
    th, tw = min(tile, h), min(tile, w)
    device = next(G.parameters()).device
    out = torch.zeros(1, run.info.sample_shape[0], h * scale, w * scale)
    weight = torch.zeros(1, 1, h * scale, w * scale)

    def starts(size: int, t: int) -> list[int]:
        step = max(1, t - overlap)
        s = list(range(0, max(size - t, 0) + 1, step))
        return s if s[-1] == size - t else [*s, size - t]

    for top in starts(h, th):
        for left in starts(w, tw):
            y = G(x[..., top:top + th, left:left + tw].to(device)).float().cpu()
            ov = overlap * scale
            wy, wx = _ramp(th * scale, ov if th < h else 0), _ramp(tw * scale,
                                                                   ov if tw < w else 0)
            if top == 0:  # the image's own border needs no fade
                wy[:ov] = 1
            if top + th == h:
                wy[len(wy) - ov:] = 1
            if left == 0:
                wx[:ov] = 1
            if left + tw == w:
                wx[len(wx) - ov:] = 1
            mask = (wy[:, None] * wx[None, :])[None, None]
            rows = slice(top * scale, (top + th) * scale)
            cols = slice(left * scale, (left + tw) * scale)
            out[..., rows, cols] += y * mask
            weight[..., rows, cols] += mask
    return (out / weight).clamp(-1, 1)[0]


def _to_tensor(path: Path) -> torch.Tensor:
    with Image.open(path) as img:
        rgb = np.array(img.convert("RGB"))
    return torch.from_numpy(rgb).permute(2, 0, 1).float() / 127.5 - 1


def read_images(spec: str | Path) -> tuple[str, list[tuple[str, torch.Tensor]]]:
    """(kind, [(name, image [C, H, W] in [-1, 1])]) of an image file, a folder (names are
    relative paths) or an npz (``x``, names are indices); kind is file, folder or npz."""
    path = Path(spec)
    if path.is_dir():
        files = find_images(path)
        if not files:
            raise ValueError(f"{path}: the folder holds no images ({', '.join(EXTENSIONS)})")
        return "folder", [(f.relative_to(path).as_posix(), _to_tensor(f)) for f in files]
    if path.suffix == ".npz" and path.is_file():
        from gankit.data.npz import _scale, _to_nchw

        with np.load(path) as data:
            if "x" not in data.files:
                raise ValueError(f"{path}: needs an array 'x' of images")
            x = _scale(_to_nchw(data["x"], str(path)), str(path))
        return "npz", [(str(i), img) for i, img in enumerate(x)]
    if path.is_file():
        return "file", [(path.name, _to_tensor(path))]
    raise ValueError(f"{path}: no such image, folder or npz file")


def _png(img: torch.Tensor) -> bytes:
    import io

    arr = ((img.clamp(-1, 1) + 1) * 127.5).round().byte()
    arr = arr[0].numpy() if arr.shape[0] == 1 else arr.permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def write_like(kind: str, items: list[tuple[str, torch.Tensor]], out: str | Path) -> Path:
    """Write outputs in the input's layout: one PNG, a folder mirroring the relative paths
    (as .png), or an npz with ``x`` (uint8 [N, C, H, W]). Atomic per file."""
    out = Path(out)
    if kind == "npz":
        import io

        x = torch.stack([img for _, img in items])
        buf = io.BytesIO()
        np.savez(buf, x=((x.clamp(-1, 1) + 1) * 127.5).round().byte().numpy())
        atomic_write_bytes(out, buf.getvalue())
        return out
    if kind == "file":
        if out.is_dir():
            out = out / (Path(items[0][0]).stem + ".png")
        atomic_write_bytes(out, _png(items[0][1]))
        return out
    for name, img in items:
        target = out / Path(name).with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, _png(img))
    return out


@torch.no_grad()
def fidelity(outputs: torch.Tensor, targets: torch.Tensor, border: int) -> dict[str, float]:
    """Mean PSNR (dB) and SSIM of outputs against targets, SR protocol
    (`gankit.metrics.psnr`): Y channel, ``border`` pixels shaved."""
    from gankit.metrics import psnr, ssim

    return {"psnr": float(psnr(outputs, targets, border).mean()),
            "ssim": float(ssim(outputs, targets, border).mean())}


def bicubic(x: torch.Tensor, scale: int) -> torch.Tensor:
    """The bicubic upscaling baseline of SR papers, clamped to [-1, 1]."""
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False).clamp(-1, 1)


FIDELITY = ("psnr", "ssim")


def evaluate_pairs(run, against: str | None = None, ema: bool = True,
                   tile: int = 48) -> dict[str, float]:
    """PSNR and SSIM of a translation run's outputs against ground truth.

    A super-resolution run (outputs larger than inputs) is scored on the held-out photos
    (`gankit.data.photos.HELD_OUT`, whole, each cropped to a multiple of the scale) unless
    ``against`` names paired data: each HR image is downscaled as in training (bicubic,
    antialiased), upscaled by `upscale`, and compared with the border shaved by the scale;
    bicubic upscaling of the same inputs is scored beside it (keys ``*_bicubic``). Any other
    run translates ``against``'s sources (default: the run's training data) and compares
    them with the targets, no border shaved. Keys state the protocol, e.g.
    ``psnr_y_shave4_photos_heldout``.
    """
    from gankit.data import load_dataset

    scale = run.info.sample_shape[-1] // run.info.source_shape[-1]
    if run.info.domains == 2:
        raise ValueError("psnr and ssim need paired ground truth; a cyclegan run has none")
    if scale > 1 and against is None:
        from gankit.data.photos import heldout_photos

        outs, bic, truths = [], [], []
        for img in heldout_photos().values():
            h, w = (s - s % scale for s in img.shape[1:])
            hr = convert_channels(img[None, :, :h, :w], run.info.sample_shape[0])
            lr = F.interpolate(hr, size=(h // scale, w // scale), mode="bicubic",
                               align_corners=False, antialias=True).clamp(-1, 1)
            outs.append(upscale(run, lr[0], tile=tile, ema=ema)[None])
            bic.append(bicubic(lr, scale))
            truths.append(hr)
        tag = f"y_shave{scale}_photos_heldout"
        results: dict[str, float] = {}
        for name, images in (("", outs), ("_bicubic", bic)):
            scores = [fidelity(o, t, scale) for o, t in zip(images, truths)]
            for metric in FIDELITY:
                results[f"{metric}_{tag}{name}"] = float(np.mean([s[metric] for s in scores]))
        return results
    spec = against or run.config.data.name
    ds = load_dataset(spec, resolution=run.info.sample_shape[-1])
    if ds.source is None and run.config.data.lr_scale:
        from gankit.data.paired import with_sr_source

        ds = with_sr_source(ds, run.config.data.lr_scale)
    if ds.source is None:
        raise ValueError(f"--against {spec}: psnr and ssim need paired data (sources and "
                         f"targets), e.g. paired:A,B or edges2mnist:test")
    outputs = translate(run, ds.source, ema=ema)
    targets = convert_channels(ds.x, outputs.shape[1])
    tag = f"y_{spec.replace(':', '_').replace(',', '_')}"
    scores = fidelity(outputs, targets, scale if scale > 1 else 0)
    return {f"{m}_{tag}": scores[m] for m in FIDELITY}
