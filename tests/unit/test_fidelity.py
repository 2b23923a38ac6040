"""PSNR and SSIM under the SR protocol, against scikit-image and hand-computed values."""

import math

import numpy as np
import pytest
import torch

from gankit.metrics._fidelity import psnr, ssim, to_levels

skimage_metrics = pytest.importorskip("skimage.metrics")


def _images(seed, shape=(2, 3, 24, 20)):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g) * 2 - 1
    noisy = (x + 0.2 * torch.randn(shape, generator=g)).clamp(-1, 1)
    return noisy, x


def test_psnr_by_hand():
    a = torch.full((1, 1, 4, 4), -1.0)
    b = a.clone()
    b[0, 0, 0, 0] = 1.0  # one pixel off by 255 levels: MSE = 255^2 / 16
    assert psnr(a, b).item() == pytest.approx(10 * math.log10(16))
    assert psnr(a, a).item() == math.inf


def test_y_channel_is_bt601_studio_range():
    white = torch.ones(1, 3, 2, 2)
    black = -torch.ones(1, 3, 2, 2)
    assert to_levels(white).flatten().tolist() == pytest.approx([235.0] * 4)
    assert to_levels(black).flatten().tolist() == pytest.approx([16.0] * 4)


@pytest.mark.parametrize("y_channel,border", [(True, 4), (False, 0), (True, 0)])
def test_psnr_and_ssim_match_scikit_image(y_channel, border):
    out, truth = _images(0)
    a, b = (to_levels(t, y_channel) for t in (out, truth))
    if border:
        a, b = a[..., border:-border, border:-border], b[..., border:-border, border:-border]
    got_psnr = psnr(out, truth, border, y_channel)
    got_ssim = ssim(out, truth, border, y_channel)
    for i in range(len(out)):
        u, v = a[i].permute(1, 2, 0).numpy(), b[i].permute(1, 2, 0).numpy()
        ref_psnr = skimage_metrics.peak_signal_noise_ratio(v, u, data_range=255)
        ref_ssim = skimage_metrics.structural_similarity(
            u, v, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
            data_range=255, channel_axis=2)
        assert got_psnr[i].item() == pytest.approx(ref_psnr, abs=1e-6)
        assert got_ssim[i].item() == pytest.approx(ref_ssim, abs=1e-6)


def test_ssim_of_an_image_with_itself_is_one_and_errors_are_clear():
    _, truth = _images(1)
    assert np.allclose(ssim(truth, truth).numpy(), 1.0)
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(truth, truth[:, :1])
    with pytest.raises(ValueError, match="border=12 leaves nothing"):
        psnr(truth, truth, border=12)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(truth, truth, border=5)
