"""Benchmark: feature extraction + FID, gankit's path against a straightforward reference
pipeline in the same process, and the full metric set on 10,000 samples.

    PYTHONPATH=src python bench/metrics.py [--threads 2] [--repeats 3]

Data: the 5,000 real mnist5k digits (not the full MNIST) are the real set; the 10,000
"generated" images are those digits plus a copy shifted by one pixel, in a seeded random order
(so the fake set holds exact copies of half the real set). Extractor: the shipped
``lenet_mnist5k``. The reference pipeline is what one writes from pytorch-fid's recipe: batches
of 50 under ``torch.no_grad()`` with a ``.numpy()`` copy per batch, ``np.cov``, and
``scipy.linalg.sqrtm``. gankit's path is ``compute_metrics`` (channels-last batches of 256 in
``inference_mode``, one host copy, float64 statistics, eigen-decomposition square root), timed
cold (empty cache: both sets extracted) and warm (real features and statistics cached, as on
every evaluation after the first). Timings are best of ``--repeats`` rounds, the pipelines
interleaved within each round so that load from other processes hits all of them alike.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings

import numpy as np
import scipy.linalg
import torch

from gankit.data import load_dataset
from gankit.evaluation import compute_metrics, evaluate_features
from gankit.metrics.features import build_extractor
from gankit.metrics.features.lenet import prepare

FULL_SET = ["fid", "kid", "is", "pr", "dc", "modes", "memorization"]


def make_fake(x: torch.Tensor) -> torch.Tensor:
    """10,000 images: the 5,000 digits and a copy shifted right by one pixel, shuffled."""
    shifted = torch.full_like(x, -1.0)
    shifted[..., 1:] = x[..., :-1]
    order = torch.randperm(2 * len(x), generator=torch.Generator().manual_seed(0))
    return torch.cat([x, shifted])[order]


def reference_features(net: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """Batches of 50 under no_grad, one host copy per batch, concatenated."""
    out = []
    with torch.no_grad():
        for i in range(0, len(x), 50):
            out.append(net.features(prepare(x[i : i + 50])).cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def reference_frechet(f1: np.ndarray, f2: np.ndarray) -> float:
    """np.mean / np.cov and scipy.linalg.sqrtm, as pytorch-fid."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sqrtm warns on the singular covariances (dead units)
        covmean = scipy.linalg.sqrtm(s1 @ s2).real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def exact_fid(x1: np.ndarray, x2: np.ndarray) -> float:
    """FID without forming covariances: Tr (S1 S2)^½ = nuclear norm of R1 R2ᵀ (QR factors of
    the centred, scaled feature matrices)."""
    a = (x1 - x1.mean(0)) / np.sqrt(len(x1) - 1)
    b = (x2 - x2.mean(0)) / np.sqrt(len(x2) - 1)
    r1, r2 = np.linalg.qr(a, mode="r"), np.linalg.qr(b, mode="r")
    diff = x1.mean(0) - x2.mean(0)
    nuclear = np.linalg.svd(r1 @ r2.T, compute_uv=False).sum()
    return float(diff @ diff + (a * a).sum() + (b * b).sum() - 2 * nuclear)


def reference_fid(net: torch.nn.Module, fake: torch.Tensor, real: torch.Tensor) -> float:
    return reference_frechet(reference_features(net, fake), reference_features(net, real))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=3, help="timings are best of this many")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    real = load_dataset("mnist5k").x
    fake = make_fake(real)
    reference_net = build_extractor("lenet_mnist5k").net.to(memory_format=torch.contiguous_format)
    extractor = build_extractor("lenet_mnist5k")
    print(
        f"torch {torch.__version__}, {args.threads} thread(s); fake {tuple(fake.shape)}, "
        f"real {tuple(real.shape)} (mnist5k), extractor lenet_mnist5k"
    )

    def gankit_cold():
        with tempfile.TemporaryDirectory() as cache:
            return compute_metrics(fake, real, ["fid"], extractor, "mnist5k", cache_dir=cache)

    warm_cache = tempfile.TemporaryDirectory()
    compute_metrics(fake, real, ["fid"], extractor, "mnist5k", cache_dir=warm_cache.name)

    def gankit_warm():
        return compute_metrics(fake, real, ["fid"], extractor, "mnist5k", cache_dir=warm_cache.name)

    pipelines = {
        "reference": lambda: reference_fid(reference_net, fake, real),
        "cold": gankit_cold,
        "warm": gankit_warm,
    }
    times = {name: [] for name in pipelines}
    values = {}
    for _ in range(args.repeats):
        for name, fn in pipelines.items():
            start = time.perf_counter()
            values[name] = fn()
            times[name].append(time.perf_counter() - start)
    warm_cache.cleanup()
    t_ref, t_cold, t_warm = (min(times[name]) for name in pipelines)
    fid_ref = values["reference"]
    fid_cold = values["cold"]["fid_10k_mnist5k_lenet"]
    fid_warm = values["warm"]["fid_10k_mnist5k_lenet"]
    print("\n== extraction + FID (fake 10k + real 5k) ==")
    print(f"reference pipeline      {t_ref:7.2f} s   FID {fid_ref:.10f}")
    print(
        f"gankit (cold cache)     {t_cold:7.2f} s   FID {fid_cold:.10f}   "
        f"speed-up {t_ref / t_cold:.2f}x"
    )
    print(
        f"gankit (cached real)    {t_warm:7.2f} s   FID {fid_warm:.10f}   "
        f"speed-up {t_ref / t_warm:.2f}x"
    )
    rel = abs(fid_cold - fid_ref) / fid_ref
    print(f"FID relative difference gankit vs reference: {rel:.2e}")
    # Where a difference comes from: the square root, or channels-last convolution rounding.
    # Arbiter: the exact value from the features (nuclear norm via QR, no covariance formed).
    f_fake, f_real = extractor.features(fake), extractor.features(real)
    r_fake, r_real = (
        reference_features(reference_net, fake),
        reference_features(reference_net, real),
    )
    exact = exact_fid(f_fake.double().numpy(), f_real.double().numpy())
    exact_ref = exact_fid(r_fake, r_real)
    print(
        f"  vs the exact value on the same features: gankit {abs(fid_cold - exact) / exact:.1e}, "
        f"reference sqrtm {abs(fid_ref - exact_ref) / exact_ref:.1e}; features differ by "
        f"{np.abs(f_fake.numpy() - r_fake).max():.1e} at most (values up to {r_fake.max():.1f}), "
        f"which moves the exact FID by {abs(exact - exact_ref) / exact_ref:.1e}"
    )

    print(f"\n== full metric set on 10k generated samples: {','.join(FULL_SET)} ==")
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        results = compute_metrics(fake, real, FULL_SET, extractor, "mnist5k", cache_dir=cache)
        total = time.perf_counter() - start
    print(f"compute_metrics, cold cache: {total:.2f} s")
    f_fake, p_fake = extractor.extract(fake)
    f_real, p_real = extractor.extract(real)
    inputs = ({"features": f_fake, "probs": p_fake}, {"features": f_real, "probs": p_real})
    for name in FULL_SET:
        start = time.perf_counter()
        evaluate_features(*inputs, [name])
        print(f"  {name:<13} {time.perf_counter() - start:6.2f} s")
    for key, value in results.items():
        print(f"  {key:<42} {value:.6g}")


if __name__ == "__main__":
    main()
