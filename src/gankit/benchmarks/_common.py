"""Recipe files, repeated seeded runs and mean ± standard error tables."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

import yaml

from gankit.registry import closest
from gankit.utils.progress import progress_bar, write


def load_recipes(name: str) -> dict:
    text = (resources.files("gankit") / "presets" / "bench" / f"{name}.yaml").read_text()
    return yaml.safe_load(text)


def pick(recipes: dict, names: Sequence[str]) -> dict:
    out = {}
    for n in names:
        if n not in recipes:
            raise ValueError(f"unknown recipe {n!r}.{closest(n, list(recipes))} "
                             f"Valid recipes: {', '.join(recipes)}")
        out[n] = recipes[n]
    return out


def mean_se(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and standard error (sample std / sqrt(n); None for one value, which has none)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def fmt(mean: float, se: float | None, digits: int) -> str:
    if se is None:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {se:.{digits}f}"


def run_seeds(recipe: dict, seeds: Sequence[int], one_run: Callable[[dict, int], dict],
              log: Callable[[str], None]) -> list[dict]:
    rows = []
    for seed in seeds:
        t = time.perf_counter()
        row = one_run(recipe, seed)
        row["seconds"] = time.perf_counter() - t
        row["seed"] = seed
        log(f"  seed {seed}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()
                                           if k != "seed"))
        rows.append(row)
    return rows


def run_recipes(chosen: dict, seeds: int, first_seed: int,
                one_run: Callable[[dict, int, str], dict],
                log: Callable[[str], None], progress: bool = False) -> dict[str, list[dict]]:
    """Every chosen recipe on seeds ``first_seed`` .. ``first_seed + seeds - 1``:
    ``{recipe name: [one_run(recipe, seed, name) rows]}``; ``progress``: a bar of the runs
    on stderr (`gankit.utils.progress`)."""
    results = {}
    with progress_bar(len(chosen) * seeds, desc="bench", unit="run",
                      enabled=progress) as bar:
        def counted(r, s, n):
            row = one_run(r, s, n)
            bar.update(1)
            return row

        for name, recipe in chosen.items():
            log(f"{name}: {recipe['preset']} {' '.join(recipe['set'])}")
            results[name] = run_seeds(recipe, range(first_seed, first_seed + seeds),
                                      lambda r, s, n=name: counted(r, s, n), log)
    return results


def prepare(bench: str, recipes: Sequence[str], seeds: int, log, first_seed: int = 0):
    """Validate the arguments shared by every benchmark; returns (spec, chosen, log)."""
    if seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}")
    if first_seed < 0:
        raise ValueError(f"--first-seed must be 0 or more, got {first_seed}")
    spec = load_recipes(bench)
    chosen = pick(spec["recipes"], recipes)
    log = log or write  # on stderr, above the progress bar
    return spec, chosen, log


def row_seeds(report: dict, rows: Sequence[dict]) -> list[int]:
    """The seed of each row: its ``seed``, or (reports written before rows named their
    seed) ``first_seed`` + its position."""
    first = report.get("first_seed", 0)
    return [int(r.get("seed", first + i)) for i, r in enumerate(rows)]


def _seed_span(seeds: Sequence[int]) -> str:
    seeds = sorted(seeds)
    n = len(seeds)
    if seeds == list(range(seeds[0], seeds[0] + n)):
        return f"{n} seed{'s' if n != 1 else ''} ({seeds[0]}..{seeds[-1]})"
    return f"{n} seeds ({', '.join(map(str, seeds))})"


def seed_label(report: dict) -> str:
    """'3 seeds (0..2)' (or '3 seeds (1, 4, 7)') for the seeds of a report's runs; where
    recipes ran on different seeds (a combined report), each recipe's seeds."""
    per_recipe = {name: row_seeds(report, rows) for name, rows in report["runs"].items()}
    spans = {name: _seed_span(seeds) for name, seeds in per_recipe.items() if seeds}
    if len(set(spans.values())) <= 1:
        return next(iter(spans.values()), "0 seeds")
    return "; ".join(f"{name}: {span}" for name, span in spans.items())


BENCHMARKS = ("mixture", "stacked_mnist")
# settings that must agree for runs to share a table, per benchmark
_SAME_SETTINGS = {"mixture": ("dataset", "steps"), "stacked_mnist": ("steps", "samples")}


