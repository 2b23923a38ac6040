"""Critic-guided rejection sampling (gankit.refine): acceptance by closed form, the critic's
calibration on a known density ratio, real-digit rebalancing, the CLI, bad options."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from gankit.data import load_dataset
from gankit.refine import RefinedSampler, RefineOptions, fit_critic, refine, view


class TwoKinds(nn.Module):
    """G drawing image A (top rows ink) when Phi(z_0) < share_a, else B (bottom rows ink),
    plus a little noise from z_1; 1 x 8 x 8 in [-1, 1]."""

    def __init__(self, share_a: float) -> None:
        super().__init__()
        self.cut = float(torch.distributions.Normal(0, 1).icdf(torch.tensor(share_a)))
        self.dummy = nn.Parameter(torch.zeros(()))
        self.conditional = False

    def forward(self, z):
        a = (z[:, 0] < self.cut).float()[:, None, None]
        img = torch.full((len(z), 8, 8), -1.0)
        top, bottom = img.clone(), img.clone()
        top[:, :3] = 1.0
        bottom[:, 5:] = 1.0
        x = a * top + (1 - a) * bottom + 0.05 * torch.tanh(z[:, 1])[:, None, None]
        return x.clamp(-1, 1)[:, None] + 0 * self.dummy


def is_a(x):
    return x[:, 0, :3].mean((1, 2)) > 0


class FixedCritic(nn.Module):
    """Logit 0 on A and log(1/4) on B (the view is the raw image)."""

    def forward(self, v):
        return torch.where(v[:, 0, :3].mean((1, 2)) > 0, 0.0, math.log(0.25))


def logits_a_b(s, real, opts):
    """The fitted critic's logits on the first real A and the first real B."""
    probe = torch.cat([real[is_a(real)][:1], real[~is_a(real)][:1]])
    return s.critic(view(probe, opts)).tolist()


def sampler(G, critic, alpha, threshold=0.0):
    return RefinedSampler(G, 2, critic, RefineOptions(view="pixels", pool=1, alpha=alpha),
                          threshold)


@pytest.mark.parametrize("alpha, share", [(1.0, 0.5 / (0.5 + 0.5 * 0.25)),
                                          (0.5, 0.5 / (0.5 + 0.5 * 0.5))])
def test_acceptance_follows_the_closed_form(alpha, share):
    # A kept with probability 1, B with exp(alpha * log(1/4)): shares 0.8 and 2/3
    s = sampler(TwoKinds(0.5), FixedCritic(), alpha)
    x = s.sample(20_000, seed=3)
    assert x.shape == (20_000, 1, 8, 8)
    assert float(is_a(x).float().mean()) == pytest.approx(share, abs=0.012)
    accept = 0.5 + 0.5 * 0.25 ** alpha
    assert s.report["acceptance"] == pytest.approx(accept, abs=0.012)


def test_threshold_caps_the_weight():
    # M = log(1/4): both kinds reach the cap, everything is kept, shares stay as drawn
    s = sampler(TwoKinds(0.5), FixedCritic(), 1.0, threshold=math.log(0.25))
    x = s.sample(10_000, seed=0)
    assert s.report["acceptance"] == 1.0
    assert float(is_a(x).float().mean()) == pytest.approx(0.5, abs=0.02)


def test_everything_kept_gives_plain_sampling_latents():
    G = TwoKinds(0.3)
    s = sampler(G, FixedCritic(), 1.0, threshold=-10.0)
    x = s.sample(2000, seed=11, batch_size=1000)
    z = torch.randn(2000, 2, generator=torch.Generator().manual_seed(11))
    assert torch.equal(x, G(z).detach())


def test_a_critic_that_rejects_everything_fails_with_the_fix():
    s = sampler(TwoKinds(0.5), FixedCritic(), 1.0, threshold=50.0)
    with pytest.raises(ValueError, match="lower quantile"):
        s.sample(100, seed=0, max_candidates=2000)


