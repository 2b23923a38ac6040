"""Benchmark: a training step in bfloat16 autocast (``train.precision=bf16``) against the
same step in float32, in one process.

    PYTHONPATH=src python bench/precision.py [--threads 2] [--repeats 3] [--steps 20]

Builds the Stacked MNIST recipe's networks (DCGAN at width 128, 3x28x28, feature matching
0.3, G's output clamp) twice from one seed, one Trainer per precision, and times whole
training steps (D update, G update) alternately, best of ``--repeats`` rounds of
``--steps`` steps, at batch 32 and 64. Prints ms per step and the ratio fp32 / bf16.
``--channels-last`` adds a trainer in bf16 with G's and D's weights in the channels-last
memory format (oneDNN's preferred layout on CPU), and its ratio to bf16. ``--set KEY=VALUE``
changes every trainer (e.g. ``train.d_joint_batch=true``, the recipe's last stage);
``--with KEY=VALUE`` adds a bf16 trainer with that change too and prints its cost against
bf16 (e.g. ``regularizers.r1.gamma=1``).

bf16 is fast where the CPU has AMX or AVX-512 BF16 (or on GPUs from Ampere on); on other
CPUs oneDNN emulates it and the ratio falls below 1.
"""

from __future__ import annotations

import argparse
import time

import torch

from gankit import api
from gankit.training.loop import Trainer
from gankit.training.state import build_state

RECIPE = ["generator.width=128", "discriminator.width=128", "generator.output_scale=1.5",
          "g_optimizer.lr=1e-3", "d_optimizer.lr=1e-3", "hooks.ema=null",
          "regularizers.feature_matching.weight=0.3", "health.enabled=false"]


def trainer(precision: str, batch: int, channels_last: bool = False,
            sets: tuple[str, ...] = ()) -> Trainer:
    config = api.make_config("dcgan", data="stacked_mnist", device="cpu",
                             overrides=[*RECIPE, f"train.batch_size={batch}",
                                        f"train.precision={precision}", *sets])
    ds = api.dataset_for(config)
    state = build_state(config, api.data_info(ds), torch.device("cpu"))
    if channels_last:  # the convolutions then run (and return) NHWC
        state.G.to(memory_format=torch.channels_last)
        state.D.to(memory_format=torch.channels_last)
    return Trainer(state, ds, None, progress=False)


def time_steps(t: Trainer, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        t.d_step(t.state.step, log=False)
        t.g_step(log=False)
    return (time.perf_counter() - start) / steps * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--channels-last", action="store_true",
                   help="also time bf16 with channels-last weights")
    p.add_argument("--set", action="append", default=[], dest="sets", metavar="KEY=VALUE",
                   help="an override for every trainer")
    p.add_argument("--with", action="append", default=[], dest="extra", metavar="KEY=VALUE",
                   help="an override for an extra bf16 trainer, timed against bf16")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    sets = tuple(args.sets)
    if sets:
        print("every trainer: --set " + " --set ".join(sets))
    print(f"{args.threads} threads; ms per training step (D update + G update), best of "
          f"{args.repeats} x {args.steps} steps")
    for batch in (32, 64):
        runs = {k: trainer(k, batch, sets=sets) for k in ("fp32", "bf16")}
        if args.channels_last:
            runs["bf16 channels-last"] = trainer("bf16", batch, channels_last=True, sets=sets)
        if args.extra:
            runs["bf16 with"] = trainer("bf16", batch, sets=(*sets, *args.extra))
        for t in runs.values():
            time_steps(t, 3)  # warm-up
        best = {k: float("inf") for k in runs}
        for _ in range(args.repeats):  # the trainers alternate within each round
            for k, t in runs.items():
                best[k] = min(best[k], time_steps(t, args.steps))
        print(f"  batch {batch}: fp32 {best['fp32']:.1f}  bf16 {best['bf16']:.1f}  "
              f"fp32 / bf16 = {best['fp32'] / best['bf16']:.2f}x", end="")
        cl = best.get("bf16 channels-last")
        print("" if cl is None else f"  bf16 channels-last {cl:.1f}  bf16 / channels-last = "
              f"{best['bf16'] / cl:.2f}x", end="")
        extra = best.get("bf16 with")
        print("" if extra is None else f"  bf16 with {' '.join(args.extra)} {extra:.1f}  "
              f"its cost {extra / best['bf16']:.2f}x")


if __name__ == "__main__":
    main()
