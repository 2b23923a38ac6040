"""`gankit bench mixture`: PacGAN's Table 1 protocol on the 2D ring and grid (Lin et al.
2018, section 5.1; data and metrics as in ../shared/PROTOCOLS.md §1).

Each recipe is trained once per seed; 2,500 points from a fixed latent batch are scored:
modes captured, % high quality (within 3 std of the nearest mode), reverse KL of the HQ
histogram against uniform. The table shows mean ± standard error over seeds beside the
paper's rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from gankit.benchmarks._common import (
    fmt,
    mean_se,
    out_dir,
    prepare,
    run_recipes,
    seed_label,
    train_recipe,
)
from gankit.utils.io import atomic_write_json


def run(dataset: str = "ring", recipes: Sequence[str] = ("gan", "pacgan2"),
        seeds: int = 10, steps: int | None = None, out=None, log=None,
        first_seed: int = 0, progress: bool = False) -> dict:
    """Train every recipe on ``dataset`` for ``seeds`` seeds; returns per-run metrics.

    Args:
        dataset: "ring" or "grid".
        recipes: names from presets/bench/mixture.yaml.
        seeds: number of seeds, ``first_seed`` .. ``first_seed + seeds - 1``.
        steps: generator steps per run (default: the preset's; PacGAN trains 400,000).
        out: optional folder for the runs and ``results.json``.
        first_seed: the first seed (to add seeds to an earlier report).
        progress: a bar of the runs on stderr (when it is a terminal).
    """
    if dataset not in ("ring", "grid"):
        raise ValueError(f"--dataset must be ring or grid, got {dataset!r}")
    spec, chosen, log = prepare("mixture", recipes, seeds, log, first_seed)

    def one(recipe: dict, seed: int, name: str) -> dict:
        res = train_recipe(recipe, seed, steps, out_dir(out, name, f"seed{seed}"),
                           data=dataset, device="cpu")
        m = res.metrics
        return {"modes": m["modes"], "hq": 100 * m["hq"], "reverse_kl": m["reverse_kl"]}

    results = run_recipes(chosen, seeds, first_seed, one, log, progress)
    report = {"benchmark": "mixture", "dataset": dataset, "seeds": seeds,
              "first_seed": first_seed, "steps": steps, "runs": results,
              "paper": spec["paper"][dataset], "recipes": chosen}
    if out is not None:
        atomic_write_json(out_dir(out, "results.json"), report)
    return report


def table(report: dict) -> str:
    lines = [f"{'method':<22}{'modes':>16}{'high quality %':>18}{'reverse KL':>18}"
             f"{'s/run':>8}"]
    for name, rows in report["runs"].items():
        cols = [mean_se([r[k] for r in rows]) for k in ("modes", "hq", "reverse_kl")]
        secs = sum(r["seconds"] for r in rows) / len(rows)
        lines.append(f"{'gankit ' + name:<22}{fmt(*cols[0], 1):>16}{fmt(*cols[1], 1):>18}"
                     f"{fmt(*cols[2], 3):>18}{secs:>8.0f}")
    for name, v in report["paper"].items():
        lines.append(f"{'paper ' + name:<22}{fmt(v[0], v[1], 1):>16}{fmt(v[2], v[3], 1):>18}"
                     f"{fmt(v[4], v[5], 2):>18}{'':>8}")
    lines.append(f"({report['dataset']}, {seed_label(report)}, mean ± standard error; "
                 f"paper rows: PacGAN Table 1, 400,000 steps; gankit steps: "
                 f"{report['steps'] or 'preset default'})")
    return "\n".join(lines)
