"""Training speed alone and beside a second training, under OpenMP wait policies.

Each case starts fresh processes (the policy must be set before PyTorch loads its OpenMP
runtime) that train dcgan on mnist5k for ``--steps`` steps after a short warm-up and report
the seconds of those steps: first one process alone, then two at once. Prints, per case,
the solo time, the pair's mean time, ``pair / solo`` and the solo time against the
default's. Targets (issue 34): two concurrent trainings take at most 2.5x their solo time,
and the chosen default is at most 5 % slower alone than PyTorch's own (libgomp spins
300,000 times before a waiting thread sleeps; gankit's import makes it 3,000).

    python bench/concurrency.py [--steps 60] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

CHILD = r"""
import sys, time
import gankit
from gankit import api
from gankit.training.loop import Trainer
from gankit.training.state import build_state
import torch
cfg = api.make_config("dcgan", data="mnist5k", overrides=["train.log_interval=50",
    "train.sample_interval=0", "train.checkpoint_interval=0"])
ds = api.dataset_for(cfg)
state = build_state(cfg, api.data_info(ds), torch.device("cpu"))
trainer = Trainer(state, ds, None, progress=False)
trainer.run(5)  # warm-up
print("READY", flush=True)
sys.stdin.readline()  # start together
t = time.perf_counter()
trainer.run(5 + int(sys.argv[1]))
print(f"{time.perf_counter() - t:.3f}", flush=True)
"""

# name -> environment added to the child's; gankit's default is what `import gankit` sets
CASES = {  # libgomp spins 300,000 times when nothing is set, PyTorch's default
    "pytorch default": {"GOMP_SPINCOUNT": "300000"},
    "gankit default": {},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "GOMP_SPINCOUNT=1000": {"GOMP_SPINCOUNT": "1000"},
    "GOMP_SPINCOUNT=10000": {"GOMP_SPINCOUNT": "10000"},
    "one thread": {"OMP_NUM_THREADS": "1"},
}


def timed(env: dict, jobs: int, steps: int) -> list[float]:
    """Seconds of ``steps`` training steps in each of ``jobs`` processes started together."""
    full = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    full.update(env)
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(steps)], env=full,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(jobs)]
    for p in procs:
        assert p.stdout.readline().strip() == "READY"
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    out = [float(p.stdout.readline()) for p in procs]
    for p in procs:
        p.wait()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=2, help="best of N for each measurement")
    ap.add_argument("--cases", help="comma-separated case names (default: all)")
    args = ap.parse_args()
    print(f"{os.cpu_count()} cores, dcgan on mnist5k, {args.steps} steps, best of "
          f"{args.repeats}")
    print(f"{'case':<26}{'solo s':>8}{'pair s':>8}{'pair/solo':>11}{'solo vs torch':>15}")
    base = None
    chosen = args.cases.split(",") if args.cases else list(CASES)
    for name in chosen:
        env = CASES[name]
        solo = min(timed(env, 1, args.steps)[0] for _ in range(args.repeats))
        pair = min(sum(timed(env, 2, args.steps)) / 2 for _ in range(args.repeats))
        base = base or solo
        print(f"{name:<26}{solo:>8.2f}{pair:>8.2f}{pair / solo:>11.2f}{solo / base:>15.3f}",
              flush=True)
        time.sleep(1)


if __name__ == "__main__":
    main()
