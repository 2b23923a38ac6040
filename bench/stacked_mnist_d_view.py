"""What D sees in a Stacked MNIST checkpoint: its logits on G's samples digit by digit, and
how easily simple image statistics tell G's samples from real stacks.

    PYTHONPATH=src python bench/stacked_mnist_d_view.py RUN_DIR STEP [--samples N]

Three parts, all on the checkpoint's raw G (eval mode, as the benchmark samples it):

1. D's view by digit. ``--samples`` fakes go through the checkpoint's D in train mode, each
   batch of 64 together with 64 random real stacks in one call (as ``train.d_joint_batch``
   trains it; nothing is written back). Each stack's logit is grouped under the digit the
   ``lenet_mnist5k`` classifier reads in each of its three channels. Printed per digit:
   its share of the channel digits, D's mean logit on the fakes that hold it, and the
   share of those fakes D calls real. If D weighed how often G draws each digit, the
   digits G draws too rarely would score higher.
2. Separability of simple statistics. A small MLP (two hidden layers of 256, Adam, 15
   epochs) learns real against fake on 32,000 of 20,000 real and 20,000 fake stacks
   (shuffled) and is scored on the other 8,000, on three views of every stack: the 7x7
   average-pooled image (shape at low resolution), each channel's sorted intensities
   (every 8th of the 784; no positions at all) and, for each channel, the share of pixels
   above -0.9, -0.5, 0, 0.5 and 0.9 (ink at five levels). 50 % is chance.
3. The pixel histogram of those 20,000 real and 20,000 fake stacks, in bins that separate
   the exact -1 and +1 of MNIST's blank and saturated pixels from the rest.

docs/benchmarks.md, "An eleventh round", has the figures.
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F
from torch import nn

from gankit import api
from gankit.metrics.features import build_extractor
from gankit.training.checkpoint import checkpoint_stem, load_checkpoint
from gankit.training.state import build_networks


@torch.no_grad()
def d_by_digit(G, D, real: torch.Tensor, z_dim: int, samples: int, extractor,
               seed: int = 7, batch: int = 64) -> list[dict]:
    """Per digit 0-9: its share of the fakes' channel digits, D's mean logit on the fakes
    holding it (a stack holding it in two channels counts twice) and the share of those
    logits above 0; D scores each batch of fakes in one call with as many real stacks.
    A digit no fake holds gets ``None`` for both logit columns."""
    gen = torch.Generator().manual_seed(seed)
    logits, digits = [], []
    for _ in range(samples // batch):
        fake = G(torch.randn(batch, z_dim, generator=gen)).float()
        idx = torch.randint(0, len(real), (batch,), generator=gen)
        out = D.score(torch.cat([real[idx], fake]))["logits"].float()
        logits.append(out[batch:])
        _, probs = extractor.extract(fake.reshape(-1, 1, *fake.shape[2:]), with_probs=True)
        digits.append(probs.view(batch, 3, -1).argmax(-1))
    lf, c = torch.cat(logits), torch.cat(digits)
    rows = []
    for d in range(10):
        vals = torch.cat([lf[c[:, k] == d] for k in range(3)])
        held = len(vals) > 0
        rows.append({"digit": d, "share": round(float((c == d).float().mean()), 4),
                     "mean_fake_logit": round(float(vals.mean()), 3) if held else None,
                     "called_real": round(float((vals > 0).float().mean()), 4) if held
                     else None})
    return rows


def separability(real: torch.Tensor, fake: torch.Tensor, seed: int = 0,
                 train: int = 16_000) -> float:
    """Held-out accuracy of a small MLP telling real (rows of ``real``) from fake."""
    torch.manual_seed(seed)
    n = min(len(real), len(fake))
    x = torch.cat([real[:n], fake[:n]])
    y = torch.cat([torch.ones(n), torch.zeros(n)])
    perm = torch.randperm(2 * n)
    x, y = x[perm], y[perm]
    fit = slice(0, 2 * train)
    mu, sd = x[fit].mean(0), x[fit].std(0) + 1e-6
    x = (x - mu) / sd
    m = nn.Sequential(nn.Linear(x.shape[1], 256), nn.LeakyReLU(0.2), nn.Linear(256, 256),
                      nn.LeakyReLU(0.2), nn.Linear(256, 1))
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    for _ in range(15):
        for i in torch.randperm(2 * train).split(256):
            loss = F.binary_cross_entropy_with_logits(m(x[fit][i])[:, 0], y[fit][i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return float(((m(x[2 * train:])[:, 0] > 0).float() == y[2 * train:]).float().mean())


BINS = ["-1", "(-1, -0.99)", "[-0.99, -0.9)", "[-0.9, -0.5)", "[-0.5, 0)", "[0, 0.5)",
        "[0.5, 0.9)", "[0.9, 0.97)", "[0.97, 0.99)", "[0.99, 1)", "1"]
EDGES = [-1.0, -1.0 + 1e-6, -0.99, -0.9, -0.5, 0.0, 0.5, 0.9, 0.97, 0.99, 1.0 - 1e-6, 1.0001]



def pixel_histogram(x: torch.Tensor) -> dict:
    """Percent of the pixels of ``x`` in each of ``BINS``, with integer counts
    (torch.histogram counts in float32, which stops growing past 2^24 pixels)."""
    bins = torch.bucketize(x.flatten(), torch.tensor(EDGES, dtype=x.dtype), right=True) - 1
    share = torch.bincount(bins, minlength=len(BINS)).double() / x.numel()
    return {b: round(float(h) * 100, 2) for b, h in zip(BINS, share)}


VIEWS = {
    "pooled 7x7": lambda x: F.avg_pool2d(x, 4).flatten(1),
    "sorted intensities": lambda x: x.flatten(2).sort(-1).values[:, :, ::8].flatten(1),
    "ink at 5 levels": lambda x: torch.stack([(x > t).float().mean((2, 3))
                                              for t in (-0.9, -0.5, 0.0, 0.5, 0.9)],
                                             -1).flatten(1),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir")
    p.add_argument("step", type=int)
    p.add_argument("--samples", type=int, default=12_800, help="fakes for D's view")
    args = p.parse_args()
    run = api.load(args.run_dir, step=args.step)
    state = load_checkpoint(checkpoint_stem(args.run_dir, args.step).with_suffix(".pt"))
    _, D = build_networks(run.config, run.info)
    D.load_state_dict(state["D"])
    G, D = run.G.eval(), D.train()
    real = api.dataset_for(run.config).x
    extractor = build_extractor("lenet_mnist5k")
    for row in d_by_digit(G, D, real, run.config.z_dim, args.samples, extractor):
        print(json.dumps(row), flush=True)
    n = 20_000
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        fake = torch.cat([G(z) for z in torch.randn(n, run.config.z_dim, generator=gen)
                          .split(1000)]).float()
    real_n = real[torch.randperm(len(real), generator=gen)[:n]]
    for name, x in (("real", real_n), ("fake", fake)):
        print(json.dumps({"pixels": name, "percent_in": pixel_histogram(x)}), flush=True)
    for name, view in VIEWS.items():
        acc = separability(view(real_n), view(fake))
        print(json.dumps({"view": name, "held_out_accuracy": round(acc, 4)}), flush=True)


if __name__ == "__main__":
    main()
