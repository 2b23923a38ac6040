"""What the refinement critic (`gankit.refine`) sees in a Stacked MNIST generator: how much of
its logit follows the digits G draws too often, against what rejection sampling would need.

    PYTHONPATH=src python bench/stacked_mnist_critic_view.py RUN_DIR STEP --seed S \\
        [--refine-set KEY=VALUE ...] [--samples 26000]

Fits the critic as `gankit sample --refine` does (the run's 50,000 training stacks against
G's samples, options from ``--refine-set``), then scores ``--samples`` plain samples of G
(latents seeded S + 12345, the bench's) and reads each channel's digit with the shipped
``lenet_mnist5k`` classifier. Per channel and digit it prints:

- ``share``: how often G draws the digit there (the data: 0.1 each);
- ``needed``: log(0.1 / share), centred over the ten digits: the part of the log density
  ratio that the digit alone accounts for, which the critic's logit would have to carry
  for rejection sampling to even the digits out;
- ``critic``: the critic's own digit effect, the coefficients of a least-squares fit of its
  logit on one indicator per (channel, digit) and a constant, centred the same way;
- ``refined``: the share after rejection, sum of a(x) over the samples holding the digit
  divided by the sum of a(x), a(x) = min(1, exp(alpha * logit - M)) the acceptance
  probability (what refined sampling from these candidates gives in expectation).

It also prints the share of the logit's variance the 30 digit indicators explain (R^2).
docs/benchmarks.md, "A sixteenth round", has the figures.
"""

from __future__ import annotations

import argparse
import json
import math

import torch

from gankit import api
from gankit.metrics.features import build_extractor
from gankit.refine import RefineOptions, _draw, logits, view


def digit_effects(score: torch.Tensor, digits: torch.Tensor, classes: int = 10):
    """Least squares of ``score`` [N] on one indicator per (channel, digit) of ``digits``
    [N, C] plus a constant. Returns (coefficients [C, classes], each channel's centred over
    its digits; R^2). The model is rank-deficient by C - 1 (each channel's indicators sum
    to 1); centring makes the channel effects unique."""
    n, channels = digits.shape
    x = torch.zeros(n, channels * classes + 1, dtype=torch.float64)
    rows = torch.arange(n)
    for c in range(channels):
        x[rows, c * classes + digits[:, c]] = 1.0
    x[:, -1] = 1.0
    y = score.double()
    coef = torch.linalg.lstsq(x, y[:, None], driver="gelsd").solution[:, 0]
    r2 = float(1 - ((y - x @ coef) ** 2).mean() / y.var(unbiased=False))
    effects = coef[:-1].view(channels, classes)
    return effects - effects.mean(1, keepdim=True), r2


def digit_table(score: torch.Tensor, accept: torch.Tensor, digits: torch.Tensor,
                classes: int = 10) -> tuple[list[dict], float]:
    """Per (channel, digit): ``share``, ``needed``, ``critic`` and ``refined`` as the module
    docstring defines them, from the critic's ``score`` [N], the acceptance probabilities
    ``accept`` [N] and the digits [N, C]; and the digit model's R^2. A digit G never draws
    in a channel gets ``needed`` None (its ratio is unbounded)."""
    effects, r2 = digit_effects(score, digits, classes)
    rows = []
    for c in range(digits.shape[1]):
        share = torch.bincount(digits[:, c], minlength=classes).double() / len(digits)
        refined = torch.zeros(classes, dtype=torch.float64).index_add_(
            0, digits[:, c], accept.double()) / accept.double().sum()
        seen = share > 0
        need = torch.full((classes,), math.nan, dtype=torch.float64)
        need[seen] = (1 / classes / share[seen]).log()
        need[seen] -= need[seen].mean()
        for d in range(classes):
            rows.append({"channel": c, "digit": d, "share": round(float(share[d]), 4),
                         "needed": None if math.isnan(need[d]) else round(float(need[d]), 3),
                         "critic": round(float(effects[c, d]), 3),
                         "refined": round(float(refined[d]), 4)})
    return rows, r2


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir")
    p.add_argument("step", type=int)
    p.add_argument("--seed", type=int, default=0, help="the run's seed (the bench's latents)")
    p.add_argument("--samples", type=int, default=26_000)
    p.add_argument("--refine-set", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    options = RefineOptions.parse(args.refine_set)
    run = api.load(args.run_dir, step=args.step)
    sampler = api.refined_sampler(run, options, ema=False)
    gen = torch.Generator().manual_seed(args.seed + 12345)  # G's passes as the sampler runs them
    x = _draw(sampler.G.eval(), run.config.z_dim, args.samples, gen, precision=options.precision)
    _, probs = build_extractor("lenet_mnist5k").extract(
        x.reshape(-1, 1, *x.shape[2:]), with_probs=True)
    digits = probs.view(len(x), x.shape[1], -1).argmax(-1)
    score = options.alpha * logits(sampler.critic, view(x, options))
    rows, r2 = digit_table(score, sampler.accept_probability(x), digits)
    for row in rows:
        print(json.dumps(row), flush=True)
    print(json.dumps({"r2_digits": round(r2, 4), "logit_std": round(float(score.std()), 3),
                      **{k: round(v, 4) for k, v in sampler.report.items()}}), flush=True)


if __name__ == "__main__":
    main()
