"""Ablation of the recommended Stacked MNIST recipe (issue 34 §1): which of its parts it
needs. One seed, every variant in this one process, on the public API.

Training variants, each sampled plainly and with the recipe's sampler (critics of one
round, cap at the 0.95 quantile, G's passes in bf16):
  full       the recipe: width 128, batch 32, lr 1e-3, feature matching 0.3, output_scale
             1.5, bf16, and from step 10,000 the joint stage (batch 64, D scores real and
             fake in one call), 12,000 steps
  no_joint   no joint stage: batch 32 and separate real / fake passes throughout
  joint_all  D scores real and fake jointly from the start, batch 32 throughout (no
             d_joint_batch_from, no batch_schedule)
  joint_b32  the joint stage at batch 32 (no batch_schedule)
  no_fm      without feature matching
  no_scale   generator.output_scale 1.0 (plain tanh)

The figures in docs/benchmarks.md were measured with this script as of commit 851eaf3
(which also sampled the full run with two rounds of critics and a checkpoint mixture,
options since removed); the API calls changed since, the variants did not.

    PYTHONPATH=src python experiments/stacked_mnist_ablation.py --seed 30 --out runs/ablation
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from gankit import api
from gankit.benchmarks.stacked_mnist import count_modes, draw
from gankit.refine import RefineOptions, refine
from gankit.sampling import STREAMS

BASE = ["data.name=stacked_mnist", "generator.width=128", "discriminator.width=128",
        "generator.output_scale=1.5", "train.precision=bf16", "train.batch_size=32",
        "g_optimizer.lr=1e-3", "d_optimizer.lr=1e-3", "hooks.ema=null",
        "regularizers.feature_matching.weight=0.3", "train.steps=12000",
        "train.sample_interval=0", "train.checkpoint_interval=0"]
JOINT = ["train.d_joint_batch=true", "train.d_joint_batch_from=10000",
         "train.batch_schedule=[[10000, 64]]"]
TRAINING = {
    "full": BASE + JOINT,
    "no_joint": BASE,
    "joint_all": BASE + ["train.d_joint_batch=true"],
    "joint_b32": BASE + JOINT[:2],
    "no_fm": [s for s in BASE if "feature_matching" not in s] + JOINT,
    "no_scale": [s for s in BASE if "output_scale" not in s] + JOINT,
}
RECIPE_SAMPLER = RefineOptions(quantile=0.95, precision="bf16")
SAMPLES = 26_000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=30)
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--variants", default=",".join(TRAINING))
    p.add_argument("--steps", type=int, help="fewer steps, for a smoke run (default 12,000)")
    p.add_argument("--samples", type=int, default=SAMPLES, help="samples counted")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    latents = args.seed + STREAMS["latents"]
    for name in args.variants.split(","):
        if name in results:
            continue
        t = time.perf_counter()
        sets = TRAINING[name] + ([f"train.steps={args.steps}"] if args.steps else [])
        res = api.train("dcgan", seed=args.seed, overrides=sets, out=out / name, progress=False)
        minutes = (time.perf_counter() - t) / 60
        G, z_dim = res.state.sample_net(ema=True).eval(), res.state.config.z_dim
        sampler = refine(G, z_dim, api.dataset_for(res.state.config).x, RECIPE_SAMPLER)
        rows = {"train_minutes": minutes,
                "plain": count_modes(draw(G, z_dim, latents, args.samples)),
                "refined1": {**count_modes(sampler.sample(args.samples, seed=latents)),
                             "acceptance": sampler.report["acceptance"]}}
        for label in ("plain", "refined1"):
            print(f"{name} {label}: modes {rows[label]['modes']}, KL {rows[label]['kl']:.4f}",
                  flush=True)
        results[name] = rows
        results_path.write_text(json.dumps(results, indent=2))
    print(f"{'variant':<12}{'sampler':<16}{'modes':>7}{'KL':>9}{'KL ch.':>8}")
    for name, rows in results.items():
        for label, r in rows.items():
            if isinstance(r, dict):
                print(f"{name:<12}{label:<16}{r['modes']:>7}{r['kl']:>9.4f}"
                      f"{r['kl_channels']:>8.3f}")


if __name__ == "__main__":
    main()