def test_the_fitted_critic_learns_the_density_ratio_and_rebalances():
    # data: A and B half and half; G: A 80 %. Optimal logits log(0.5/0.8) and log(0.5/0.2)
    data_G = TwoKinds(0.5)
    real = data_G(torch.randn(16000, 2, generator=torch.Generator().manual_seed(1))).detach()
    G = TwoKinds(0.8)
    opts = RefineOptions(view="pixels", pool=1, epochs=2, alpha=1.0, quantile=1.0, seed=2,
                         ensemble=1)
    s = refine(G, 2, real, opts)
    la, lb = logits_a_b(s, real, opts)
    assert la == pytest.approx(math.log(0.5 / 0.8), abs=0.15)
    assert lb == pytest.approx(math.log(0.5 / 0.2), abs=0.15)
    x = s.sample(6000, seed=4)
    assert float(is_a(x).float().mean()) == pytest.approx(0.5, abs=0.03)
    # the held-out accuracy of the best possible critic here: 0.5 * (0.5 + 0.8) = 0.65
    assert s.report["heldout_accuracy"] == pytest.approx(0.65, abs=0.03)


def test_the_fit_is_deterministic():
    real = TwoKinds(0.5)(torch.randn(3000, 2, generator=torch.Generator().manual_seed(1)))
    opts = RefineOptions(view="pixels", pool=1, epochs=1, seed=5, ensemble=2)
    x1 = refine(TwoKinds(0.8), 2, real.detach(), opts).sample(500, seed=1)
    x2 = refine(TwoKinds(0.8), 2, real.detach(), opts).sample(500, seed=1)
    assert torch.equal(x1, x2)


class RealDigits(nn.Module):
    """G on real mnist5k digits that draws digits 0-4 four times as often as 5-9."""

    def __init__(self, x, y) -> None:
        super().__init__()
        self.pools = [x[y == k] for k in range(10)]
        w = torch.tensor([4.0] * 5 + [1.0] * 5)
        self.cdf = (w / w.sum()).cumsum(0)
        self.dummy = nn.Parameter(torch.zeros(()))
        self.conditional = False

    def forward(self, z):
        u = torch.special.ndtr(z[:, 0])
        k = torch.searchsorted(self.cdf, u.contiguous()).clamp(max=9)
        j = (torch.special.ndtr(z[:, 1]) * 500).long().clamp(max=499)
        return torch.stack([self.pools[int(a)][int(b)] for a, b in zip(k, j)])


def test_ink_critic_rebalances_real_digits():
    """End to end on the 5,000 real digits: the ink view's critic sees digit shapes, and
    refined sampling takes the share of 5-9 from 1/5 towards the data's 1/2 (0.39 here)."""
    ds = load_dataset("mnist5k")
    G = RealDigits(ds.x, ds.y)
    s = refine(G, 2, ds.x, RefineOptions(epochs=8, quantile=0.99, ensemble=1))
    z = torch.randn(3000, 2, generator=torch.Generator().manual_seed(8))
    plain = G(z)
    x = s.sample(3000, seed=8)
    # which digit each sample is: its index in the pools (exact copies of real digits)
    flat = ds.x.flatten(1)

    def share_high(images):
        d = torch.cdist(images.flatten(1), flat).argmin(1)
        return float((ds.y[d] >= 5).float().mean())

    assert share_high(plain) == pytest.approx(1 / 5, abs=0.03)
    assert share_high(x) > 0.33


def test_ink_view_by_hand():
    x = torch.tensor([[[[-1.0, 0.2], [0.5, -0.3]]]])
    assert view(x, RefineOptions(pool=2)).item() == 0.0  # ink at 0.2 and 0.5: (-1+1+1-1)/4
    assert view(x, RefineOptions(pool=2, threshold=0.3)).item() == -0.5
    assert torch.equal(view(x, RefineOptions(pool=1, view="pixels")), x)


