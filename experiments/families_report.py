"""The tables of issue 35's measurements from the runs of `families_stacked_mnist.py` (FID,
KID: its eval.json) and `families_modes.py` (modes and KL, the Stacked MNIST protocol):
markdown rows for docs/architectures.md, the sample grids copied to docs/families/, and
the BigGAN truncation curve (FID vs psi) as docs/families/biggan_truncation.png.

    PYTHONPATH=src python experiments/families_report.py runs/families
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "families"
ORDER = ("dcgan", "sngan_resnet", "sagan", "stylegan2", "pggan")


def _metric(metrics: dict, prefix: str) -> float | None:
    for key, value in metrics.items():
        if key.startswith(prefix):
            return value
    return None


def family_row(run: Path) -> str:
    log = [json.loads(line) for line in open(run / "log.jsonl")]
    ms = [r["time/step_ms"] for r in log if "time/step_ms" in r]
    ckpt = sorted((run / "checkpoints").glob("step_*.pt"))[-1]
    steps = int(ckpt.stem.split("_")[1])
    m = json.loads((run / "eval.json").read_text())
    grid = sorted((run / "samples").glob("step_*.png"))[-1]
    DOCS.mkdir(parents=True, exist_ok=True)
    shutil.copy(grid, DOCS / f"{run.name}.png")
    wall = float((run / "wall_s.txt").read_text())
    modes = json.loads((run / "modes.json").read_text())  # experiments/families_modes.py
    return (f"| `{run.name}` | {steps:,} | {statistics.median(ms) / 1000:.2f} | "
            f"{_metric(m, 'fid_'):.1f} | {_metric(m, 'kid_mean_'):.2f} | "
            f"{modes['modes']} | {modes['kl']:.3f} | "
            f"{wall / 60:.1f} | ![{run.name}](families/{run.name}.png) |")


def biggan(run: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [f"conditioning accuracy: {(run / 'cond_acc.txt').read_text().strip()}"]
    plain = json.loads((run / "eval.json").read_text())
    points = []
    for f in sorted(run.glob("eval_psi*.json")):
        psi = float(f.stem[len("eval_psi"):])
        points.append((psi, _metric(json.loads(f.read_text()), "fid_")))
    points.sort()
    lines.append(f"FID untruncated {_metric(plain, 'fid_'):.1f}; " + ", ".join(
        f"psi {p:g}: {v:.1f}" for p, v in points))
    DOCS.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4.2, 3.0), dpi=100)
    ax.plot([p for p, _ in points], [v for _, v in points], "o-", label="truncated")
    ax.axhline(_metric(plain, "fid_"), color="grey", ls="--", label="untruncated")
    ax.set_xlabel("truncation psi")
    ax.set_ylabel("FID (lenet_mnist5k, 5k)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(DOCS / "biggan_truncation.png")
    grid = sorted((run / "samples").glob("step_*.png"))[-1]
    shutil.copy(grid, DOCS / "biggan.png")
    log = [json.loads(line) for line in open(run / "log.jsonl")]
    ms = [r["time/step_ms"] for r in log if "time/step_ms" in r]
    ckpt = sorted((run / "checkpoints").glob("step_*.pt"))[-1]
    lines.append(f"steps {int(ckpt.stem.split('_')[1]):,}, "
                 f"{statistics.median(ms) / 1000:.2f} s/step")
    return "\n".join(lines)


def main() -> None:
    root = Path(sys.argv[1])
    print("| family | steps | s/step | FID | KID | modes | KL | min | last grid |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in ORDER:
        if (root / name / "eval.json").exists():
            print(family_row(root / name))
    if (root / "biggan" / "cond_acc.txt").exists():
        print(biggan(root / "biggan"))


if __name__ == "__main__":
    main()
