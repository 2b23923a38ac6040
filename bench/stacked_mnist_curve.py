"""Stacked MNIST learning curves: modes and KL at fixed step counts, for tuning recipes.

Trains a preset on ``stacked_mnist`` with extra ``--set`` overrides in chunks of
``--every`` steps (train, then resume: bitwise the same as one run) and after each chunk
counts modes on 26,000 samples of the raw generator and of its EMA, with the benchmark's
own sampling and counter (`gankit.benchmarks.stacked_mnist.score_generator`). One JSON
line per chunk; the "What moves the Stacked MNIST numbers" table of docs/benchmarks.md
came from it, e.g.

    python bench/stacked_mnist_curve.py --out /tmp/b32 --steps 8000 --every 4000 \\
        --set g_optimizer.lr=1e-3 --set d_optimizer.lr=1e-3 --set train.batch_size=32

``--branch-from RUN_DIR:STEP`` starts from that run's checkpoint at STEP instead of from
scratch (its files are copied into ``--out``, then resumed with the ``--set`` overrides,
which may change anything but the architecture or data): the "third round" rows of
docs/benchmarks.md branch from one 6,000-step ``dcgan_wide`` run this way.

The reported ``train_min`` excludes the scoring time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from gankit import api
from gankit.benchmarks.stacked_mnist import NUM_SAMPLES, score_generator
from gankit.metrics.features import build_extractor
from gankit.training.checkpoint import checkpoint_dir, checkpoint_stem


def score(run_dir: str, seed: int, samples: int, extractor) -> dict:
    run = api.load(run_dir)
    return {label: {k: round(v, 4) for k, v in
                    score_generator(net, run.config.z_dim, seed, samples, extractor).items()}
            for label, net in (("G", run.G), ("ema", run.G_ema)) if net is not None}


def branch(spec: str, out: str) -> int:
    """Copy checkpoint STEP of RUN_DIR (``spec`` = "RUN_DIR:STEP") into ``out``; its step."""
    run_dir, _, step = spec.rpartition(":")
    if not run_dir or not step.isdigit():
        raise SystemExit(f"--branch-from wants RUN_DIR:STEP, got {spec!r}")
    stem = checkpoint_stem(run_dir, int(step))
    if not stem.with_suffix(".pt").is_file():
        raise SystemExit(f"--branch-from {spec}: no checkpoint {stem}.pt")
    if Path(out).exists():
        raise SystemExit(f"--out {out} exists; choose a new directory")
    checkpoint_dir(out).mkdir(parents=True)
    for suffix in (".pt", ".safetensors"):
        shutil.copy(stem.with_suffix(suffix), checkpoint_dir(out))
    shutil.copy(Path(run_dir) / "config.yaml", Path(out) / "config.yaml")
    return int(step)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="dcgan")
    p.add_argument("--out", required=True, help="run directory (must not exist)")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--every", type=int, default=2000)
    p.add_argument("--samples", type=int, default=NUM_SAMPLES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], dest="sets", metavar="KEY=VALUE")
    p.add_argument("--branch-from", metavar="RUN_DIR:STEP",
                   help="continue that run's checkpoint with the --set changes")
    args = p.parse_args()
    extractor = build_extractor("lenet_mnist5k")
    overrides = ["data.name=stacked_mnist", "train.sample_interval=0",
                 f"train.checkpoint_interval={args.every}", *args.sets]
    done, train_s = 0, 0.0
    if args.branch_from:
        done = branch(args.branch_from, args.out)
    while done < args.steps:
        nxt = min(done + args.every, args.steps)
        t = time.perf_counter()
        if done == 0:
            api.train(args.preset, seed=args.seed, steps=nxt, overrides=overrides,
                      out=args.out, progress=False)
        else:  # the overrides are idempotent; a branch's first resume applies them
            api.resume(args.out, steps=nxt, overrides=overrides, progress=False)
        train_s += time.perf_counter() - t
        done = nxt
        print(json.dumps({"step": done, "train_min": round(train_s / 60, 2),
                          **score(args.out, args.seed, args.samples, extractor)}), flush=True)


if __name__ == "__main__":
    main()