def report_benchmark(report: dict, where: str) -> str:
    """Which benchmark wrote a results.json: its ``benchmark`` key, or for reports written
    before there was one, ``mixture`` where it names a ``dataset``."""
    kind = report.get("benchmark") or ("mixture" if "dataset" in report else "stacked_mnist")
    if kind not in BENCHMARKS or not isinstance(report.get("runs"), dict):
        raise ValueError(f"{where} is not a gankit bench results.json (benchmark {kind!r}, "
                         "runs missing); pass the results.json that gankit bench --out wrote")
    return kind


def combine(paths: Sequence[str | Path]) -> dict:
    """One report from several ``results.json`` of the same benchmark and settings, e.g.
    seeds run on different days or machines: every recipe's runs, sorted by seed.

    Refused, naming the file and the value: reports of another benchmark, dataset, step
    count or sample count; a recipe whose definition differs between reports; a (recipe,
    seed) run found twice.
    """
    if not paths:
        raise ValueError("combine needs at least one results.json")
    merged: dict | None = None
    first_path = None
    origin: dict[tuple[str, int], str] = {}
    for path in paths:
        path = str(path)
        try:
            report = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ValueError(f"{path}: no such file; pass the results.json that gankit "
                             "bench --out DIR wrote (DIR/results.json)") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON ({exc}); is it a results.json "
                             "that gankit bench wrote?") from None
        if not isinstance(report, dict):
            raise ValueError(f"{path} is not a gankit bench results.json")
        kind = report_benchmark(report, path)
        if merged is None:
            merged = {k: v for k, v in report.items() if k not in ("runs", "recipes")}
            merged.update(benchmark=kind, runs={}, recipes={}, combined_from=[])
            first_path = path
        elif kind != merged["benchmark"]:
            raise ValueError(f"{path} is a {kind} report but {first_path} is a "
                             f"{merged['benchmark']} one; combine reports of one benchmark")
        for key in _SAME_SETTINGS[kind]:
            if report.get(key) != merged.get(key):
                raise ValueError(f"{path}: {key} {report.get(key)!r} differs from "
                                 f"{first_path}'s {merged.get(key)!r}; only runs with the "
                                 "same settings share a table")
        for name, recipe in (report.get("recipes") or {}).items():
            known = merged["recipes"].setdefault(name, recipe)
            if known != recipe:
                raise ValueError(f"{path}: recipe {name} is not the recipe of the same name "
                                 f"in an earlier report ({recipe} against {known}); rename "
                                 "one of them in its results.json or combine them apart")
        for name, rows in report["runs"].items():
            for seed, row in zip(row_seeds(report, rows), rows):
                if (name, seed) in origin:
                    raise ValueError(f"{name} seed {seed} is in both {origin[name, seed]} "
                                     f"and {path}; pass each run once")
                origin[name, seed] = path
                merged["runs"].setdefault(name, []).append({**row, "seed": seed})
        merged["combined_from"].append(path)
    for rows in merged["runs"].values():
        rows.sort(key=lambda r: r["seed"])
    every = sorted({seed for _, seed in origin})
    merged["seeds"], merged["first_seed"] = len(every), every[0] if every else 0
    if not merged["recipes"]:
        del merged["recipes"]
    return merged


def train_recipe(recipe: dict, seed: int, steps: int | None, run_dir, **kwargs):
    """One benchmark run: the recipe's preset and overrides, no intermediate files."""
    from gankit import api

    overrides = list(recipe["set"]) + ["train.sample_interval=0", "train.checkpoint_interval=0"]
    return api.train(recipe["preset"], seed=seed, steps=steps, overrides=overrides,
                     out=run_dir, progress=False, **kwargs)


def out_dir(base: str | Path | None, *parts: str) -> Path | None:
    return None if base is None else Path(base, *parts)


def loaded_run(result):
    """A `gankit.api.LoadedRun` of a finished `gankit.api.RunResult` kept in memory (a
    benchmark run without a directory)."""
    from gankit.api import LoadedRun

    s = result.state
    return LoadedRun(s.config, s.info, s.G.eval(), s.G_ema.eval() if s.G_ema else None,
                     s.step)
