"""`gankit bench stacked-mnist`: mode counting on Stacked MNIST (1,000 modes; Metz et al.
2017, VEEGAN and PacGAN protocol, ../shared/PROTOCOLS.md §2).

Each generated 3-channel sample is split into its R, G, B channels; the shipped
``lenet_mnist5k`` classifier labels each (argmax, no confidence threshold); the triple is
the mode. Reported: distinct modes among 26,000 samples and KL(p̂ ‖ uniform over 1,000),
natural log. Our data stacks the 5,000 real MNIST digits available offline, not the full
60,000: stated beside every number.
"""

from __future__ import annotations

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
from gankit.metrics.modes import channel_probs, mode_counts
from gankit.sampling import STREAMS
from gankit.utils.io import atomic_write_json

NUM_SAMPLES = 26_000  # the VEEGAN setting


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
    probs = channel_probs(extractor, x)
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
    """`count_modes` of ``samples`` draws of G from the run's ``latents`` stream."""
    return count_modes(draw(G, z_dim, seed + STREAMS["latents"], samples), extractor)


def recipe_refine_options(name: str, recipe: dict):
    """The `gankit.refine.RefineOptions` of a recipe's ``refine:`` mapping (None without
    one): its samples are then drawn by critic-guided rejection sampling, from the same
    latent stream as plain sampling."""
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
        first_seed: int = 0, progress: bool = False) -> dict:
    """Train each recipe on stacked_mnist for seeds ``first_seed`` .. ``first_seed + seeds
    - 1`` and count modes of ``samples`` samples of each (refined when the recipe says);
    ``progress``: a bar of the runs on stderr (when it is a terminal)."""
    spec, chosen, log = prepare("stacked_mnist", recipes, seeds, log, first_seed)

    from gankit import api
    from gankit.refine import refine

    refine_options = {name: recipe_refine_options(name, r) for name, r in chosen.items()}

    def one(recipe: dict, seed: int, name: str) -> dict:
        res = train_recipe(recipe, seed, steps, out_dir(out, name, f"seed{seed}"))
        G, z_dim = res.state.sample_net(ema=True).eval(), res.state.config.z_dim
        options = refine_options[name]
        if options is None:
            return count_modes(draw(G, z_dim, seed + STREAMS["latents"], samples))
        sampler = refine(G, z_dim, api.dataset_for(res.state.config).x, options)
        row = count_modes(sampler.sample(samples, seed=seed + STREAMS["latents"]))
        return {**row, "acceptance": sampler.report["acceptance"]}

    results = run_recipes(chosen, seeds, first_seed, one, log, progress)
    report = {"benchmark": "stacked_mnist", "seeds": seeds, "first_seed": first_seed,
              "steps": steps, "samples": samples, "runs": results, "paper": spec["paper"],
              "recipes": chosen}
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
