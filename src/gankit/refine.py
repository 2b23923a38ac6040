"""Critic-guided rejection sampling: a trained generator's samples, reweighted towards the data.

After training, a fresh classifier, the *critic*, learns to tell the training images from G's
samples. At its optimum its logit is l(x) = log p_data(x) / p_G(x) for what it sees, so
accepting each of G's samples with probability

    a(x) = min(1, exp(alpha * l(x) - M))

draws from p_G(x) * min(r(x)^alpha, e^M) / Z, with r = p_data / p_G: at ``alpha`` = 1 and no
cap that is the data distribution itself. This is discriminator rejection sampling (Azadi et
al. 2019) with a critic trained after the fact, on the likelihood-free importance weights of
Grover et al. 2019, which a power ``alpha`` < 1 can flatten. ``M`` is the ``quantile`` of
alpha * l over held-out samples of G, so a share of about 1 - quantile of G's samples is
always accepted and the rest in proportion to their weight; each candidate is kept or
dropped on its own, so the samples are independent and none is drawn twice. The critic is
an ensemble of small CNNs whose learning rate decays to 0: a single critic stopped at a
constant rate gives weights that change from one training seed to the next.

The critic sees a *view* of the images:

- ``ink``: each pixel thresholded at ``threshold`` (ink or background), then average pooled
  over ``pool`` x ``pool`` blocks: where the strokes are, not how bright they are. A
  generator never matches the data's intensities exactly, and a critic on raw pixels learns
  to tell them apart by that alone.
- ``pixels``: the images themselves (average pooled over ``pool``).

``precision=bf16`` runs G's forward passes (the critic's training fakes and the candidates)
under bfloat16 autocast, as ``train.precision=bf16`` trains them; the critic stays in
float32. The samples then differ from float32 ones by bf16 rounding. It is about twice as
fast (bench/refine_precision.py) on a CPU with AVX-512 BF16 or AMX and on GPUs from Ampere
on; elsewhere bf16 is emulated and slower.

A run's critic (`gankit.api.refined_sampler`) never sees a fixed share of its training
data, `reference_split`: ``gankit eval --refine`` compares the refined samples with those
rows, since a comparison with the images the critic was fitted on would flatter them.

Only unconditional image generators are supported. Everything is seeded: the same run,
data, options and thread count give the same samples.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from gankit.registry import closest
from gankit.sampling import draw, stream
from gankit.utils.precision import check_bf16
from gankit.utils.progress import progress_bar

VIEWS = ("ink", "pixels")
PRECISIONS = ("fp32", "bf16")
REFERENCE_SHARE = 0.2  # of a run's real rows, held out from its critic as the reference
_REFERENCE_SEED = 33_033  # fixed: the split depends on the number of rows only


def reference_split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``n`` real rows into the critic's rows and the held-out reference rows.

    The reference is ``round(REFERENCE_SHARE * n)`` rows (at least 1, and at least 1 row
    left for the critic) chosen by a permutation from a fixed seed, so the same ``n``
    always gives the same split, whatever the options or the global RNG.

    Returns:
        ``(critic_rows, reference_rows)``: sorted int64 indices, disjoint, together 0..n-1.

    Raises:
        ValueError: ``n`` < 2.
    """
    if n < 2:
        raise ValueError(f"refine needs at least 2 real images to hold some out as the "
                         f"reference, got {n}")
    k = min(max(1, round(REFERENCE_SHARE * n)), n - 1)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(_REFERENCE_SEED))
    return perm[k:].sort().values, perm[:k].sort().values


