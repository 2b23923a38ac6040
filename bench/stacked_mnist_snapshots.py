"""Stacked MNIST modes and KL of an equal mixture of one run's checkpoints.

    PYTHONPATH=src python bench/stacked_mnist_snapshots.py RUN_DIR STEP [STEP ...] --seed S \\
        [--refine-set KEY=VALUE ...] [--critic each|shared] [--plain] [--samples 26000]

Loads G at each STEP and draws ``--samples`` samples from their equal mixture exactly as
`gankit bench stacked-mnist` does for a recipe with ``snapshots:`` (the steps in the order
given, generator i from latents seeded S + 12345 + 1000 i). Unless ``--plain``, each
generator is refined by its own critics, or with ``--critic shared`` (a recipe's
``snapshot_critic: shared``) the mixture by one set fitted to it. With one STEP and
``--plain`` it reproduces the bench's plain score of that checkpoint. Prints one JSON
line. docs/benchmarks.md, "A seventeenth round" and "An eighteenth round", has the
figures.
"""

from __future__ import annotations

import argparse
import json
import time

from gankit import api
from gankit.benchmarks.stacked_mnist import (
    NUM_SAMPLES,
    SNAPSHOT_CRITICS,
    count_modes,
    mixture_sample,
)
from gankit.refine import RefineOptions


def score(run_dir: str, steps: list[int], seed: int, samples: int, options,
          critic: str = "each") -> dict:
    runs = [api.load(run_dir, step=s) for s in steps]
    real = api.dataset_for(runs[0].config).x if options is not None else None
    t = time.perf_counter()
    x, acceptance = mixture_sample([r.net(ema=False) for r in runs], runs[0].config.z_dim,
                                   seed, samples, options, real, critic)
    row = {"run": run_dir, "steps": steps, "sampling": "plain" if options is None else "refined",
           "critic": critic,
           **count_modes(x)}
    if acceptance is not None:
        row["acceptance"] = acceptance
    row["seconds"] = time.perf_counter() - t
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir")
    p.add_argument("steps", type=int, nargs="+")
    p.add_argument("--seed", type=int, default=0, help="the run's seed (the bench's latents)")
    p.add_argument("--samples", type=int, default=NUM_SAMPLES)
    p.add_argument("--refine-set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--critic", choices=SNAPSHOT_CRITICS, default="each",
                   help="critics per generator (each) or one set for the mixture (shared)")
    p.add_argument("--plain", action="store_true", help="no refinement")
    args = p.parse_args(argv)
    if args.plain and args.refine_set:
        p.error("--plain draws without a critic; drop --refine-set or --plain")
    options = None if args.plain else RefineOptions.parse(args.refine_set)
    if args.plain and args.critic != "each":
        p.error("--plain draws without a critic; drop --critic or --plain")
    print(json.dumps(score(args.run_dir, args.steps, args.seed, args.samples, options,
                           args.critic)),
          flush=True)


if __name__ == "__main__":
    main()
