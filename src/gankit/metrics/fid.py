"""Fréchet Inception Distance (Heusel et al. 2017, "GANs trained by a two time-scale update
rule converge to a local Nash equilibrium").

FID = ||mu1 - mu2||² + Tr(S1 + S2 - 2 (S1 S2)^½) between Gaussians fitted to two feature sets.
Matches pytorch-fid (mseitzer) / the TTUR reference: mean and unbiased covariance
(``np.cov``, ddof = 1) in float64. Where those call ``scipy.linalg.sqrtm`` (which can return
complex or inaccurate results for near-singular covariances), the trace of the square root is
computed here from an eigen-decomposition: with R = S1^½ (symmetric PSD), S1 S2 is similar to
the symmetric PSD matrix R S2 R, so Tr (S1 S2)^½ = sum of sqrt of the eigenvalues of R S2 R;
eigenvalues at rounding level (below d * eps * max, or negative) are set to 0 in both steps.
The result is always a real number, and within ~1e-14 relative of the exact value (nuclear norm
of the product of the centred feature matrices) also for singular covariances, where sqrtm
loses up to ~1e-8.
"""

from __future__ import annotations

import warnings

import numpy as np

from gankit.metrics._common import FEATURES, Metric, as_float64, check_same_dim, require_real
from gankit.registry import METRICS


def feature_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of features, in float64.

    Args:
        features: [N, D] array or tensor, N >= 2.

    Returns:
        ``(mu [D], sigma [D, D])``. Warns when N < D: the covariance is then rank-deficient
        and FID is biased and unreliable (use more samples or a smaller feature layer).
    """
    x = as_float64(features, "features", min_rows=2)
    n, d = x.shape
    if n < d:
        warnings.warn(
            f"FID statistics from {n} samples of {d}-d features: fewer samples than dimensions "
            "gives a singular covariance and an unreliable FID; use at least as many samples "
            "as feature dimensions (10,000 recommended for Inception's 2048-d pool3)",
            RuntimeWarning,
            stacklevel=2,
        )
    mu = x.mean(axis=0)
    centred = x - mu
    sigma = centred.T @ centred / (n - 1)
    return mu, sigma


def _clip_rounding(w: np.ndarray) -> np.ndarray:
    """Zero the eigenvalues of a symmetric PSD matrix that are rounding noise.

    A symmetric eigensolver is accurate to about d * eps * max|eigenvalue|; eigenvalues below
    that (or negative) are indistinguishable from 0. Keeping them would add their square roots,
    ~sqrt(eps) instead of eps, to the trace: a 1e-6 relative FID error on features with dead
    (always-zero) units, where exactly singular covariances are the rule.
    """
    tol = len(w) * np.finfo(np.float64).eps * max(float(w.max()), 0.0)
    return np.where(w > tol, w, 0.0)


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr (S1 S2)^½ for symmetric PSD S1, S2 via the eigenvalues of S1^½ S2 S1^½."""
    w, v = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    root = (v * np.sqrt(_clip_rounding(w))) @ v.T  # S1^½, symmetric PSD
    m = root @ sigma2 @ root
    return float(np.sqrt(_clip_rounding(np.linalg.eigvalsh((m + m.T) / 2))).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    Args:
        mu1, mu2: means [D].
        sigma1, sigma2: symmetric PSD covariances [D, D].

    Returns:
        ||mu1 - mu2||² + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^½) >= 0 (a negative value can
        only come from rounding and is returned as 0).
    """
    mu1 = as_float64(mu1, "mu1", ndim=1)
    mu2 = as_float64(mu2, "mu2", ndim=1)
    sigma1 = as_float64(sigma1, "sigma1")
    sigma2 = as_float64(sigma2, "sigma2")
    d = mu1.shape[0]
    for name, value in (("mu2", mu2), ("sigma1", sigma1), ("sigma2", sigma2)):
        want = (d,) if value.ndim == 1 else (d, d)
        if value.shape != want:
            raise ValueError(f"{name} must have shape {want} to match mu1, got {value.shape}")
    diff = mu1 - mu2
    tr_covmean = trace_sqrt_product(sigma1, sigma2)
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)
    return max(value, 0.0)


@METRICS.register("fid", "Fréchet distance between Gaussian fits of features (Heusel 2017)")
class FID(Metric):
    """FID between generated and real features; key ``fid``."""

    needs = frozenset({FEATURES})

    def real_summary(self, real) -> dict[str, np.ndarray]:
        mu, sigma = feature_stats(real)
        return {"mu": mu, "sigma": sigma}

    def compute(self, fake, real, *, seed: int = 0, real_summary=None) -> dict[str, float]:
        del seed  # deterministic
        fake = as_float64(fake, "fake features", min_rows=2)
        if real_summary is None:
            require_real(real, "fid")
            real_arr = as_float64(real, "real features", min_rows=2)
            check_same_dim(fake, real_arr, "fid")
            real_summary = self.real_summary(real_arr)
        mu1, sigma1 = feature_stats(fake)
        return {"fid": frechet_distance(mu1, sigma1, real_summary["mu"], real_summary["sigma"])}
