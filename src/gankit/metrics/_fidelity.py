"""Paired fidelity of restored images against their ground truth: PSNR and SSIM under the
super-resolution papers' protocol (SRGAN, Ledig et al. 2017; ESRGAN, Wang et al. 2018; as
BasicSR evaluates them).

Protocol, for images in [-1, 1]:
1. both images are quantised to 8-bit levels (what a saved PNG holds);
2. on the Y channel (``y_channel``, the default): RGB becomes ITU-R BT.601 luma in studio
   range, Y = 16 + 65.481 R + 128.553 G + 24.966 B with R, G, B in [0, 1] (MATLAB's
   ``rgb2ycbcr``), kept as a float; a grey image is used as it is (0..255);
3. ``border`` pixels are shaved off every side (the SR scale factor, by convention);
4. PSNR = 10 log10(255^2 / MSE) per image; SSIM (Wang et al. 2004) with an 11x11 Gaussian
   window of sigma 1.5, K1 = 0.01, K2 = 0.03, population (not sample) covariances, averaged
   over the window positions that lie inside the image and over channels, per image;
5. the mean over images is reported.

SSIM equals scikit-image's ``structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=255)`` (tested to 1e-6) and PSNR its
``peak_signal_noise_ratio(..., data_range=255)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_Y_WEIGHTS = (65.481, 128.553, 24.966)  # BT.601 studio-range luma for RGB in [0, 1]


def to_levels(x: torch.Tensor, y_channel: bool = True) -> torch.Tensor:
    """Images [N, C, H, W] in [-1, 1] -> float64 8-bit levels: [N, 1, H, W] Y (studio
    range 16..235) for RGB with ``y_channel``, else every channel in 0..255."""
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must be [N, 1 or 3, H, W], got {tuple(x.shape)}")
    levels = ((x.detach().double().clamp(-1, 1) + 1) * 127.5).round()
    if y_channel and levels.shape[1] == 3:
        w = torch.tensor(_Y_WEIGHTS, dtype=torch.float64, device=x.device).view(1, 3, 1, 1)
        return 16.0 + (levels / 255.0 * w).sum(1, keepdim=True)
    return levels


def _prepare(x: torch.Tensor, target: torch.Tensor, border: int, y_channel: bool):
    if x.shape != target.shape:
        raise ValueError(f"output {tuple(x.shape)} and ground truth {tuple(target.shape)} "
                         "differ in shape")
    if border < 0 or 2 * border >= min(x.shape[-2:]):
        raise ValueError(f"border={border} leaves nothing of {tuple(x.shape[-2:])} images")
    a, b = to_levels(x, y_channel), to_levels(target, y_channel)
    if border:
        a, b = a[..., border:-border, border:-border], b[..., border:-border, border:-border]
    return a, b


def psnr(x: torch.Tensor, target: torch.Tensor, border: int = 0,
         y_channel: bool = True) -> torch.Tensor:
    """PSNR in dB of each image of ``x`` against ``target`` (both [N, C, H, W] in [-1, 1]):
    float64 [N] (inf where identical)."""
    a, b = _prepare(x, target, border, y_channel)
    mse = (a - b).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(255.0 ** 2 / mse)


def _gaussian_window(sigma: float = 1.5, truncate: float = 3.5) -> torch.Tensor:
    """The 1-D Gaussian scipy's ``gaussian_filter`` uses: radius int(truncate sigma + 0.5)."""
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * (t / sigma) ** 2)
    return w / w.sum()


def ssim(x: torch.Tensor, target: torch.Tensor, border: int = 0,
         y_channel: bool = True) -> torch.Tensor:
    """Mean SSIM of each image of ``x`` against ``target`` (both [N, C, H, W] in [-1, 1]):
    float64 [N]. Images must be at least 11 pixels on a side after the border is shaved."""
    a, b = _prepare(x, target, border, y_channel)
    w = _gaussian_window().to(a.device)
    k = len(w)
    if min(a.shape[-2:]) < k:
        raise ValueError(f"SSIM needs images of at least {k}x{k} pixels after the border, "
                         f"got {tuple(a.shape[-2:])}")
    n, c = a.shape[:2]

    def blur(t: torch.Tensor) -> torch.Tensor:  # valid separable filtering per channel
        t = t.reshape(n * c, 1, *t.shape[-2:])
        t = F.conv2d(t, w.view(1, 1, k, 1))
        return F.conv2d(t, w.view(1, 1, 1, k))

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1)
                                                      * (var_a + var_b + c2))
    return s.reshape(n, c, -1).mean(-1).mean(1)

