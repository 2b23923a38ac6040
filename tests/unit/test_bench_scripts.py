"""The helpers of the bench/ scripts that are not timing code."""

import importlib.util
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_curve_branch_copies_one_checkpoint(tmp_path):
    curve = _script("stacked_mnist_curve")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("train: {}\n")
    for step in (4000, 6000):
        for suffix in (".pt", ".safetensors"):
            (run / "checkpoints" / f"step_{step:08d}{suffix}").write_bytes(bytes([step // 1000]))
    out = tmp_path / "branch"
    assert curve.branch(f"{run}:6000", str(out)) == 6000
    copied = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert copied == ["step_00006000.pt", "step_00006000.safetensors"]
    assert (out / "checkpoints" / "step_00006000.pt").read_bytes() == bytes([6])
    assert (out / "config.yaml").read_text() == "train: {}\n"
    with pytest.raises(SystemExit, match="exists"):
        curve.branch(f"{run}:6000", str(out))
    with pytest.raises(SystemExit, match="no checkpoint .*step_00005000"):
        curve.branch(f"{run}:5000", str(tmp_path / "other"))
    with pytest.raises(SystemExit, match="RUN_DIR:STEP, got"):
        curve.branch(str(run), str(tmp_path / "other"))


class _DigitImages:
    """Stub G: stack i of every batch holds digits (a, a, a + 1 mod 10), a = i mod 10, each
    channel a constant image of value digit / 10."""

    def __call__(self, z):
        a = torch.arange(len(z)) % 10
        digits = torch.stack([a, a, (a + 1) % 10], 1).float()
        return (digits / 10)[:, :, None, None].expand(-1, -1, 28, 28).clone()


class _ReadDigit:
    """Stub classifier: one-hot of round(10 * mean intensity)."""

    def extract(self, x, with_probs=False):
        d = (x.mean((1, 2, 3)) * 10).round().long()
        return None, torch.nn.functional.one_hot(d, 10).float()


class _LogitIsChannel0:
    """Stub D: a stack's logit is the digit in its first channel (0 for the real zeros)."""

    def score(self, x):
        return {"logits": x[:, 0].mean((1, 2)) * 10}


def test_d_view_groups_logits_by_digit_by_hand():
    view = _script("stacked_mnist_d_view")
    rows = view.d_by_digit(_DigitImages(), _LogitIsChannel0(), torch.zeros(5, 3, 28, 28),
                           z_dim=4, samples=640, extractor=_ReadDigit(), batch=20)
    # digit d >= 1 is held in channels 0 and 1 by stacks with a = d (logit d) and in
    # channel 2 by stacks with a = d - 1 (logit d - 1): mean d - 1/3, called real unless
    # the logit is 0; digit 0 is held by a = 0 twice (logit 0) and by a = 9 once (logit 9)
    assert [r["share"] for r in rows] == [0.1] * 10
    assert [r["mean_fake_logit"] for r in rows] == pytest.approx(
        [3.0] + [d - 1 / 3 for d in range(1, 10)], abs=1e-3)
    assert [r["called_real"] for r in rows] == pytest.approx([1 / 3, 2 / 3] + [1.0] * 8,
                                                             abs=1e-4)


def test_d_view_digit_no_fake_holds_has_no_logit():
    view = _script("stacked_mnist_d_view")

    class Sevens:
        def __call__(self, z):
            return torch.full((len(z), 3, 28, 28), 0.7)

    rows = view.d_by_digit(Sevens(), _LogitIsChannel0(), torch.zeros(2, 3, 28, 28), z_dim=4,
                           samples=64, extractor=_ReadDigit())
    assert rows[7] == {"digit": 7, "share": 1.0, "mean_fake_logit": 7.0, "called_real": 1.0}
    assert rows[3] == {"digit": 3, "share": 0.0, "mean_fake_logit": None, "called_real": None}


def test_separability_is_one_for_disjoint_and_chance_for_identical_data():
    view = _script("stacked_mnist_d_view")
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(2000, 8, generator=gen)
    assert view.separability(a + 3.0, torch.randn(2000, 8, generator=gen) - 3.0,
                             train=1600) == 1.0
    same = view.separability(a, torch.randn(2000, 8, generator=gen), train=1600)
    assert abs(same - 0.5) < 0.06  # 800 held out: chance +- 3.4 standard deviations


def test_pixel_histogram_by_hand_and_past_float32_counts():
    view = _script("stacked_mnist_d_view")
    x = torch.tensor([-1.0, -1.0, -0.995, 0.98, 0.995, 1.0, 1.0, 1.0])
    h = view.pixel_histogram(x)
    assert h == {"-1": 25.0, "(-1, -0.99)": 12.5, "[-0.99, -0.9)": 0.0, "[-0.9, -0.5)": 0.0,
                 "[-0.5, 0)": 0.0, "[0, 0.5)": 0.0, "[0.5, 0.9)": 0.0, "[0.9, 0.97)": 0.0,
                 "[0.97, 0.99)": 12.5, "[0.99, 1)": 12.5, "1": 37.5}
    # 2^24 + 2^22 blank pixels and as many exact ones: float32 counts would stall at 2^24
    n = 2**24 + 2**22
    big = view.pixel_histogram(torch.cat([torch.full((n,), -1.0), torch.ones(n)]))
    assert big["-1"] == 50.0 and big["1"] == 50.0


def test_fm_balance_landscape_by_hand():
    """Two classes with 1-D features: rows of class 0 at 0, of class 1 at 2 (class means
    M = 0, 2). Shares 0.25 / 0.75 (1 and 3 rows). Target mean 1.2: L(p) = (2 p_1 - 1.2)^2,
    so L at the shares is 0.09, at uniform 0.04, and p* = (0.4, 0.6) with L = 0."""
    fm = _script("stacked_mnist_fm_balance")
    z = torch.tensor([[0.0], [2.0], [2.0], [2.0]])
    row = fm.share_landscape(z, torch.tensor([0, 1, 1, 1]), torch.tensor([1.2]), classes=2)
    assert row["shares"] == [0.25, 0.75]
    assert row["L_at_shares"] == pytest.approx(0.09)
    assert row["L_at_uniform"] == pytest.approx(0.04)
    assert row["p_star"] == pytest.approx([0.4, 0.6])
    assert row["L_at_p_star"] == pytest.approx(0.0, abs=1e-12)


def test_fm_balance_real_class_features_put_the_minimum_at_the_real_shares():
    """When G draws each class with the real class's mean feature, L is 0 at the real
    (uniform) shares and p* finds them whatever G's own shares are."""
    fm = _script("stacked_mnist_fm_balance")
    means = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    digits = torch.tensor([0, 0, 0, 1, 2, 2])  # G's shares 1/2, 1/6, 1/3
    row = fm.share_landscape(means[digits], digits, means.mean(0), classes=3)
    assert row["p_star"] == pytest.approx([1 / 3] * 3)
    assert row["L_at_uniform"] == pytest.approx(0.0, abs=1e-12)
    # G's mean (1/2 - 1/3, 1/6 - 1/3) = (1/6, -1/6) against mu = (0, 0)
    assert row["L_at_shares"] == pytest.approx(1 / 18)


def test_fm_balance_cluster_kl_is_zero_for_the_real_features_and_balanced_shares():
    """G's features = the real ones and G's digit shares = the real ones: every KL is 0.
    Then shifting G's features far along one axis puts them all in the clusters at that
    end, a KL of at least ln 2 for 4 equal clusters (centring undoes the shift)."""
    fm = _script("stacked_mnist_fm_balance")
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    zr = (centres[torch.arange(400) % 4] + 0.1 * torch.randn(400, 2, generator=g)).float()
    digits = torch.stack([torch.arange(400) % 10] * 3, 1)
    shares = torch.full((3, 10), 0.1)
    row = fm.cluster_kl(zr, zr.clone(), digits, shares, k=4, dims=2)
    assert row["kl_fake"] == pytest.approx(0.0, abs=1e-9)
    assert row["kl_from_digit_shares"] == pytest.approx(0.0, abs=1e-9)
    shifted = fm.cluster_kl(zr, zr + torch.tensor([10.0, 0.0]), digits, shares, k=4, dims=2)
    assert shifted["kl_fake"] >= 0.69
    assert shifted["kl_fake_centred"] == pytest.approx(0.0, abs=1e-9)


def test_refine_script_scores_plain_and_refined_samples(tmp_path, monkeypatch, capsys):
    import json
    import sys

    from gankit import api

    run = tmp_path / "run"
    api.train("dcgan", data="stacked_mnist", steps=2, out=run, progress=False,
              overrides=["train.batch_size=8", "hooks.ema=null", "train.sample_interval=0"])
    script = _script("stacked_mnist_refine")
    monkeypatch.setattr(sys, "argv", ["x", str(run), "2", "--samples", "200", "--refine-set",
                                      "fit_samples=500", "--refine-set", "ensemble=1",
                                      "--critic-seeds", "0", "3"])
    script.main()
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["sampling"] for r in rows] == ["plain", "refined", "refined"]
    assert [r.get("critic_seed") for r in rows] == [None, 0, 3]
    assert rows[1]["options"]["seed"] == 0 and rows[2]["options"]["seed"] == 3
    assert all(0 < r["acceptance"] <= 1 and 1 <= r["modes"] <= 200 for r in rows[1:])


def test_critic_view_recovers_additive_digit_effects_by_hand():
    cv = _script("stacked_mnist_critic_view")
    g = torch.Generator().manual_seed(0)
    digits = torch.randint(0, 10, (500, 3), generator=g)
    # +0.5 where channel 0 holds a 3, -0.2 where channel 1 holds a 7, plus a constant
    score = 1.0 + 0.5 * (digits[:, 0] == 3).double() - 0.2 * (digits[:, 1] == 7).double()
    effects, r2 = cv.digit_effects(score, digits)
    want = torch.zeros(3, 10, dtype=torch.float64)
    want[0] = -0.05
    want[0, 3] = 0.45  # 0.5 minus the mean 0.05
    want[1] = 0.02
    want[1, 7] = -0.18
    torch.testing.assert_close(effects, want)
    assert r2 == pytest.approx(1.0)
    _, r2_noise = cv.digit_effects(torch.randn(500, generator=g).double(), digits)
    assert r2_noise < 0.1  # 30 indicators on pure noise explain ~30/500 of it


def test_critic_view_shares_needed_and_refined_by_hand():
    cv = _script("stacked_mnist_critic_view")
    digits = torch.tensor([[0], [0], [0], [1]])  # one channel, two digits: shares 3/4, 1/4
    accept = torch.tensor([1.0, 0.5, 0.0, 0.5])
    rows, _ = cv.digit_table(torch.tensor([0.1, -0.3, -2.0, 0.4]), accept, digits, classes=2)
    assert [r["share"] for r in rows] == [0.75, 0.25]
    # log(0.5 / 0.75) and log(0.5 / 0.25), centred: -/+ (log 2 + log 1.5) / 2 = -/+ 0.549
    assert [r["needed"] for r in rows] == [-0.549, 0.549]
    assert [r["refined"] for r in rows] == [0.75, 0.25]  # 1.5 of 2.0 accepted mass is digit 0
    rows, _ = cv.digit_table(torch.zeros(4), torch.tensor([0.2, 0.2, 0.2, 0.6]), digits,
                             classes=2)
    assert [r["refined"] for r in rows] == [0.5, 0.5]
    rows, _ = cv.digit_table(torch.zeros(2), torch.ones(2), torch.tensor([[0], [0]]), classes=2)
    assert rows[1]["needed"] is None and rows[1]["share"] == 0.0


def test_critic_view_script_end_to_end(tmp_path, monkeypatch, capsys):
    import json
    import sys

    from gankit import api

    run = tmp_path / "run"
    api.train("dcgan", data="stacked_mnist", steps=2, out=run, progress=False,
              overrides=["train.batch_size=8", "hooks.ema=null", "train.sample_interval=0"])
    monkeypatch.setattr(sys, "argv", ["x", str(run), "2", "--samples", "300", "--refine-set",
                                      "fit_samples=500", "--refine-set", "ensemble=1"])
    _script("stacked_mnist_critic_view").main()
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    table, summary = rows[:-1], rows[-1]
    assert [(r["channel"], r["digit"]) for r in table] == [(c, d) for c in range(3)
                                                          for d in range(10)]
    for c in range(3):
        ch = [r for r in table if r["channel"] == c]
        assert sum(r["share"] for r in ch) == pytest.approx(1.0, abs=1e-3)
        assert sum(r["refined"] for r in ch) == pytest.approx(1.0, abs=1e-3)
    assert 0.0 <= summary["r2_digits"] <= 1.0 and "heldout_accuracy" in summary


def test_snapshots_script_mixes_checkpoints_as_the_bench_does(tmp_path, capsys):
    """One step, plain: the bench's own score of that checkpoint; two steps: half the
    samples from each, the second from latents seeded S + 13345."""
    import json

    from gankit import api
    from gankit.benchmarks.stacked_mnist import count_modes, draw, score_generator

    run = tmp_path / "run"
    api.train("dcgan", data="stacked_mnist", steps=4, seed=2, out=run, progress=False,
              overrides=["train.batch_size=8", "hooks.ema=null", "train.sample_interval=0",
                         "generator.width=8", "discriminator.width=8",
                         "train.checkpoint_interval=2"])
    script = _script("stacked_mnist_snapshots")
    script.main([str(run), "4", "--seed", "7", "--samples", "300", "--plain"])
    script.main([str(run), "2", "4", "--seed", "7", "--samples", "301", "--plain"])
    one, two = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    G2, G4 = (api.load(run, step=s).net(ema=False) for s in (2, 4))
    assert one["kl"] == round(score_generator(G4, 100, 7, 300)["kl"], 4)
    x = torch.cat([draw(G2, 100, 7 + 12345, 151), draw(G4, 100, 7 + 13345, 150)])
    assert two["steps"] == [2, 4] and two["kl"] == round(count_modes(x)["kl"], 4)
    assert "acceptance" not in two
    with pytest.raises(SystemExit):
        script.main([str(run), "4", "--plain", "--refine-set", "quantile=0.9"])
    script.main([str(run), "2", "4", "--seed", "7", "--samples", "200", "--refine-set",
                 "fit_samples=500", "--refine-set", "ensemble=1"])
    refined = json.loads(capsys.readouterr().out)
    assert refined["sampling"] == "refined" and 0 < refined["acceptance"] <= 1