def test_bad_options_name_the_value():
    with pytest.raises(ValueError, match="alpha=0"):
        RefineOptions(alpha=0)
    with pytest.raises(ValueError, match="view='edges'"):
        RefineOptions(view="edges")
    with pytest.raises(ValueError, match="quantile=1.5"):
        RefineOptions(quantile=1.5)
    with pytest.raises(ValueError, match="precision='fp16': choose one of fp32, bf16"):
        RefineOptions(precision="fp16")
    with pytest.raises(ValueError, match="alpah"):
        RefineOptions.parse(["alpah=0.5"])
    with pytest.raises(ValueError, match="pool='two'"):
        RefineOptions.parse(["pool=two"])
    o = RefineOptions.parse(["alpha=0.25", "view=pixels", "pool=2", "epochs=1"])
    assert (o.alpha, o.view, o.pool, o.epochs) == (0.25, "pixels", 2, 1)
    with pytest.raises(ValueError, match="pool=3 does not divide"):
        fit_critic(torch.zeros(4, 1, 8, 8), torch.zeros(4, 1, 8, 8), RefineOptions(pool=3))


def test_conditional_generators_are_refused():
    G = TwoKinds(0.5)
    G.conditional = True
    with pytest.raises(ValueError, match="conditional"):
        refine(G, 2, torch.zeros(10, 1, 8, 8))


def test_cli_sample_refine(tmp_path, capsys):
    from gankit.cli import main

    run = tmp_path / "run"
    assert main(["train", "dcgan", "--data", "digits", "--steps", "4", "--out", str(run),
                 "--no-progress", "--set", "hooks.ema=null"]) == 0
    out = tmp_path / "s.npz"
    assert main(["sample", str(run), "--n", "50", "--out", str(out), "--refine-set",
                 "epochs=1", "--refine-set", "pool=1"]) == 0
    err = capsys.readouterr().err
    assert "held-out accuracy" in err and "acceptance" in err
    x = np.load(out)["x"]
    assert x.shape[0] == 50
    assert main(["sample", str(run), "--n", "5", "--out", str(out), "--refine-set",
                 "alpha=2"]) == 2
    assert "alpha=2.0" in capsys.readouterr().err


def test_an_ensemble_averages_members_trained_as_single_critics():
    real = TwoKinds(0.5)(torch.randn(2000, 2, generator=torch.Generator().manual_seed(1)))
    fake = TwoKinds(0.8)(torch.randn(2000, 2, generator=torch.Generator().manual_seed(2)))
    real, fake = real.detach(), fake.detach()
    single = RefineOptions(view="pixels", pool=1, seed=3, ensemble=1)
    c1, _, _ = fit_critic(real, fake, single)
    both, _, _ = fit_critic(real, fake, RefineOptions(view="pixels", pool=1, seed=3,
                                                      ensemble=2))
    v = view(real[:64], single)
    # member k is the single critic of seed + k (the split is seed's in both)
    assert torch.equal(both.members[0](v), c1(v))
    assert torch.allclose(both(v), (both.members[0](v) + both.members[1](v)) / 2)
    assert not torch.equal(both.members[1](v), c1(v))


def test_bool_options_parse_strictly():
    assert RefineOptions.parse(["decay=false"]).decay is False
    assert RefineOptions.parse(["decay=True"]).decay is True
    with pytest.raises(ValueError, match="decay='maybe'"):
        RefineOptions.parse(["decay=maybe"])
    with pytest.raises(ValueError, match="ensemble=0"):
        RefineOptions(ensemble=0)


