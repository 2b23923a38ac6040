"""`gankit bench stacked-mnist`: mode counting on Stacked MNIST (1,000 modes; Metz et al.
2017, VEEGAN and PacGAN protocol, ../shared/PROTOCOLS.md §2).

Each generated 3-channel sample is split into its R, G, B channels; the shipped
``lenet_mnist5k`` classifier labels each (argmax, no confidence threshold); the triple is
the mode. Reported: distinct modes among 26,000 samples and KL(p̂ ‖ uniform over 1,000),
natural log. Our data stacks the 5,000 real MNIST digits available offline, not the full
60,000: stated beside every number.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch

from gankit import sampling
from gankit.benchmarks._common import (
    fmt,
    mean_se,
    out_dir,
    prepare,
    run_recipes,
    seed_label,
    train_recipe,
)
from gankit.metrics.modes import mode_counts
from gankit.refine import mixture_shares
from gankit.utils.io import atomic_write_json

NUM_SAMPLES = 26_000  # the VEEGAN setting
SNAPSHOT_CRITICS = ("each", "shared")  # a recipe's snapshot_critic: its refinement's critics


def count_modes(x: torch.Tensor, extractor=None) -> dict:
    """Modes and KL vs uniform of 3-channel samples x ``[N, 3, 28, 28]`` in [-1, 1].

    Returns:
        ``modes`` (distinct triples), ``kl`` (KL(p̂ ‖ uniform over 1,000), nats) and two
        diagnostics. ``kl_channels`` = Σ_c KL(p̂_c ‖ uniform over 10) over the per-channel
        digit histograms: ``kl`` splits exactly into it plus the channels' dependence
        (multi-information, ≥ 0), so ``kl_channels`` is the part due to G drawing some
        digits too often in a channel. ``uncertain`` is the share of channel digits the
        classifier gives less than 0.9 probability (0.35 % for real stacks).
    """
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"stacked MNIST samples must be [N, 3, H, W], got {tuple(x.shape)}")
    if extractor is None:
        from gankit.metrics.features import build_extractor

        extractor = build_extractor("lenet_mnist5k")
    n = x.shape[0]
    _, probs = extractor.extract(x.reshape(n * 3, 1, *x.shape[2:]), with_probs=True)
    probs = probs.view(n, 3, -1)
    modes, kl = mode_counts(probs)  # per-channel argmax; the triple is the mode
    kl_channels = sum(mode_counts(probs[:, c])[1] for c in range(3))
    uncertain = float((probs.max(dim=-1).values < 0.9).double().mean())
    return {"modes": modes, "kl": kl, "kl_channels": kl_channels, "uncertain": uncertain}


def draw(G, z_dim: int, latent_seed: int, samples: int) -> torch.Tensor:
    """``samples`` plain draws of G from latents seeded ``latent_seed``, as float32 on CPU."""
    gen = torch.Generator(device=next(G.parameters()).device).manual_seed(latent_seed)
    return sampling.draw(G, samples, z_dim, gen, batch_size=1000)


def score_generator(G, z_dim: int, seed: int, samples: int = NUM_SAMPLES,
                    extractor=None) -> dict:
    """`count_modes` of ``samples`` draws of G from latents seeded ``seed + 12345``."""
    return count_modes(draw(G, z_dim, seed + 12345, samples), extractor)


def recipe_snapshots(name: str, recipe: dict, total_steps: int, log_interval: int) -> list[int]:
    """The steps of a recipe's ``snapshots:`` list, checked and sorted ([] without one).

    G as it was at each of these steps is sampled beside the final G, each drawing an
    equal share of the samples (`mixture_shares`; with its own critic when the recipe
    refines). The copies are taken when the trainer calls back, after logged steps, so
    each step must be a multiple of ``train.log_interval``.
    """
    steps = recipe.get("snapshots", [])
    if not isinstance(steps, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in steps):
        raise ValueError(f"recipe {name}: snapshots must be a list of step numbers, "
                         f"e.g. [12000], got {steps!r}")
    if len(set(steps)) != len(steps):
        raise ValueError(f"recipe {name}: snapshots lists a step twice: {steps}")
    for s in steps:
        if not 0 < s < total_steps:
            raise ValueError(f"recipe {name}: snapshot step {s} must lie after step 0 and "
                             f"before the run's last step, {total_steps} (the final G is "
                             "always sampled)")
        if s % log_interval:
            raise ValueError(f"recipe {name}: snapshot step {s} is not a multiple of "
                             f"train.log_interval ({log_interval}); pick a step that is")
    return sorted(steps)


def mixture_sample(nets: Sequence, z_dim: int, seed: int, samples: int, options=None,
                   real: torch.Tensor | None = None,
                   critic: str = "each") -> tuple[torch.Tensor, float | None]:
    """``samples`` draws from an equal mixture of generators ``nets`` (`mixture_shares`),
    generator i from latents seeded ``seed + 12345 + 1000 * i``, so one generator alone
    draws exactly what `score_generator` draws. With `gankit.refine.RefineOptions`
    ``options`` the draws are refined against ``real``: ``critic="each"`` fits one set of
    critics per generator, ``critic="shared"`` one set for the mixture as a whole
    (`gankit.refine.refine` with the list; the same latents).

    Returns the samples and, when refined, the acceptance over all parts (accepted
    samples over candidates), else None.
    """
    if critic not in SNAPSHOT_CRITICS:
        raise ValueError(f"critic={critic!r}: choose one of {', '.join(SNAPSHOT_CRITICS)}")
    if options is not None and critic == "shared":
        from gankit.refine import refine

        sampler = refine(list(nets), z_dim, real, options)
        return sampler.sample(samples, seed=seed + 12345), sampler.report["acceptance"]
    parts, seen = [], 0.0
    for i, (G, share) in enumerate(zip(nets, mixture_shares(samples, len(nets)))):
        latent_seed = seed + 12345 + 1000 * i
        if options is None:
            parts.append(draw(G, z_dim, latent_seed, share))
            continue
        from gankit.refine import refine

        sampler = refine(G, z_dim, real, options)
        parts.append(sampler.sample(share, seed=latent_seed))
        seen += share / sampler.report["acceptance"]
    return torch.cat(parts), (samples / seen if options is not None else None)


class SnapshotKeeper:
    """A training callback that keeps an eval-mode copy of the sampling generator (G_ema
    when the run keeps one) at each of ``steps``; ``nets[step]`` holds it."""

    def __init__(self, steps: Sequence[int]):
        self.steps = set(steps)
        self.nets: dict[int, torch.nn.Module] = {}

    def __call__(self, trainer) -> None:
        step = trainer.state.step
        if step in self.steps:
            self.nets[step] = copy.deepcopy(trainer.state.sample_net(ema=True)).eval()


def recipe_snapshot_critic(name: str, recipe: dict) -> str:
    """A recipe's ``snapshot_critic``: ``each`` (the default) refines each generator of its
    snapshot mixture with its own critics, ``shared`` fits one set for the whole mixture."""
    value = recipe.get("snapshot_critic", "each")
    if value not in SNAPSHOT_CRITICS:
        raise ValueError(f"recipe {name}: snapshot_critic must be one of "
                         f"{', '.join(SNAPSHOT_CRITICS)}, got {value!r}")
    if value == "shared" and "refine" not in recipe:
        raise ValueError(f"recipe {name}: snapshot_critic=shared needs a refine: mapping "
                         "(without one nothing is refined); add refine: {} or drop it")
    return value


def recipe_refine_options(name: str, recipe: dict):
    """The `gankit.refine.RefineOptions` of a recipe's ``refine:`` mapping (None without
    one): its samples are then drawn by critic-guided rejection sampling, from the same
    latent stream (seed + 12345)."""
    if "refine" not in recipe:
        return None
    from gankit.refine import RefineOptions

    spec = recipe["refine"] or {}
    try:
        return RefineOptions(**spec)
    except (TypeError, ValueError) as exc:  # an unknown key, or a bad value
        raise ValueError(f"recipe {name}: bad refine options {spec}: {exc}") from None


def run(recipes: Sequence[str] = ("dcgan", "pacdcgan2"), seeds: int = 1,
        steps: int | None = None, samples: int = NUM_SAMPLES, out=None, log=None,
        first_seed: int = 0) -> dict:
    """Train each recipe on stacked_mnist for seeds ``first_seed`` .. ``first_seed + seeds
    - 1`` and count modes of ``samples`` samples of each."""
    spec, chosen, log = prepare("stacked_mnist", recipes, seeds, log, first_seed)

    from gankit import api

    refine_options = {name: recipe_refine_options(name, r) for name, r in chosen.items()}
    critics = {name: recipe_snapshot_critic(name, r) for name, r in chosen.items()}
    snapshots = {}
    for name, r in chosen.items():  # checked before any training
        cfg = api.make_config(r["preset"], steps=steps, overrides=r["set"])
        snapshots[name] = recipe_snapshots(name, r, cfg.train.steps, cfg.train.log_interval)

    def one(recipe: dict, seed: int, name: str) -> dict:
        keeper = SnapshotKeeper(snapshots[name])
        res = train_recipe(recipe, seed, steps, out_dir(out, name, f"seed{seed}"),
                           callbacks=[keeper])
        nets = [keeper.nets[s] for s in snapshots[name]]
        nets.append(res.state.sample_net(ema=True).eval())
        options = refine_options[name]
        real = api.dataset_for(res.state.config).x if options is not None else None
        x, acceptance = mixture_sample(nets, res.state.config.z_dim, seed, samples, options,
                                       real, critics[name])
        row = count_modes(x)
        if acceptance is not None:
            row["acceptance"] = acceptance
        return row

    results = run_recipes(chosen, seeds, first_seed, one, log)
    report = {"benchmark": "stacked_mnist", "seeds": seeds, "first_seed": first_seed,
              "steps": steps, "samples": samples, "runs": results, "paper": spec["paper"],
              "recipes": chosen,
              "snapshots": {name: s for name, s in snapshots.items() if s}}
    if out is not None:
        atomic_write_json(out_dir(out, "results.json"), report)
    return report


def refined(report: dict, name: str) -> bool:
    """Whether recipe ``name``'s samples were refined: its recipe has ``refine:``, or (a
    report that keeps no recipes) its rows have an acceptance."""
    recipe = (report.get("recipes") or {}).get(name)
    if recipe is not None:
        return "refine" in recipe
    return any("acceptance" in r for r in report["runs"][name])


def table(report: dict) -> str:
    """Mean ± standard error over seeds (the published rows' form), and the worst run's KL.
    Rows of refined samples say ``refined``: the paper rows sample G plainly."""
    lines = [f"{'method':<32}{'modes (of 1000)':>18}{'KL':>16}{'worst KL':>10}{'s/run':>8}"
             f"{'KL channels':>14}{'uncertain':>11}"]
    any_refined = False
    for name, rows in report["runs"].items():
        modes, kl = mean_se([r["modes"] for r in rows]), mean_se([r["kl"] for r in rows])
        worst = max(r["kl"] for r in rows)
        secs = sum(r["seconds"] for r in rows) / len(rows)
        kl_ch = sum(r["kl_channels"] for r in rows) / len(rows)
        unsure = sum(r["uncertain"] for r in rows) / len(rows)
        label = f"gankit {name} (mnist5k{', refined' if refined(report, name) else ''})"
        any_refined = any_refined or refined(report, name)
        lines.append(f"{label:<32}{fmt(*modes, 1):>18}"
                     f"{fmt(*kl, 4):>16}{worst:>10.4f}{secs:>8.0f}{kl_ch:>14.3f}"
                     f"{unsure:>10.1%}")
    for name, v in report["paper"].items():
        lines.append(f"{'paper ' + name:<32}{fmt(v[0], v[1], 1):>18}{fmt(v[2], v[3], 2):>16}")
    lines.append(f"(gankit: stacks of the 5,000 mnist5k digits, {report['samples']} samples, "
                 f"{seed_label(report)}, steps {report['steps'] or 'preset default'}; "
                 "mean ± standard error over seeds; paper rows: full 60k MNIST; KL channels: "
                 "the part of KL due to unbalanced digits within a channel; uncertain: channel "
                 "digits the classifier gives < 0.9"
                 + ("; refined: critic-guided rejection sampling (gankit.refine) of G's "
                    "samples, where the paper rows draw from G plainly" if any_refined else "")
                 + ")")
    return "\n".join(lines)
