"""Issue 36's measured targets on trained runs (the commands that train them are in the
docstring of each function; one job at a time).

    PYTHONPATH=src python experiments/translation_checks.py pix2pix runs/p2p
    PYTHONPATH=src python experiments/translation_checks.py cyclegan runs/cyc
    PYTHONPATH=src python experiments/translation_checks.py sr runs/srresnet runs/srgan
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch
import torch.nn.functional as F

from gankit import api, translation
from gankit.data import load_dataset
from gankit.metrics.features import build_extractor


def _accuracy(x: torch.Tensor, y: torch.Tensor) -> float:
    lenet = build_extractor("lenet_mnist5k")
    with torch.no_grad():
        return float((lenet.logits(x).argmax(1) == y).float().mean())


def pix2pix(run_dir: str) -> dict:
    """`gankit train pix2pix --out RUN`: outputs of the held-out edge maps
    (``edges2mnist:test``) assigned to their source digit's class by lenet_mnist5k (target
    >= 95 %), and their L1 distance to the true digits."""
    run = api.load(run_dir)
    test = load_dataset("edges2mnist:test", resolution=run.info.sample_shape[-1])
    out = translation.translate(run, test.source)
    return {"class_agreement": _accuracy(out, test.y),
            "l1": float((out - test.x).abs().mean()),
            "real_digits_accuracy": _accuracy(test.x, test.y)}


def cyclegan(run_dir: str) -> dict:
    """`gankit train cyclegan --out RUN`: sklearn digits translated to mnist5k style
    (AtoB) classified by lenet_mnist5k, against the same digits naively upscaled (target:
    translated >= upscaled)."""
    run = api.load(run_dir)
    digits = load_dataset("digits")
    side = run.info.sample_shape[-1]
    naive = F.interpolate(digits.x, size=(side, side), mode="bilinear", align_corners=False)
    out = translation.translate(run, digits.x, "AtoB")
    return {"translated_accuracy": _accuracy(out, digits.y),
            "upscaled_accuracy": _accuracy(naive, digits.y)}


def high_frequency_energy(x: torch.Tensor) -> float:
    """Mean squared response of a 3x3 Laplacian on the luma of images [N, C, H, W]: how
    much fine detail they hold."""
    grey = x.mean(1, keepdim=True)
    k = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    return float(F.conv2d(grey, k).pow(2).mean())


def _lowres(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """HR images [N, C, H, W] (sides multiples of ``scale``) downscaled as in training:
    bicubic, antialiased, clamped."""
    size = (hr.shape[-2] // scale, hr.shape[-1] // scale)
    return F.interpolate(hr, size=size, mode="bicubic", align_corners=False,
                         antialias=True).clamp(-1, 1)


def _heldout_hr(scale: int) -> list[torch.Tensor]:
    """The held-out photos [1, 3, H, W], each cut to multiples of ``scale``."""
    from gankit.data.photos import heldout_photos

    cut = [(img, img.shape[1] - img.shape[1] % scale, img.shape[2] - img.shape[2] % scale)
           for img in heldout_photos().values()]
    return [img[None, :, :h, :w] for img, h, w in cut]


def sr_crops(out_png: str, *run_dirs: str, crop: int = 64, zoom: int = 3) -> None:
    """One row per held-out photo: a ``crop``-pixel square from its centre upscaled x4 by
    bicubic, by each run in turn, then the ground truth; enlarged ``zoom`` times so the
    detail shows."""
    from gankit.data.photos import heldout_photos
    from gankit.utils.images import save_grid

    runs = [api.load(d) for d in run_dirs]
    scale = runs[0].info.sample_shape[-1] // runs[0].info.source_shape[-1]
    tiles = []
    for img in heldout_photos().values():
        top, left = (img.shape[1] - crop) // 2, (img.shape[2] - crop) // 2
        hr = img[None, :, top:top + crop, left:left + crop]
        lr = _lowres(hr, scale)
        row = [translation.bicubic(lr, scale)]
        row += [translation.upscale(run, lr[0])[None] for run in runs]
        tiles += row + [hr]
    save_grid(torch.cat(tiles), out_png, nrow=len(runs) + 2, scale=zoom)


def sr(*run_dirs: str) -> dict:
    """`gankit train srresnet --out R1`, `gankit train srgan --out R2 --set
    train.init_from=R1` (and esrgan): PSNR/SSIM on the held-out photos against bicubic,
    and the high-frequency energy of the outputs against the ground truth's (and of
    bicubic's). ``crops=PNG`` as the first argument also writes `sr_crops` there."""
    if run_dirs and run_dirs[0].startswith("crops="):
        sr_crops(run_dirs[0][len("crops="):], *run_dirs[1:])
        run_dirs = run_dirs[1:]
    results = {"bicubic_x4_hf_energy": float(np.mean([
        high_frequency_energy(translation.bicubic(_lowres(hr, 4), 4)) for hr in _heldout_hr(4)]))}
    for run_dir in run_dirs:
        run = api.load(run_dir)
        scale = run.info.sample_shape[-1] // run.info.source_shape[-1]
        fid = translation.evaluate_pairs(run)
        energies, truth = [], []
        for hr in _heldout_hr(scale):
            energies.append(high_frequency_energy(
                translation.upscale(run, _lowres(hr, scale)[0])[None]))
            truth.append(high_frequency_energy(hr))
        results[run_dir] = {**fid, "hf_energy": float(np.mean(energies)),
                            "hf_energy_truth": float(np.mean(truth))}
    return results


if __name__ == "__main__":
    kind, *dirs = sys.argv[1:]
    print(json.dumps({"pix2pix": pix2pix, "cyclegan": cyclegan, "sr": sr}[kind](*dirs),
                     indent=2))
