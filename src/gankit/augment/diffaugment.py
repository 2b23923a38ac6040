"""Differentiable Augmentation (DiffAugment), Zhao et al. 2020, following the ops of the
authors' reference code (mit-han-lab/data-efficient-gans, ``DiffAugment_pytorch.py``).

The same random transformation family is applied to every input of D, real and fake alike,
and every op is differentiable, so G's gradient flows through the augmentation. Parameters
are drawn per sample from the run's generator (resume stays exact):

- ``color``: brightness x + U(-0.5, 0.5); saturation (x - m) * U(0, 2) + m around the
  per-pixel channel mean m; contrast (x - m) * U(0.5, 1.5) + m around the per-image mean m.
- ``translation``: out[i, j] = x[i + tx, j + ty], integer tx, ty uniform in [-s, s] with
  s = round(side / 8), zeros where the source lies outside the image.
- ``cutout``: a square of half the image side set to zero; its centre is uniform over the
  image (as in the reference code), so the square may be clipped at the border.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.components import AugmentationBase
from gankit.registry import AUGMENTATIONS

TRANSLATION_RATIO = 0.125  # reference code: shifts of up to 1/8 of the image side
CUTOUT_RATIO = 0.5  # reference code: the cut square's side is half the image side


def _uniform(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One U[0, 1) draw per sample, shaped [N, 1, 1, 1]."""
    return torch.rand(x.shape[0], 1, 1, 1, generator=generator, device=x.device, dtype=x.dtype)


def brightness(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """x + (u - 0.5) for u [N, 1, 1, 1] in [0, 1)."""
    return x + (u - 0.5)


def saturation(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Scale each pixel's deviation from its channel mean by 2u."""
    mean = x.mean(dim=1, keepdim=True)  # [N, 1, H, W]
    return (x - mean) * (u * 2.0) + mean


def contrast(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Scale each image's deviation from its mean by u + 0.5."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # [N, 1, 1, 1]
    return (x - mean) * (u + 0.5) + mean


def color(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    x = brightness(x, _uniform(x, generator))
    x = saturation(x, _uniform(x, generator))
    return contrast(x, _uniform(x, generator))


def translate(x: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    """out[n, :, i, j] = x[n, :, i + tx[n], j + ty[n]], zero outside; tx, ty int [N]."""
    n, _, h, w = x.shape
    rows = torch.arange(h, device=x.device).view(1, h, 1) + tx.view(n, 1, 1)  # [N, H, 1]
    cols = torch.arange(w, device=x.device).view(1, 1, w) + ty.view(n, 1, 1)  # [N, 1, W]
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)  # [N, H, W]
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    moved = x.permute(0, 2, 3, 1)[batch, rows.clamp(0, h - 1), cols.clamp(0, w - 1)]
    return torch.where(inside.unsqueeze(1), moved.permute(0, 3, 1, 2), x.new_zeros(()))


def translation(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    sx, sy = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    tx = torch.randint(-sx, sx + 1, (n,), generator=generator, device=x.device)
    ty = torch.randint(-sy, sy + 1, (n,), generator=generator, device=x.device)
    return translate(x, tx, ty)


def cutout_mask(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: tuple[int, int]
                ) -> torch.Tensor:
    """[N, 1, H, W] mask, 0 on rows top..top+size[0]-1 x cols left..left+size[1]-1."""
    n, _, h, w = x.shape
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    top, left = top.view(n, 1, 1), left.view(n, 1, 1)
    cut = (rows >= top) & (rows < top + size[0]) & (cols >= left) & (cols < left + size[1])
    return (~cut).unsqueeze(1).to(x.dtype)


def cutout(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    # the reference draws the centre in [0, side] (even size) or [0, side - 1] (odd size)
    cx = torch.randint(0, h + (1 - sh % 2), (n,), generator=generator, device=x.device)
    cy = torch.randint(0, w + (1 - sw % 2), (n,), generator=generator, device=x.device)
    return x * cutout_mask(x, cx - sh // 2, cy - sw // 2, (sh, sw))


OPS = {"color": color, "translation": translation, "cutout": cutout}


def parse_policy(policy: str) -> tuple[str, ...]:
    """``"color,translation"`` -> ("color", "translation"), checked against :data:`OPS`."""
    ops = tuple(p.strip() for p in policy.split(",") if p.strip())
    bad = [p for p in ops if p not in OPS]
    if not ops or bad or len(set(ops)) != len(ops):
        raise ValueError(f"policy must be a comma-separated subset "
                         f"of {','.join(OPS)} without repeats, got {policy!r}")
    return ops


@AUGMENTATIONS.register("diffaugment", "differentiable color/translation/cutout, Zhao 2020")
class DiffAugment(AugmentationBase):
    """images [N, C, H, W] -> augmented images [N, C, H, W] (differentiable)."""

    @dataclass(frozen=True)
    class Options:
        policy: str = "color,translation,cutout"  # ops applied in this order (any subset)

        def __post_init__(self) -> None:
            parse_policy(self.policy)

    def __init__(self, options=None, /, **values) -> None:
        super().__init__(options, **values)
        self.ops = parse_policy(self.options.policy)

    def __call__(self, x: torch.Tensor, step: int, generator: torch.Generator) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"augmentation 'diffaugment' needs images [N, C, H, W], got a "
                             f"batch of shape {list(x.shape)}; for 2D points remove "
                             f"augmentations.diffaugment (instance_noise works on points)")
        for op in self.ops:
            x = OPS[op](x, generator)
        return x
