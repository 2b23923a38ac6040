"""Issue 35's measurement: each modern family on Stacked MNIST at 32x32 for an equal
wall-clock budget (train.time_limit), one job at a time, then FID/KID with the shipped
LeNet extractor over 26,000 samples of G_ema (modes and KL: families_modes.py); the
BigGAN run on mnist5k adds conditioning accuracy and a truncation curve (FID vs psi).

    PYTHONPATH=src python experiments/families_stacked_mnist.py --out runs/families \
        --minutes 20 biggan dcgan sngan_resnet sagan pggan stylegan2
    PYTHONPATH=src python experiments/families_stacked_mnist.py --out runs/families --table

Each family runs its preset on stacked_mnist at 32x32 (dcgan and stylegan2 ship with
mnist5k data), seed 0, at a width that makes a step take about 0.2-1.9 s on 2 cores: the
resnet families at width 16 (G 64 channels; the shipped 256-channel G takes 19-21 s per
step, 60 steps in 20 minutes), pggan at 64 channels (shipped 128: 2.7 s per 32x32 step)
with phases of 400 steps so that it reaches 32x32 about half-way; dcgan and stylegan2 as
shipped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESNET_16 = ["generator.width=16", "discriminator.width=16"]
SETS = {  # the presets' shipped widths take 19-21 s per step here (resnet families)
    "dcgan": ["data.name=stacked_mnist", "data.resolution=32"],
    "sngan_resnet": RESNET_16,
    "sagan": RESNET_16,
    "stylegan2": ["data.name=stacked_mnist"],
    "pggan": ["hooks.growth.phase_steps=400", "generator.width=64",
              "generator.max_channels=64", "discriminator.width=64",
              "discriminator.max_channels=64"],
    "biggan": RESNET_16,  # conditional mnist5k at 32x32
}
PSIS = (0.25, 0.5, 1.0, 1.5)


def gankit(*args: str) -> None:
    cmd = [sys.executable, "-m", "gankit", *args]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def run(name: str, out: Path, minutes: float) -> None:
    run_dir = out / name
    sets = [*SETS[name], "train.steps=1000000", f"train.time_limit={minutes}",
            "train.sample_interval=0", "train.checkpoint_interval=0"]
    t0 = time.time()
    gankit("train", name, "--out", str(run_dir), "--seed", "0", "--no-progress",
           *[a for s in sets for a in ("--set", s)])
    (run_dir / "wall_s.txt").write_text(f"{time.time() - t0:.1f}\n")
    if name == "biggan":
        subprocess.run([sys.executable, "-m", "gankit.conditional_eval", str(run_dir), "100"],
                       check=True, stdout=open(run_dir / "cond_acc.txt", "w"))
        gankit("eval", str(run_dir), "--metrics", "fid,kid", "-n", "5000",
               "--extractor", "lenet_mnist5k", "--no-progress", "--out",
               str(run_dir / "eval.json"))
        for psi in PSIS:
            gankit("eval", str(run_dir), "--metrics", "fid,kid", "-n", "5000",
                   "--extractor", "lenet_mnist5k", "--truncation", str(psi), "--no-progress",
                   "--out", str(run_dir / f"eval_psi{psi}.json"))
    else:
        gankit("eval", str(run_dir), "--metrics", "fid,kid", "-n", "26000",
               "--extractor", "lenet_mnist5k", "--no-progress", "--out",
               str(run_dir / "eval.json"))


def row(run_dir: Path) -> dict:
    log = [json.loads(line) for line in open(run_dir / "log.jsonl")]
    ms = [r["time/step_ms"] for r in log if "time/step_ms" in r]
    steps = int(sorted((run_dir / "checkpoints").glob("step_*.pt"))[-1].stem.split("_")[1])
    metrics = json.loads((run_dir / "eval.json").read_text())
    pick = {k.split("_")[0] + ("_kl" if "modes_kl" in k else ""): v for k, v in
            metrics.items() if k.startswith(("fid_", "kid_mean", "modes_hit", "modes_kl"))}
    return {"steps": steps, "step_ms": statistics.median(ms),
            "wall_s": float((run_dir / "wall_s.txt").read_text()), **pick}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("names", nargs="*")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--minutes", type=float, default=20.0)
    p.add_argument("--table", action="store_true")
    a = p.parse_args()
    for name in a.names:
        run(name, a.out, a.minutes)
    if a.table:
        for d in sorted(a.out.iterdir()):
            if (d / "eval.json").exists():
                print(d.name, json.dumps(row(d)))


if __name__ == "__main__":
    main()
