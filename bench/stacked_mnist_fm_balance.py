"""Does feature matching pull a Stacked MNIST generator towards balanced digits?

    PYTHONPATH=src python bench/stacked_mnist_fm_balance.py RUN_DIR STEP [--samples N]

The feature space is the checkpoint's frozen `regularizers.frozen_feature_matching` snapshot
of D (or, in a run without one, the checkpoint's D in eval mode), each feature standardised
by its mean and spread over the real stacks, as that term does. ``--samples`` real stacks and
as many of G's samples (eval mode, as the benchmark samples it) go through it; the shipped
``lenet_mnist5k`` classifier reads each fake channel's digit and the dataset gives each real
one's. The labels serve this diagnosis only; no gankit training term sees them.

For each channel c, G's mean feature is exactly sum_k p_k M_k, with p_k G's share of digit k
in that channel and M_k the mean feature of G's samples holding k there. So the squared
distance that feature matching minimises is, as a function of the digit shares alone (the
way G draws each digit held fixed),

    L(p) = | sum_k p_k M_k - mu |^2      (mu: the real stacks' mean feature)

Printed per channel: G's shares, L at G's shares, at uniform shares and at p*, the
minimiser of L over shares summing to 1 (it may leave [0, 1]). If feature matching pulled
towards balance, L would be lowest near uniform shares. Also printed: how much of the mean
difference d = mean_G - mu the digit shares explain (s, the shift that G's shares would
give if its digits had the real digits' features: |s|^2 and cos(d, s)), and how far G's
per-digit mean features M_k are from the real ones R_k, split into a shift common to all
digits and the rest. ``--clusters K ...`` also runs k-means (K clusters) on the real stacks'
features, projected on their 64 leading principal components and whitened, and prints the
KL of G's cluster shares from the real ones, raw and with G's features first centred on the
real mean, next to the KL that G's digit shares alone would give (the real stacks
reweighted by G's share over the real share of each channel's digit).

docs/benchmarks.md, "A twelfth round", has the figures.
"""

from __future__ import annotations

import argparse
import json

import torch

from gankit import api
from gankit.metrics.features import build_extractor
from gankit.regularizers.frozen_feature_matching import FrozenFeatureMatching
from gankit.training.checkpoint import checkpoint_stem, load_checkpoint
from gankit.training.state import build_networks


def class_means(z: torch.Tensor, digits: torch.Tensor, classes: int = 10) -> torch.Tensor:
    """Mean row of ``z`` per class of ``digits`` (0 for a class with no rows)."""
    one = torch.nn.functional.one_hot(digits, classes).double()
    return (one.T @ z.double()) / one.sum(0).clamp_min(1)[:, None]


def share_landscape(z: torch.Tensor, digits: torch.Tensor, mu: torch.Tensor,
                    classes: int = 10) -> dict:
    """L(p) = |sum_k p_k M_k - mu|^2 for the rows ``z`` [N, F] with class ``digits`` [N]:
    G's shares p, L at p, at uniform shares and at the constrained minimiser p*
    (sum p* = 1, by the KKT system). A class with no rows gets M_k = 0 and share 0."""
    M = class_means(z, digits, classes)
    p = torch.bincount(digits, minlength=classes).double() / len(z)

    def L(q):
        return float((q @ M - mu.double()).square().sum())

    kkt = torch.zeros(classes + 1, classes + 1, dtype=torch.float64)
    kkt[:classes, :classes] = 2 * M @ M.T
    kkt[:classes, classes] = kkt[classes, :classes] = 1
    rhs = torch.cat([2 * M @ mu.double(), torch.ones(1, dtype=torch.float64)])
    p_star = torch.linalg.lstsq(kkt, rhs).solution[:classes]
    uniform = torch.full((classes,), 1 / classes, dtype=torch.float64)
    return {"shares": p.tolist(), "p_star": p_star.tolist(), "L_at_shares": L(p),
            "L_at_uniform": L(uniform), "L_at_p_star": L(p_star)}


