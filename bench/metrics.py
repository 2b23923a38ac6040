"""Benchmark: feature extraction + FID, gankit's path against a straightforward reference
pipeline in the same process, and the full metric set on 10,000 samples.

    PYTHONPATH=src python bench/metrics.py [--threads 2] [--repeats 3]

Data: the 5,000 real mnist5k digits (not the full MNIST) are the real set; the 10,000
"generated" images are those digits plus a copy shifted by one pixel. Extractor: the shipped
``lenet_mnist5k``. The reference pipeline is what one writes from pytorch-fid's recipe: batches
of 50 under ``torch.no_grad()`` with a ``.numpy()`` copy per batch, ``np.cov``, and
``scipy.linalg.sqrtm``. gankit's path is ``compute_metrics`` (channels-last batches of 256 in
``inference_mode``, one host copy, float64 statistics, eigen-decomposition square root), timed
cold (empty cache: both sets extracted) and warm (real features and statistics cached, as on
every evaluation after the first). Timings are best of ``--repeats``.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import scipy.linalg
import torch

from gankit.data import load_dataset
from gankit.metrics import compute_metrics, evaluate_features
from gankit.metrics.features import build_extractor
from gankit.metrics.features.lenet import prepare

FULL_SET = ["fid", "kid", "is", "pr", "dc", "modes", "memorization"]


def make_fake(x: torch.Tensor) -> torch.Tensor:
    """10,000 images: the 5,000 digits and a copy shifted right by one pixel."""
    shifted = torch.full_like(x, -1.0)
    shifted[..., 1:] = x[..., :-1]
    return torch.cat([x, shifted])


def reference_fid(net: torch.nn.Module, fake: torch.Tensor, real: torch.Tensor) -> float:
    """The straightforward pipeline: per-batch host copies, np.cov, scipy sqrtm."""

    def features(x):
        out = []
        with torch.no_grad():
            for i in range(0, len(x), 50):
                out.append(net.features(prepare(x[i : i + 50])).cpu().numpy())
        return np.concatenate(out).astype(np.float64)

    f1, f2 = features(fake), features(real)
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def best_of(repeats: int, fn):
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value


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
    print(f"torch {torch.__version__}, {args.threads} thread(s); fake {tuple(fake.shape)}, "
          f"real {tuple(real.shape)} (mnist5k), extractor lenet_mnist5k")

    t_ref, fid_ref = best_of(args.repeats, lambda: reference_fid(reference_net, fake, real))

    def gankit_cold():
        with tempfile.TemporaryDirectory() as cache:
            return compute_metrics(fake, real, ["fid"], extractor, "mnist5k", cache_dir=cache)

    t_cold, cold = best_of(args.repeats, gankit_cold)
    with tempfile.TemporaryDirectory() as cache:
        compute_metrics(fake, real, ["fid"], extractor, "mnist5k", cache_dir=cache)  # fill
        t_warm, warm = best_of(
            args.repeats,
            lambda: compute_metrics(fake, real, ["fid"], extractor, "mnist5k", cache_dir=cache),
        )
    fid_cold, fid_warm = cold["fid_10k_mnist5k_lenet"], warm["fid_10k_mnist5k_lenet"]
    print("\n== extraction + FID (fake 10k + real 5k) ==")
    print(f"reference pipeline      {t_ref:7.2f} s   FID {fid_ref:.10f}")
    print(f"gankit (cold cache)     {t_cold:7.2f} s   FID {fid_cold:.10f}   "
          f"speed-up {t_ref / t_cold:.2f}x")
    print(f"gankit (cached real)    {t_warm:7.2f} s   FID {fid_warm:.10f}   "
          f"speed-up {t_ref / t_warm:.2f}x")
    print(f"FID relative difference gankit vs reference: {abs(fid_cold - fid_ref) / fid_ref:.2e}")

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