class LinearG(nn.Module):
    """A linear G (z [N, 4] -> 1 x 4 x 4, in tanh) that records whether each call ran under
    bfloat16 autocast on the CPU."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(4, 16)
        self.conditional = False
        self.calls = []

    def forward(self, z):
        self.calls.append(torch.is_autocast_enabled("cpu"))
        return torch.tanh(self.fc(z)).view(-1, 1, 4, 4)


def test_bf16_precision_runs_G_under_autocast_and_rounds_like_bf16():
    G = LinearG()
    opts = RefineOptions(view="pixels", pool=1, precision="bf16")
    s = RefinedSampler(G, 4, FixedCritic(), opts, threshold=-10.0)  # everything kept
    x = s.sample(1000, seed=2)
    assert x.dtype == torch.float32 and G.calls == [True, True]  # 2 batches of 500
    z = torch.randn(1000, 4, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        exact = torch.tanh(z.double() @ G.fc.weight.double().T + G.fc.bias.double())
        # what autocast computes: z, W and b rounded to bf16, the layer's output and the
        # tanh of it rounded to bf16
        zb, wb = z.bfloat16().double(), G.fc.weight.bfloat16().double()
        pre = (zb @ wb.T + G.fc.bias.bfloat16().double()).bfloat16().double()
        by_hand = torch.tanh(pre).bfloat16().double()
        fp32 = RefinedSampler(G, 4, FixedCritic(), RefineOptions(view="pixels", pool=1),
                              threshold=-10.0).sample(1000, seed=2)
    x = x.view(1000, 16).double()
    # equal to within one bf16 step at |x| < 1 (the kernels' own rounding of sums), mostly exact
    assert (x - by_hand).abs().max() <= 2 ** -8 and (x == by_hand).double().mean() > 0.99
    err_bf16, err_fp32 = (x - exact).abs().max(), (fp32.view(1000, 16).double() - exact).abs().max()
    assert 1e-3 < err_bf16 < 0.05 and err_fp32 < 1e-5  # bf16 keeps 8 bits of mantissa


def test_bf16_precision_draws_the_critics_fakes_under_autocast_too():
    G = LinearG()
    real = torch.tanh(torch.randn(600, 1, 4, 4, generator=torch.Generator().manual_seed(1)))
    refine(G, 4, real, RefineOptions(view="pixels", pool=1, epochs=1, ensemble=1,
                                     precision="bf16", fit_samples=600))
    assert G.calls == [True, True]  # 600 fakes: batches of 500 and 100
    G.calls.clear()
    refine(G, 4, real, RefineOptions(view="pixels", pool=1, epochs=1, ensemble=1,
                                     fit_samples=600))
    assert G.calls == [False, False]


def test_the_reference_split_is_fixed_disjoint_and_complete():
    from gankit.refine import REFERENCE_SHARE, reference_split

    critic, reference = reference_split(1797)
    torch.manual_seed(123)  # the global RNG plays no part
    again = reference_split(1797)
    assert torch.equal(critic, again[0]) and torch.equal(reference, again[1])
    assert REFERENCE_SHARE == 0.2 and len(reference) == 359 and len(critic) == 1438
    assert torch.equal(torch.cat([critic, reference]).sort().values, torch.arange(1797))
    assert not set(critic.tolist()) & set(reference.tolist())
    assert torch.equal(critic, critic.sort().values)  # rows kept in the data's order
    assert not torch.equal(reference, torch.arange(1438, 1797))  # a shuffled choice
    with pytest.raises(ValueError, match="at least 2 real images"):
        reference_split(1)


def test_refined_sampler_never_shows_the_critic_the_reference_split(tmp_path, monkeypatch):
    import gankit.refine
    from gankit import api
    from gankit.refine import reference_split

    run = tmp_path / "run"
    api.train("dcgan", out=run, data="digits", steps=1, progress=False,
              overrides=["generator.width=8", "discriminator.width=8", "train.batch_size=16"])
    seen = {}
    monkeypatch.setattr(gankit.refine, "refine",
                        lambda G, z_dim, real, options=None, log=None, progress=False:
                        seen.setdefault("x", real))
    api.refined_sampler(run)
    digits = load_dataset("digits").x
    critic_rows, reference_rows = reference_split(len(digits))
    assert torch.equal(seen["x"], digits[critic_rows])
    assert not set(critic_rows.tolist()) & set(reference_rows.tolist())
