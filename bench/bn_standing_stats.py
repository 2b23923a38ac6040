"""Stacked MNIST modes and KL of one checkpoint's generator with its BatchNorm running
statistics as trained, and with "standing statistics" (Brock et al. 2019, BigGAN section
3.1 and appendix): the running statistics reset and re-estimated as a plain average over
``--batches`` fresh batches of ``--batch`` latents in train mode, then sampled in eval mode.

    PYTHONPATH=src python bench/bn_standing_stats.py RUN_DIR STEP [--seed S] [--ema]

Both scores use the benchmark's own latents and counter
(`gankit.benchmarks.stacked_mnist.score_generator`, 26,000 samples), so the two lines
differ only in G's BatchNorm statistics. ``--ema`` scores G_ema, whose buffers the EMA
hook copies from G rather than averages. docs/benchmarks.md, "A tenth round", has the
figures.
"""

from __future__ import annotations

import argparse
import copy
import json

import torch
from torch import nn

from gankit import api
from gankit.benchmarks.stacked_mnist import score_generator
from gankit.metrics.features import build_extractor


@torch.no_grad()
def standing(G: nn.Module, z_dim: int, batches: int, batch: int, seed: int) -> nn.Module:
    """A copy of G whose BatchNorm statistics average ``batches`` train-mode batches."""
    G = copy.deepcopy(G)
    norms = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average instead of an exponential one
    G.train()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(batches):
        G(torch.randn(batch, z_dim, generator=gen))
    return G.eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir")
    p.add_argument("step", type=int)
    p.add_argument("--seed", type=int, default=0, help="the benchmark seed (latents)")
    p.add_argument("--ema", action="store_true", help="score G_ema instead of G")
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args()
    extractor = build_extractor("lenet_mnist5k")
    run = api.load(args.run_dir, step=args.step)
    G, z_dim = (run.G_ema if args.ema else run.G), run.config.z_dim
    if G is None:
        raise SystemExit(f"{args.run_dir} step {args.step} holds no G_ema (no EMA hook)")
    for label, net in (("running statistics", G),
                       (f"standing statistics ({args.batches} x {args.batch})",
                        standing(G, z_dim, args.batches, args.batch, seed=999))):
        scores = score_generator(net, z_dim, args.seed, extractor=extractor)
        print(json.dumps({"bn": label, **{k: round(float(v), 4) for k, v in scores.items()}}),
              flush=True)


if __name__ == "__main__":
    main()
