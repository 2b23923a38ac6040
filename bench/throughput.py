"""Training-step throughput: gankit's loop against a plain hand-written PyTorch loop.

Both train the same G and D (built from the same classes, same init) with the same loss
and optimisers on mnist5k, in this process, interleaved in rounds so that machine noise
hits both alike. Prints img/s for each case, the ratio gankit / plain, and a final
``min_ratio=X`` line. Target: ratio >= 0.95 (the loop's bookkeeping costs at most 5 %).

Then the modern presets on mnist5k at 32x32 against a hand-written loop of the same step
(the preset's loss, D steps, Adam settings, labels and orthogonal penalty): the residual
ones (``sngan_resnet``, ``sagan``, ``biggan``) at width 16 instead of 64 (a full-width step
at batch 64 takes seconds on a CPU), ``stylegan2`` and ``pggan`` (width 32) without their
lazy penalties and growth schedule (`MODERN_CASES`). A third table times the speed options
(``train.compile``, ``train.channels_last``) against gankit's eager default on the same
model, interleaved the same way.

    python bench/throughput.py [--steps 30] [--rounds 3] [--threads 2] [--no-options]
                               [--no-residual] [--residual-steps 5]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from gankit import api
from gankit.training.loop import Trainer
from gankit.training.state import build_state

CASES = [("gan", 64), ("gan", 256), ("dcgan", 64), ("dcgan", 256)]
# (preset, batch): residual networks at width 16 on 32x32 images
RESIDUAL_CASES = [("sngan_resnet", 64), ("sagan", 64), ("biggan", 64)]
RESIDUAL_SETS = ["data.resolution=32", "generator.width=16", "discriminator.width=16"]
# (preset, batch, overrides): the style-based and progressive networks at the preset's size,
# without their lazy penalties (R1, path length, gradient penalty) and pggan at its full
# resolution (no growth schedule), so both loops run the same adversarial step
MODERN_CASES = [
    ("stylegan2", 32, ["regularizers.r1=null", "regularizers.path_length=null"]),
    ("pggan", 32, ["regularizers.gradient_penalty=null", "hooks.growth=null",
                   "generator.width=32", "generator.max_channels=32",
                   "discriminator.width=32", "discriminator.max_channels=32"])]
OPTION_CASES = [("dcgan", 64), ("dcgan", 256)]
OPTIONS = {"compile": ["train.compile=true"], "channels_last": ["train.channels_last=true"]}


def gankit_runner(preset: str, batch: int, extra: list[str] | None = None):
    cfg = api.make_config(preset, data="mnist5k", overrides=[
        f"train.batch_size={batch}", "hooks.ema=null", "train.sample_interval=0",
        "train.checkpoint_interval=0", "train.log_interval=50", *(extra or [])])
    ds = api.dataset_for(cfg)
    state = build_state(cfg, api.data_info(ds), torch.device("cpu"))
    trainer = Trainer(state, ds, None, progress=False)

    def run(steps: int) -> None:
        trainer.run(state.step + steps)

    return run, ds


def plain_runner(preset: str, batch: int, ds):
    """The loop a user would write by hand for the same model."""
    cfg = api.make_config(preset, data="mnist5k", overrides=[f"train.batch_size={batch}"])
    torch.manual_seed(cfg.train.seed)
    from gankit.training.state import build_networks

    G, D = build_networks(cfg, api.data_info(ds))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    x, z_dim = ds.x, cfg.z_dim
    perm, pos = torch.randperm(len(x)), 0

    def run(steps: int) -> None:
        nonlocal perm, pos
        for _ in range(steps):
            if pos + batch > len(x):
                perm, pos = torch.randperm(len(x)), 0
            real = x[perm[pos:pos + batch]]
            pos += batch
            with torch.no_grad():
                fake = G(torch.randn(batch, z_dim))
            d_loss = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            fake = G(torch.randn(batch, z_dim))
            g_loss = F.softplus(-D(fake)).mean()
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()

    return run


def _plain_losses(loss):
    """The preset's adversarial loss written by hand: (d_loss(real, fake), g_loss(fake))
    over logits."""
    if loss.name == "hinge":
        return (lambda r, f: F.relu(1 - r).mean() + F.relu(1 + f).mean()), lambda f: -f.mean()
    if loss.name == "non_saturating":
        return (lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean(),
                lambda f: F.softplus(-f).mean())
    assert loss.name == "wasserstein", loss.name
    drift = loss.options.get("drift", 0.0)
    return (lambda r, f: f.mean() - r.mean() + drift * r.square().mean()), lambda f: -f.mean()


def plain_residual_runner(preset: str, batch: int, ds, sets=RESIDUAL_SETS):
    """A hand-written loop of a preset's step: ``d_steps`` D updates, one G update (with
    the orthogonal penalty when the preset has it), labels when conditional."""
    from gankit.regularizers.orthogonal import orthogonal_penalty, orthogonal_weights
    from gankit.training.state import build_networks

    cfg = api.make_config(preset, data="mnist5k",
                          overrides=[f"train.batch_size={batch}", *sets])
    assert set(cfg.regularizers) <= {"orthogonal"}, cfg.regularizers
    d_loss_fn, g_loss_fn = _plain_losses(cfg.loss)
    torch.manual_seed(cfg.train.seed)
    G, D = build_networks(cfg, api.data_info(ds))
    go, do = cfg.g_optimizer.options, cfg.d_optimizer.options
    opt_g = torch.optim.Adam(G.parameters(), lr=go["lr"], betas=tuple(go["betas"]))
    opt_d = torch.optim.Adam(D.parameters(), lr=do["lr"], betas=tuple(do["betas"]))
    beta = cfg.regularizers.get("orthogonal", {}).get("beta", 0.0)
    x, y, z_dim, k = ds.x, ds.y, cfg.z_dim, ds.num_classes
    conditional = G.conditional
    perm, pos = torch.randperm(len(x)), 0

    def labels():
        return torch.randint(k, (batch,)) if conditional else None

    def run(steps: int) -> None:
        nonlocal perm, pos
        for _ in range(steps):
            for _ in range(cfg.train.d_steps):
                if pos + batch > len(x):
                    perm, pos = torch.randperm(len(x)), 0
                idx = perm[pos:pos + batch]
                pos += batch
                real, c_real, c_fake = x[idx], (y[idx] if conditional else None), labels()
                with torch.no_grad():
                    fake = G(torch.randn(batch, z_dim), c_fake)
                d_loss = d_loss_fn(D(real, c_real), D(fake, c_fake))
                opt_d.zero_grad()
                d_loss.backward()
                opt_d.step()
            c_fake = labels()
            D.requires_grad_(False)
            g_loss = g_loss_fn(D(G(torch.randn(batch, z_dim), c_fake), c_fake))
            if beta:
                g_loss = g_loss + beta * orthogonal_penalty(orthogonal_weights(G))
            opt_g.zero_grad()
            g_loss.backward()
            D.requires_grad_(True)
            opt_g.step()

    return run


def best_rates(runners: dict, steps: int, rounds: int, batch: int) -> dict:
    """Each runner's best img/s over ``rounds`` interleaved rounds, after a warm-up (which
    also compiles)."""
    for fn in runners.values():
        fn(3)
    best = dict.fromkeys(runners, 0.0)
    for _ in range(rounds):
        for name, fn in runners.items():
            t = time.perf_counter()
            fn(steps)
            best[name] = max(best[name], steps * batch / (time.perf_counter() - t))
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=30, help="steps per timed round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--no-options", action="store_true", help="skip the speed-option table")
    p.add_argument("--no-residual", action="store_true", help="skip the residual presets")
    p.add_argument("--residual-steps", type=int, default=5,
                   help="steps per timed round of the residual presets")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.steps} steps x "
          f"{args.rounds} rounds, best round kept")
    print(f"{'case':<14}{'gankit img/s':>14}{'plain img/s':>14}{'ratio':>8}")
    ratios = []
    for preset, batch in CASES:
        ours, ds = gankit_runner(preset, batch)
        best = best_rates({"ours": ours, "plain": plain_runner(preset, batch, ds)},
                          args.steps, args.rounds, batch)
        ratio = best["ours"] / best["plain"]
        ratios.append(ratio)
        print(f"{preset + ' b' + str(batch):<14}{best['ours']:>14.0f}{best['plain']:>14.0f}"
              f"{ratio:>8.3f}")
    if not args.no_residual:
        cases = [(p, b, RESIDUAL_SETS) for p, b in RESIDUAL_CASES] + MODERN_CASES
        for preset, batch, sets in cases:
            ours, ds = gankit_runner(preset, batch, sets)
            best = best_rates({"ours": ours,
                               "plain": plain_residual_runner(preset, batch, ds, sets)},
                              args.residual_steps, args.rounds, batch)
            ratio = best["ours"] / best["plain"]
            ratios.append(ratio)
            print(f"{preset + ' b' + str(batch):<14}{best['ours']:>14.0f}"
                  f"{best['plain']:>14.0f}{ratio:>8.3f}")
    print(f"min_ratio={min(ratios):.3f}")
    if args.no_options:
        return
    print(f"\n{'case':<14}{'option':<15}{'eager img/s':>12}{'option img/s':>14}{'ratio':>8}")
    for preset, batch in OPTION_CASES:
        runners = {"eager": gankit_runner(preset, batch)[0]}
        runners.update({name: gankit_runner(preset, batch, sets)[0]
                        for name, sets in OPTIONS.items()})
        best = best_rates(runners, args.steps, args.rounds, batch)
        for name in OPTIONS:
            print(f"{preset + ' b' + str(batch):<14}{name:<15}{best['eager']:>12.0f}"
                  f"{best[name]:>14.0f}{best[name] / best['eager']:>8.3f}")


if __name__ == "__main__":
    main()