def cluster_kl(zr: torch.Tensor, zf: torch.Tensor, real_digits: torch.Tensor,
               fake_shares: torch.Tensor, k: int, dims: int = 64, seed: int = 0) -> dict:
    """KL(G's cluster shares || the real ones) for k-means clusters of the whitened top
    ``dims`` principal components of the real features; ``fake_shares`` [3, 10]."""
    from sklearn.cluster import KMeans

    mu = zr.mean(0)
    _, s, v = torch.svd_lowrank(zr - mu, q=dims, niter=3)
    proj = v / (s / (len(zr) - 1) ** 0.5)
    km = KMeans(k, n_init=1, random_state=seed, max_iter=50).fit(((zr - mu) @ proj).numpy())
    real = torch.bincount(torch.from_numpy(km.labels_), minlength=k).double() / len(zr)

    def shares(x, weights=None):
        lab = torch.from_numpy(km.predict(x.numpy())) if weights is None else torch.from_numpy(
            km.labels_)
        h = torch.bincount(lab, weights=weights, minlength=k).double()
        return h / h.sum()

    def kl(p):
        return float((p * (p.clamp_min(1e-12) / real).log()).sum())

    w = torch.ones(len(zr), dtype=torch.float64)
    for c in range(3):
        p_real = torch.bincount(real_digits[:, c], minlength=10).double() / len(zr)
        w = w * (fake_shares[c].double() / p_real)[real_digits[:, c]]
    return {"clusters": k, "kl_fake": kl(shares((zf - mu) @ proj)),
            "kl_fake_centred": kl(shares((zf - zf.mean(0)) @ proj)),
            "kl_from_digit_shares": kl(shares(None, w))}


@torch.no_grad()
def features(D, x: torch.Tensor, mu: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
    return torch.cat([(D.score(xb.float())["features"].flatten(1) - mu) / sd
                      for xb in x.split(1000)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir")
    p.add_argument("step", type=int)
    p.add_argument("--samples", type=int, default=20_000)
    p.add_argument("--clusters", type=int, nargs="*", default=[])
    args = p.parse_args()
    run = api.load(args.run_dir, step=args.step)
    state = load_checkpoint(checkpoint_stem(args.run_dir, args.step).with_suffix(".pt"))
    data = api.dataset_for(run.config)
    n = args.samples
    snap = state.get("regularizers", {}).get("frozen_feature_matching") or {}
    _, D = build_networks(run.config, run.info)
    if snap:
        D.load_state_dict(snap["D"])
        D.eval().requires_grad_(False)
        mu, sd = snap["mu"], snap["sd"]
    else:  # the checkpoint's own D, standardised over the data as the term would
        D.load_state_dict(state["D"])
        reg = FrozenFeatureMatching()
        reg.real_x, reg.real_y = data.x, None
        reg.snapshot(D, args.step)
        D, mu, sd = reg.frozen, reg.mu, reg.sd
    real = data.x[:n]
    y = data.y[:n]
    real_digits = torch.stack([y // 100, y // 10 % 10, y % 10], 1)
    gen = torch.Generator().manual_seed(5)
    G = run.G.eval()
    with torch.no_grad():
        fake = torch.cat([G(torch.randn(1000, run.config.z_dim, generator=gen)).float()
                          for _ in range(n // 1000)])
    _, probs = build_extractor("lenet_mnist5k").extract(fake.reshape(-1, 1, 28, 28),
                                                        with_probs=True)
    fake_digits = probs.view(len(fake), 3, -1).argmax(-1)
    zr, zf = features(D, real, mu, sd), features(D, fake, mu, sd)
    mu_r = zr.mean(0)
    noise = float(zf.var(0).sum() / len(zf) + zr.var(0).sum() / len(zr))
    d = (zf.mean(0) - mu_r).double()
    s = torch.zeros_like(d)
    fake_shares = []
    for c in range(3):
        row = share_landscape(zf, fake_digits[:, c], mu_r)
        fake_shares.append(row["shares"])
        print(json.dumps({"channel": c, **{k: [round(v, 4) for v in val]
                                           if isinstance(val, list) else round(val, 3)
                                           for k, val in row.items()}}), flush=True)
        R = class_means(zr, real_digits[:, c])
        p_real = torch.bincount(real_digits[:, c], minlength=10).double() / len(zr)
        s += ((torch.tensor(row["shares"], dtype=torch.float64) - p_real)[:, None] * R).sum(0)
        gap = class_means(zf, fake_digits[:, c]) - R
        common = gap.mean(0)
        print(json.dumps({"channel": c, "common_shift_sq": round(float(common.square().sum()), 2),
                          "per_digit_rest_sq": round(float((gap - common).square().sum(1).mean()),
                                                     2),
                          "real_digit_spread_sq": round(float((R - R.mean(0)).square().sum(1)
                                                              .mean()), 2)}), flush=True)
    print(json.dumps({"mean_gap_sq_minus_noise": round(float(d.square().sum()) - noise, 3),
                      "digit_shift_sq": round(float(s.square().sum()), 3),
                      "cos_gap_shift": round(float(torch.nn.functional.cosine_similarity(
                          d, s, 0)), 3)}), flush=True)
    for k in args.clusters:
        row = cluster_kl(zr, zf, real_digits, torch.tensor(fake_shares), k)
        print(json.dumps({key: round(v, 4) for key, v in row.items()}), flush=True)


if __name__ == "__main__":
    main()
