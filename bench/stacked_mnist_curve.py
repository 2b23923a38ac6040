"""Stacked MNIST learning curves: modes and KL at fixed step counts, for tuning recipes.

Trains a preset on ``stacked_mnist`` with extra ``--set`` overrides in chunks of
``--every`` steps (train, then resume: bitwise the same as one run) and after each chunk
counts modes on 26,000 samples of the raw generator and of its EMA, with the benchmark's
own sampling and counter (`gankit.benchmarks.stacked_mnist.score_generator`). One JSON
line per chunk; the "What moves the Stacked MNIST numbers" table of docs/benchmarks.md
came from it, e.g.

    python bench/stacked_mnist_curve.py --out /tmp/b32 --steps 8000 --every 4000 \\
        --set g_optimizer.lr=1e-3 --set d_optimizer.lr=1e-3 --set train.batch_size=32

The reported ``train_min`` excludes the scoring time.
"""

from __future__ import annotations

import argparse
import json
import time

from gankit import api
from gankit.benchmarks.stacked_mnist import NUM_SAMPLES, score_generator
from gankit.metrics.features import build_extractor


def score(run_dir: str, seed: int, samples: int, extractor) -> dict:
    run = api.load(run_dir)
    return {label: {k: round(v, 4) for k, v in
                    score_generator(net, run.config.z_dim, seed, samples, extractor).items()}
            for label, net in (("G", run.G), ("ema", run.G_ema)) if net is not None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="dcgan")
    p.add_argument("--out", required=True, help="run directory (must not exist)")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--every", type=int, default=2000)
    p.add_argument("--samples", type=int, default=NUM_SAMPLES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], dest="sets", metavar="KEY=VALUE")
    args = p.parse_args()
    extractor = build_extractor("lenet_mnist5k")
    overrides = ["data.name=stacked_mnist", "train.sample_interval=0",
                 f"train.checkpoint_interval={args.every}", *args.sets]
    done, train_s = 0, 0.0
    while done < args.steps:
        nxt = min(done + args.every, args.steps)
        t = time.perf_counter()
        if done == 0:
            api.train(args.preset, seed=args.seed, steps=nxt, overrides=overrides,
                      out=args.out, progress=False)
        else:
            api.resume(args.out, steps=nxt, progress=False)
        train_s += time.perf_counter() - t
        done = nxt
        print(json.dumps({"step": done, "train_min": round(train_s / 60, 2),
                          **score(args.out, args.seed, args.samples, extractor)}), flush=True)


if __name__ == "__main__":
    main()
