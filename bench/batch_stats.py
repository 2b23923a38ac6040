"""Benchmark: the cost of D's batch statistics, gankit's layers against ``torch.var``.

    PYTHONPATH=src python bench/batch_stats.py [--threads 2] [--repeats 5]

Times forward + backward, in the same process and interleaved within each round (best of
``--repeats`` rounds of 20 calls), of:
- the minibatch stddev layer (ProGAN) on a width-128 DCGAN D's flattened features, batch 32,
  Stacked MNIST shape: gankit's ``MinibatchStdDev`` against the same statistic written with
  ``torch.var(dim=0)``, and the whole D with the layer against D without it;
- the unbiased feature-matching noise term tr(Cov)/B on the same [32, 12544] features,
  gankit's against ``torch.var(0).sum() / B``.

``torch.var`` over an outer dimension takes a slow path on CPU; gankit writes the variance
out as the mean of squared deviations.
"""

from __future__ import annotations

import argparse
import time

import torch

from gankit.layers.minibatch import MinibatchStdDev
from gankit.registry import DISCRIMINATORS
from gankit.regularizers.feature_matching import _mean_noise


def stddev_with_torch_var(f: torch.Tensor, group: int = 4) -> torch.Tensor:
    """The same layer with ``torch.var``: the baseline."""
    n = f.shape[0]
    grouped = f.view(group, n // group, -1)
    std = (grouped.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=1)
    return torch.cat([f, std.repeat(group).unsqueeze(1)], dim=1)


def noise_with_torch_var(f: torch.Tensor) -> torch.Tensor:
    return f.var(0, unbiased=True).sum() / len(f)


def timed(fn, calls: int = 20) -> float:
    """Milliseconds per call of fn() (forward + backward), after 3 warm-up calls."""
    for _ in range(3):
        fn()
    t = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t) / calls * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(32, 3, 28, 28)
    d_plain = DISCRIMINATORS.get("dcgan")(in_shape=(3, 28, 28), width=128)
    d_stddev = DISCRIMINATORS.get("dcgan")(in_shape=(3, 28, 28), width=128, minibatch_stddev=4)
    f = d_plain.body(x).detach().requires_grad_(True)  # [32, 12544]
    layer = MinibatchStdDev(4)
    ours, theirs = layer(f), stddev_with_torch_var(f)
    if not torch.allclose(ours, theirs, rtol=1e-5, atol=1e-6):
        raise SystemExit(f"stddev layers disagree: {(ours - theirs).abs().max():.3g}")
    if not torch.allclose(_mean_noise(f), noise_with_torch_var(f), rtol=1e-5):
        raise SystemExit("noise terms disagree")
    cases = {
        "stddev layer, gankit": lambda: layer(f).sum().backward(),
        "stddev layer, torch.var": lambda: stddev_with_torch_var(f).sum().backward(),
        "D with stddev": lambda: d_stddev(x).sum().backward(),
        "D without": lambda: d_plain(x).sum().backward(),
        "FM noise, gankit": lambda: _mean_noise(f).backward(),
        "FM noise, torch.var": lambda: noise_with_torch_var(f).backward(),
    }
    best = {name: float("inf") for name in cases}
    for _ in range(args.repeats):
        for name, fn in cases.items():
            best[name] = min(best[name], timed(fn))
    print(f"{args.threads} threads, batch 32, features {tuple(f.shape)}; ms per forward+backward")
    for name, ms in best.items():
        print(f"  {name:26s} {ms:8.2f}")
    print(f"stddev layer: torch.var / gankit = "
          f"{best['stddev layer, torch.var'] / best['stddev layer, gankit']:.1f}x")
    print(f"D with the layer / D without = {best['D with stddev'] / best['D without']:.2f}")
    print(f"FM noise: torch.var / gankit = "
          f"{best['FM noise, torch.var'] / best['FM noise, gankit']:.1f}x")


if __name__ == "__main__":
    main()
