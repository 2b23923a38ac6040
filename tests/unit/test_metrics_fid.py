"""FID: reference equivalence with scipy's sqrtm, closed forms, degenerate inputs."""

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

from gankit.metrics import feature_stats, frechet_distance
from gankit.registry import METRICS


def _scipy_fid(x1, x2):
    """Independent float64 reference: np.mean/np.cov and scipy.linalg.sqrtm, as pytorch-fid."""
    mu1, mu2 = x1.mean(0), x2.mean(0)
    s1, s2 = np.cov(x1, rowvar=False), np.cov(x2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    diff = mu1 - mu2
    return diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def _nuclear_fid(x1, x2):
    """Exact FID for any rank, without forming covariances: with centred, scaled features
    A, B (S1 = AᵀA, S2 = BᵀB), Tr (S1 S2)^½ is the nuclear norm of A Bᵀ, which equals that
    of R1 R2ᵀ for the QR factors A = Q1 R1, B = Q2 R2."""
    a = (x1 - x1.mean(0)) / np.sqrt(len(x1) - 1)
    b = (x2 - x2.mean(0)) / np.sqrt(len(x2) - 1)
    diff = x1.mean(0) - x2.mean(0)
    r1, r2 = np.linalg.qr(a, mode="r"), np.linalg.qr(b, mode="r")
    nuclear = np.linalg.svd(r1 @ r2.T, compute_uv=False).sum()
    return diff @ diff + (a * a).sum() + (b * b).sum() - 2 * nuclear


@pytest.fixture
def features():
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=(400, 16)) @ rng.normal(size=(16, 16))
    x2 = rng.normal(size=(500, 16)) @ rng.normal(size=(16, 16)) * 0.7 + 0.3
    return x1, x2


def test_feature_stats_match_numpy(features):
    x1, _ = features
    mu, sigma = feature_stats(torch.from_numpy(x1).float())
    np.testing.assert_allclose(mu, x1.astype(np.float32).astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(
        sigma, np.cov(x1.astype(np.float32).astype(np.float64), rowvar=False), rtol=1e-10
    )
    assert mu.dtype == sigma.dtype == np.float64


def test_frechet_distance_matches_scipy_sqrtm(features):
    x1, x2 = features
    ours = frechet_distance(*feature_stats(x1), *feature_stats(x2))
    np.testing.assert_allclose(ours, _scipy_fid(x1, x2), rtol=1e-6)
    np.testing.assert_allclose(ours, _nuclear_fid(x1, x2), rtol=1e-9)
    np.testing.assert_allclose(ours, 122.37656116448312, rtol=1e-9)  # pinned scipy value


def test_metric_class_equals_function(features):
    x1, x2 = features
    out = METRICS.build("fid").compute(torch.from_numpy(x1), x2)
    assert set(out) == {"fid"}
    np.testing.assert_allclose(out["fid"], _scipy_fid(x1, x2), rtol=1e-6)


def test_closed_form_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, -2.0, 0.5]), np.array([1.0, 1.0, 0.0, 0.0])
    a, b = np.array([1.0, 4.0, 0.25, 2.0]), np.array([9.0, 1.0, 0.25, 0.5])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert expected == pytest.approx(5.25 + 4 + 1 + 0 + (np.sqrt(2) - np.sqrt(0.5)) ** 2)
    value = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    np.testing.assert_allclose(value, expected, rtol=1e-12)


def test_closed_form_rotated_gaussians():
    # Same spectra, rotated frames: S2 = Q S1 Qᵀ with S1 = diag(a). Tr(S1 S2)^½ has no simple
    # closed form in general, but for Q = I it is Σ a and FID = ||Δμ||².
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    s = q @ np.diag([3.0, 2.0, 1.0, 0.5, 0.1, 0.01]) @ q.T
    mu = rng.normal(size=6)
    np.testing.assert_allclose(frechet_distance(mu, s, mu + 0.5, s), 6 * 0.25, rtol=1e-9)


def test_closed_form_from_large_samples():
    rng = np.random.default_rng(2)
    n = 100_000
    mu1, mu2 = np.array([0.0, 1.0, 0.0]), np.array([1.0, 1.0, 0.5])
    a, b = np.array([1.0, 4.0, 0.25]), np.array([4.0, 1.0, 0.25])
    x1 = mu1 + rng.normal(size=(n, 3)) * np.sqrt(a)
    x2 = mu2 + rng.normal(size=(n, 3)) * np.sqrt(b)
    expected = 1.25 + 1.0 + 1.0 + 0.0
    fid = METRICS.build("fid").compute(x1, x2)["fid"]
    np.testing.assert_allclose(fid, expected, rtol=0.03)


def test_identical_sets_give_zero(features):
    x1, _ = features
    np.testing.assert_allclose(METRICS.build("fid").compute(x1, x1.copy())["fid"], 0.0, atol=1e-9)


def test_fewer_samples_than_dims_warns_and_stays_real():
    rng = np.random.default_rng(3)
    x1, x2 = rng.normal(size=(20, 64)), rng.normal(size=(30, 64)) + 0.1
    with pytest.warns(RuntimeWarning, match="fewer samples than dimensions"):
        fid = METRICS.build("fid").compute(x1, x2)["fid"]
    assert isinstance(fid, float) and np.isfinite(fid)
    np.testing.assert_allclose(fid, _nuclear_fid(x1, x2), rtol=1e-10)


def test_dead_units_keep_full_precision():
    # ReLU features with always-zero units give exactly singular covariances; rounding-level
    # eigenvalues must not leak their square roots into the trace (a 1e-6 error before).
    rng = np.random.default_rng(5)
    mix = rng.normal(size=(64, 64)) * 5
    x1 = np.maximum(rng.normal(size=(3000, 64)) @ mix, 0) * (np.arange(64) % 4 != 0)
    x2 = np.maximum(rng.normal(size=(2000, 64)) @ mix + 1, 0) * (np.arange(64) % 4 != 0)
    fid = frechet_distance(*feature_stats(x1), *feature_stats(x2))
    np.testing.assert_allclose(fid, _nuclear_fid(x1, x2), rtol=1e-10)


def test_no_warning_with_enough_samples(features):
    x1, x2 = features
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        METRICS.build("fid").compute(x1, x2)


def test_singular_covariances_never_complex():
    # Rank-1 covariances, where sqrtm(S1 S2) is defective: still a real, exact value.
    u, v = np.array([1.0, 0.0, 0.0]), np.array([0.6, 0.8, 0.0])
    s1, s2 = 4.0 * np.outer(u, u), 9.0 * np.outer(v, v)
    # Tr (S1 S2)^½ = sqrt(4 * 9) |u·v| = 6 * 0.6.
    value = frechet_distance(np.zeros(3), s1, np.zeros(3), s2)
    np.testing.assert_allclose(value, 4.0 + 9.0 - 2 * 3.6, rtol=1e-12)


def test_bad_shapes_are_errors():
    with pytest.raises(ValueError, match="sigma2 must have shape"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))
    with pytest.raises(ValueError, match="NaN"):
        feature_stats(np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="same feature shape"):
        METRICS.build("fid").compute(np.zeros((5, 2)), np.zeros((5, 3)))
