"""Stacked MNIST with critic-guided rejection sampling (`gankit.refine`) against plain sampling.

    PYTHONPATH=src python bench/stacked_mnist_refine.py RUN_DIR STEP --seed S \\
        [--refine-set KEY=VALUE ...] [--critic-seeds 0 1 2] [--samples 26000]

Loads the run's generator at STEP and counts modes, as the benchmark does, on ``--samples``
plain samples (latents seeded S + 12345, the bench's), then, for each critic seed, fits the
critic on the 50,000 training stacks against G's samples and counts modes on as many
refined samples drawn from the same latent stream. Prints one JSON line each, with the
critic's held-out accuracy, the acceptance rate and the seconds the refinement took
(fit and sampling; counting excluded). docs/benchmarks.md, "A thirteenth round", has the
figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

from gankit import api
from gankit.benchmarks.stacked_mnist import NUM_SAMPLES, count_modes, score_generator
from gankit.metrics.features import build_extractor
from gankit.refine import RefineOptions


def rounded(d: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir")
    p.add_argument("step", type=int)
    p.add_argument("--seed", type=int, default=0, help="the run's seed (the bench's latents)")
    p.add_argument("--samples", type=int, default=NUM_SAMPLES)
    p.add_argument("--refine-set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--critic-seeds", type=int, nargs="+", default=[0])
    args = p.parse_args()
    base = RefineOptions.parse(args.refine_set)
    extractor = build_extractor("lenet_mnist5k")
    run = api.load(args.run_dir, step=args.step)
    G = run.net(ema=False)
    plain = score_generator(G, run.config.z_dim, args.seed, args.samples, extractor)
    print(json.dumps({"run": args.run_dir, "step": args.step, "sampling": "plain",
                      **rounded(plain)}), flush=True)
    for cs in args.critic_seeds:
        options = dataclasses.replace(base, seed=cs)
        t = time.perf_counter()
        sampler = api.refined_sampler(run, options, ema=False)
        x = sampler.sample(args.samples, seed=args.seed + 12345)
        secs = time.perf_counter() - t
        print(json.dumps({"run": args.run_dir, "step": args.step, "sampling": "refined",
                          "critic_seed": cs, **rounded(count_modes(x, extractor)),
                          **rounded(sampler.report), "seconds": round(secs, 1),
                          "options": dataclasses.asdict(options)}), flush=True)


if __name__ == "__main__":
    main()
