"""Benchmark: refined sampling's generator passes in bfloat16 autocast (``gankit.refine``,
``precision=bf16``) against float32, in one process.

    PYTHONPATH=src python bench/refine_precision.py [RUN_DIR] [--threads 2] [--repeats 3]

Times G's forward pass as `gankit.refine` draws its critic's fakes and its candidates
(`gankit.sampling.generate`: latents to float32 images on the CPU) in both precisions,
alternately, best of ``--repeats`` rounds of 4,000 samples, at batches of 250, 500
(refinement's) and 1,000.
G is the Stacked MNIST recipe's (DCGAN at width 128, 3x28x28), freshly initialised, or
RUN_DIR's trained one. Prints ms per sample, the ratio fp32 / bf16 and, on one batch, how
far the bf16 images lie from the fp32 ones (mean and largest absolute difference, and the
share of pixels that cross the ink view's threshold 0).

bf16 is fast where the CPU has AMX or AVX-512 BF16 (or on GPUs from Ampere on); elsewhere
oneDNN emulates it and the ratio falls below 1.
"""

from __future__ import annotations

import argparse
import time

import torch

from gankit import api
from gankit.sampling import generate
from gankit.training.state import build_state

RECIPE = ["data.name=stacked_mnist", "generator.width=128", "discriminator.width=128",
          "generator.output_scale=1.5"]


def generator(run_dir: str | None):
    if run_dir:
        run = api.load(run_dir)
        return run.net(ema=False).eval(), run.config.z_dim
    config = api.make_config("dcgan", data="stacked_mnist", device="cpu", overrides=RECIPE)
    state = build_state(config, api.data_info(api.dataset_for(config)), torch.device("cpu"))
    return state.G.eval(), config.z_dim


def ms_per_sample(forward, z: torch.Tensor, batch: int) -> float:
    start = time.perf_counter()
    for zb in z.split(batch):
        forward(zb)
    return (time.perf_counter() - start) / len(z) * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir", nargs="?", help="a trained run (default: a fresh recipe G)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    G, z_dim = generator(args.run_dir)
    z = torch.randn(4000, z_dim, generator=torch.Generator().manual_seed(0))
    passes = {k: (lambda zb, bf16=(k == "bf16"): generate(G, zb, batch_size=len(zb), bf16=bf16))
              for k in ("fp32", "bf16")}
    print(f"{args.threads} threads; ms per sample of G's forward pass, best of "
          f"{args.repeats} x {len(z)} samples")
    with torch.no_grad():
        for batch in (250, 500, 1000):
            for f in passes.values():
                f(z[:batch])  # warm-up
            best = {k: float("inf") for k in passes}
            for _ in range(args.repeats):  # alternate within each round
                for k, f in passes.items():
                    best[k] = min(best[k], ms_per_sample(f, z, batch))
            print(f"  batch {batch}: fp32 {best['fp32']:.3f}  bf16 {best['bf16']:.3f}  "
                  f"fp32 / bf16 = {best['fp32'] / best['bf16']:.2f}x")
        a, b = passes["fp32"](z[:500]), passes["bf16"](z[:500])
    d = (a - b).abs()
    print(f"bf16 against fp32 on 500 samples: mean |diff| {d.mean():.2e}, max {d.max():.3f}, "
          f"pixels crossing 0: {((a > 0) != (b > 0)).double().mean():.2e}")


if __name__ == "__main__":
    main()