@dataclass(frozen=True)
class RefineOptions:
    """Settings of the critic and of the sampler (``gankit sample --refine-set KEY=VALUE``)."""

    view: str = "ink"  # what the critic sees: ink (thresholded, pooled) or pixels (pooled)
    threshold: float = 0.0  # ink: a pixel above this value is ink (images in [-1, 1])
    pool: int = 2  # average pooling factor of the view (28 -> 14)
    epochs: int = 2  # passes over the training images
    fit_samples: int = 50_000  # G's samples the critic trains on (at most the data's size)
    holdout: float = 0.1  # share of both sides held out (accuracy and the threshold M)
    batch_size: int = 128  # of each side, per critic step
    lr: float = 1e-3  # Adam
    decay: bool = True  # the learning rate falls linearly to 0 over the training
    ensemble: int = 5  # critics averaged (seeds seed, seed + 1, ...): steadier weights
    alpha: float = 1.0  # power of the density ratio (1: the data's distribution)
    quantile: float = 0.9  # M: this quantile of alpha * logit over held-out fakes
    seed: int = 0  # the critic's initialisation, its shuffling and its own fakes
    precision: str = "fp32"  # G's forward passes: fp32, or bf16 (autocast; the critic: fp32)

    def __post_init__(self) -> None:
        def bad(name, value, want):
            raise ValueError(f"refine {name}={value!r}: {want}")

        if self.view not in VIEWS:
            bad("view", self.view, f"choose one of {', '.join(VIEWS)}")
        if self.precision not in PRECISIONS:
            bad("precision", self.precision, f"choose one of {', '.join(PRECISIONS)}")
        if not -1.0 <= self.threshold <= 1.0:
            bad("threshold", self.threshold, "images lie in [-1, 1]; use a value inside")
        for name in ("pool", "epochs", "fit_samples", "batch_size", "ensemble"):
            if int(getattr(self, name)) < 1:
                bad(name, getattr(self, name), "must be at least 1")
        if not 0.0 < self.holdout < 0.5:
            bad("holdout", self.holdout, "must lie in (0, 0.5)")
        if not self.lr > 0:
            bad("lr", self.lr, "must be positive")
        if not 0.0 < self.alpha <= 1.0:
            bad("alpha", self.alpha, "must lie in (0, 1]; 1 targets the data's distribution")
        if not 0.0 < self.quantile <= 1.0:
            bad("quantile", self.quantile, "must lie in (0, 1]")

    @classmethod
    def parse(cls, items) -> RefineOptions:
        """Options from ``KEY=VALUE`` strings, typed like the defaults; unknown keys fail."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        for item in items:
            key, sep, value = str(item).partition("=")
            if not sep or key not in fields:
                raise ValueError(f"--refine-set {item!r}: want KEY=VALUE with KEY one of "
                                 f"{', '.join(fields)}.{closest(key, list(fields))}")
            kind = type(fields[key].default)
            try:
                if kind is bool:
                    if value.lower() not in ("true", "false", "1", "0"):
                        raise ValueError(value)
                    kwargs[key] = value.lower() in ("true", "1")
                else:
                    kwargs[key] = kind(value)
            except ValueError:
                raise ValueError(f"refine {key}={value!r}: not a valid {kind.__name__}") from None
        return cls(**kwargs)


def view(x: torch.Tensor, options: RefineOptions) -> torch.Tensor:
    """What the critic sees of images ``x`` [N, C, H, W] in [-1, 1]."""
    if options.view == "ink":
        x = (x > options.threshold).float() * 2 - 1
    return F.avg_pool2d(x.float(), options.pool) if options.pool > 1 else x.float()


class Critic(nn.Module):
    """A small convolutional classifier: logit of "from the data" for a view [N, C, h, w]."""

    def __init__(self, channels: int, side: int) -> None:
        super().__init__()
        first = 2 if side > 8 else 1  # 14 -> 7 -> 4; 7 -> 7 -> 4
        out = math.ceil(math.ceil(side / first) / 2)
        self.net = nn.Sequential(
            nn.Conv2d(channels, 32, 3, first, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 64, 3, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(),
            nn.Linear(64 * out * out, 128), nn.LeakyReLU(0.2), nn.Linear(128, 1))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.net(v).squeeze(1)


@torch.no_grad()
def logits(critic: Critic, v: torch.Tensor, batch_size: int = 4000) -> torch.Tensor:
    return torch.cat([critic(b) for b in v.split(batch_size)])


class RefinedSampler:
    """Draws G's samples and keeps each with probability min(1, exp(alpha * logit - M)).

    ``report`` holds the critic's held-out accuracy, the threshold M and, after `sample`,
    the acceptance rate of the last call.
    """

    def __init__(self, G, z_dim: int, critic: nn.Module, options: RefineOptions, threshold: float,
                 report: dict | None = None, progress: bool = False) -> None:
        self.G, self.z_dim, self.critic, self.options = G, z_dim, critic, options
        self.progress = progress  # a bar of the accepted samples on stderr
        self.threshold = float(threshold)
        self.report = dict(report or {}, threshold_M=self.threshold)

    def accept_probability(self, x: torch.Tensor) -> torch.Tensor:
        logit = logits(self.critic, view(x, self.options))
        return (self.options.alpha * logit - self.threshold).clamp(max=0).exp()

    def sample(self, n: int, seed: int = 0, batch_size: int = 500,
               max_candidates: int | None = None) -> torch.Tensor:
        """``n`` accepted samples [n, C, H, W]; latents and coins seeded by ``seed``.

        The candidates' latents come from a generator seeded ``seed``, ``batch_size`` at a
        time: the stream that plain sampling with this seed draws. The accept/reject coins
        come from a second generator.

        Raises:
            ValueError: fewer than ``n`` accepted among ``max_candidates`` (default 100 n)
                candidates: the critic rejects nearly everything; lower ``quantile``.
        """
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        limit = max_candidates or 100 * n
        dev = next(self.G.parameters()).device
        gen = torch.Generator(device=dev).manual_seed(seed)
        coins = stream(seed, "refine_coins")
        bf16 = self.options.precision == "bf16"
        kept, have, seen = [], 0, 0
        bar = progress_bar(n, desc="refined sampling", unit="sample",
                           enabled=self.progress and n > batch_size)
        while have < n:
            if seen >= limit:
                raise ValueError(
                    f"refined sampling accepted {have} of {seen} candidates, short of {n}: "
                    f"the critic rejects nearly all of G's samples; lower quantile "
                    f"(now {self.options.quantile}) or alpha (now {self.options.alpha})")
            x = draw(self.G, batch_size, self.z_dim, gen, batch_size=batch_size, bf16=bf16)
            keep = torch.rand(len(x), generator=coins) < self.accept_probability(x)
            kept.append(x[keep])
            have += int(keep.sum())
            seen += len(x)
            bar.update(min(have, n) - bar.n)
        bar.close()
        self.report["acceptance"] = have / seen
        return torch.cat(kept)[:n]


class Ensemble(nn.Module):
    """The mean logit of several critics."""

    def __init__(self, members) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(v) for m in self.members]).mean(0)


def _train_one(tr_r, tr_f, channels: int, o: RefineOptions, seed: int, log, bar) -> Critic:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    critic = Critic(channels, tr_r.shape[-1])
    opt = torch.optim.Adam(critic.parameters(), lr=o.lr)
    n = min(len(tr_r), len(tr_f))
    total, done = o.epochs * math.ceil(n / o.batch_size), 0
    for epoch in range(o.epochs):
        order_r = torch.randperm(len(tr_r), generator=gen)[:n]
        order_f = torch.randperm(len(tr_f), generator=gen)[:n]
        for i in range(0, n, o.batch_size):
            if o.decay:  # linear to 0: the critic ends at a settled point, not a noisy one
                for group in opt.param_groups:
                    group["lr"] = o.lr * (1 - done / total)
            loss = (F.softplus(-critic(tr_r[order_r[i:i + o.batch_size]])).mean()
                    + F.softplus(critic(tr_f[order_f[i:i + o.batch_size]])).mean())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            bar.update(1)
        if log is not None:
            log(f"critic seed {seed} epoch {epoch + 1}/{o.epochs} loss {loss.item():.4f}")
    return critic


def fit_critic(real: torch.Tensor, fake: torch.Tensor, options: RefineOptions,
               log=None, progress: bool = False) -> tuple[nn.Module, float, dict]:
    """Train the critic on ``real`` against ``fake`` images [N, C, H, W] in [-1, 1].

    Both sides are split into training rows and a held-out ``holdout`` share (seeded by
    ``seed``). Each of the ``ensemble`` members (seeds ``seed``, ``seed + 1``, ...) trains
    with Adam on binary cross-entropy for ``epochs`` passes over the smaller training side,
    its learning rate decayed linearly to 0 with ``decay``; the critic's logit is the
    members' mean. Deterministic for one thread count (``torch.manual_seed`` inside
    ``fork_rng``; the caller's RNG is left alone). ``progress``: a bar of the critics'
    batches on stderr (`gankit.utils.progress`).

    Returns:
        (critic in eval mode, M = the ``quantile`` of alpha * logit over the held-out fakes,
        a report with the held-out accuracy and mean logits of both sides).
    """
    o = options
    if real.dim() != 4 or fake.dim() != 4 or real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"refine needs real and generated images of one shape [N, C, H, W], "
                         f"got {tuple(real.shape)} and {tuple(fake.shape)}")
    side = real.shape[-1]
    if side % o.pool or real.shape[-2] % o.pool:
        raise ValueError(f"refine pool={o.pool} does not divide the images' side "
                         f"{tuple(real.shape[-2:])}; choose a divisor")
    vr, vf = view(real, o), view(fake, o)
    with torch.random.fork_rng(devices=[]):
        gen = torch.Generator().manual_seed(o.seed)
        pr, pf = torch.randperm(len(vr), generator=gen), torch.randperm(len(vf), generator=gen)
        hr, hf = max(1, int(len(vr) * o.holdout)), max(1, int(len(vf) * o.holdout))
        tr_r, ho_r, tr_f, ho_f = vr[pr[hr:]], vr[pr[:hr]], vf[pf[hf:]], vf[pf[:hf]]
        steps = o.ensemble * o.epochs * math.ceil(min(len(tr_r), len(tr_f)) / o.batch_size)
        with progress_bar(steps, desc="refine critics", unit="batch", enabled=progress) as bar:
            members = [_train_one(tr_r, tr_f, real.shape[1], o, o.seed + k, log, bar)
                       for k in range(o.ensemble)]
    critic = (members[0] if o.ensemble == 1 else Ensemble(members)).eval().requires_grad_(False)
    lr_, lf_ = logits(critic, ho_r), logits(critic, ho_f)
    threshold = float(torch.quantile(o.alpha * lf_.double(), o.quantile))
    report = {"heldout_accuracy": float(((lr_ > 0).double().mean() + (lf_ < 0).double().mean())
                                        / 2),
              "mean_logit_real": float(lr_.mean()), "mean_logit_fake": float(lf_.mean())}
    return critic, threshold, report


def refine(G, z_dim: int, real: torch.Tensor, options: RefineOptions | None = None,
           log=None, progress: bool = False) -> RefinedSampler:
    """Fit the critic for generator ``G`` against the images ``real`` and return the
    sampler. The critic trains on ``min(fit_samples, len(real))`` of G's samples, drawn
    from the ``refine_fit`` stream of ``options.seed`` (apart from any sampling seed a user
    would pick). ``progress``: bars on stderr of the fit's samples, the critics' training
    and the sampler's draws."""
    options = options or RefineOptions()
    if getattr(G, "conditional", False):
        raise ValueError("refine: this generator is conditional; refined sampling supports "
                         "unconditional generators only")
    if bf16 := options.precision == "bf16":
        check_bf16(next(G.parameters()).device, "refine precision")
    n = min(options.fit_samples, len(real))
    gen = stream(options.seed, "refine_fit", next(G.parameters()).device)
    fake = draw(G, n, z_dim, gen, bf16=bf16, progress=progress)
    critic, threshold, report = fit_critic(real.float(), fake, options, log, progress)
    return RefinedSampler(G, z_dim, critic, options, threshold, report, progress)
