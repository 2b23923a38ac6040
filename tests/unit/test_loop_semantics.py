"""The loop's GAN semantics (issue 33 §1), pinned at the level of the loop: which D scores
what, when penalties run, how they see packing and precision, and what extending a run means."""

import copy

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from gankit import api
from gankit.models._base import Discriminator, PackedDiscriminator
from gankit.regularizers.feature_matching import FeatureMatching
from gankit.regularizers.gradient_penalty import GradientPenalty
from gankit.regularizers.r1 import R1
from gankit.training.batches import BatchSource
from gankit.training.context import StepContext
from gankit.training.loop import Trainer
from gankit.training.state import build_state
from gankit.training.unroll import UNROLL_OFFSET


def _trainer(*overrides, preset="mixture_gan", data="ring"):
    sets = ["generator.widths=[16,16]", "discriminator.widths=[16,16]",
            "train.batch_size=16", *overrides]
    config = api.make_config(preset, data=data, device="cpu", overrides=sets)
    ds = api.dataset_for(config)
    state = build_state(config, api.data_info(ds, config), torch.device("cpu"))
    return Trainer(state, ds, None, progress=False)


# -- 1. feature matching compares fakes and reals in the feature space of one D -----------------
@pytest.mark.parametrize("extra", [[], ["train.unrolled_steps=2"]])
def test_feature_matching_scores_the_real_batch_with_the_updated_d(monkeypatch, extra):
    seen = {}
    original = FeatureMatching.__call__

    def spy(self, ctx):
        seen["real"] = ctx.real_out["features"].clone()
        seen["D"] = ctx.D
        return original(self, ctx)

    batches = []
    draw = BatchSource.batch
    monkeypatch.setattr(FeatureMatching, "__call__", spy)
    monkeypatch.setattr(BatchSource, "batch", lambda self, i, step: batches.append(
        draw(self, i, step)) or batches[-1])
    t = _trainer("regularizers.feature_matching.weight=1.0", "d_optimizer.lr=0.1", *extra)
    t.d_step(0, log=False)
    t.g_step(log=False)
    real, _ = batches[-1]  # the last real batch a D update saw (the unrolled copy's, if any)
    with torch.no_grad():  # the D of the G step (train mode: batch statistics) on that batch
        expected = seen["D"].score(real)["features"]
    assert_close(seen["real"], expected, rtol=0, atol=0)


# -- 3. penalties see packed inputs: hand-computed with a linear packed critic ----------------
class _LinearBody(Discriminator):
    """D(x) = w . x on the flattened (packed) input: its input gradient is w everywhere."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))

    def score(self, x, c=None):
        return {"logits": x.flatten(1) @ self.w}


def _packed_ctx(real, fake, w=(1.0, 2.0, 2.0, 4.0), pack=2):
    D = PackedDiscriminator(_LinearBody(list(w)), pack)
    real = real.clone().requires_grad_(True)
    return StepContext(None, D, real, fake, None, D(real), D(fake), 0,
                       torch.Generator().manual_seed(0), real_view=real, pack=pack)


def test_r1_takes_the_norm_of_each_packed_input():
    # pack 2 of 2-d points: a D input is 4-d, w = (1, 2, 2, 4), ||w||^2 = 25:
    # R1 = gamma / 2 * 25 = 125 at gamma 10 (per-sample norms would give 62.5 = gamma/m)
    ctx = _packed_ctx(torch.randn(6, 2), torch.randn(6, 2))
    assert_close(R1(gamma=10.0)(ctx), torch.tensor(125.0))


def test_gradient_penalty_takes_the_norm_of_each_packed_input():
    # ||w|| = 5 for every packed interpolate: GP = 10 * (5 - 1)^2 = 160; per sample the
    # norms would be sqrt(5) and sqrt(20), giving 67.9
    ctx = _packed_ctx(torch.randn(6, 2), torch.randn(6, 2))
    assert_close(GradientPenalty(weight=10.0)(ctx), torch.tensor(160.0))


def test_gradient_penalty_draws_one_weight_per_pack():
    seen = []
    inner = _LinearBody([1.0] * 4)
    original = inner.score
    inner.score = lambda x, c=None: seen.append(x.detach().clone()) or original(x)
    D = PackedDiscriminator(inner, 2)
    real, fake = torch.ones(6, 2), torch.zeros(6, 2)
    ctx = StepContext(None, D, real, fake, None, None, D(fake), 0,
                      torch.Generator().manual_seed(0), pack=2)
    GradientPenalty()(ctx)
    x_hat = seen[-1]  # [3, 4]: eps * 1 + (1 - eps) * 0 = eps, one value per packed input
    assert_close(x_hat, x_hat[:, :1].expand_as(x_hat))
    assert x_hat[:, 0].unique().numel() == 3


def test_the_loop_tells_penalties_the_pack(monkeypatch):
    packs = []
    original = R1.__call__
    monkeypatch.setattr(R1, "__call__", lambda self, ctx: packs.append(ctx.pack)
                        or original(self, ctx))
    t = _trainer("pack=2", "regularizers.r1.gamma=1")
    t.d_step(0, log=False)
    assert packs == [2]


# -- 4. lazy regularisation counts D updates --------------------------------------------------
def test_lazy_d_penalty_runs_on_every_kth_d_update(monkeypatch):
    calls = []
    original = R1.__call__

    def spy(self, ctx):
        calls.append(ctx.step)
        return original(self, ctx)

    monkeypatch.setattr(R1, "__call__", spy)
    t = _trainer("train.d_steps=5", "regularizers.r1.interval=4",
                 preset="mixture_gan")
    for step in range(2):  # 10 D updates: 0..9, the penalty on updates 0, 4 and 8
        for i in range(5):
            t.d_step(step * 5 + i, log=False)
        t.g_step(log=False)
    assert calls == [0, 0, 1]  # the G step each of those D updates belongs to


def test_a_lazy_penalty_is_its_own_optimiser_step_after_the_main_update(monkeypatch):
    seen = {}
    original = R1.__call__

    def spy(self, ctx):
        seen["D"] = copy.deepcopy(ctx.D.state_dict())  # the weights D has when R1 runs
        return original(self, ctx)

    monkeypatch.setattr(R1, "__call__", spy)
    lazy = _trainer("regularizers.r1.interval=2", "regularizers.orthogonal.interval=2")
    plain = _trainer()  # same seed and data, no penalties
    lazy.d_step(0, log=False)
    plain.d_step(0, log=False)
    # R1 differentiated the D of the main update, and then D stepped again: 2 Adam steps
    for name, value in plain.state.D.state_dict().items():
        assert_close(seen["D"][name], value, rtol=0, atol=0)

    def weight_steps(net, opt):  # Adam's step count of each weight matrix (biases get no
        # gradient from R1 or the orthogonal term, so Adam skips them in that step)
        return {int(opt.state[p]["step"]) for n, p in net.named_parameters() if p.dim() > 1}

    assert weight_steps(lazy.state.D, lazy.state.d_opt) == {2}
    assert not torch.equal(next(lazy.state.D.parameters()), next(plain.state.D.parameters()))
    lazy.d_step(1, log=False)  # update 1: no penalty due, one step
    assert weight_steps(lazy.state.D, lazy.state.d_opt) == {3}
    lazy.g_step(log=False)  # G step 0: the orthogonal term is due, in a step of its own
    assert weight_steps(lazy.state.G, lazy.state.g_opt) == {2}
    assert lazy.state.step == 1
    lazy.g_step(log=False)
    assert weight_steps(lazy.state.G, lazy.state.g_opt) == {3}


# -- 8. under bf16 the penalties differentiate a float32 pass of D ----------------------------
def test_r1_under_bf16_equals_r1_of_a_float32_pass(monkeypatch):
    seen = {}
    original = R1.__call__

    def spy(self, ctx):
        seen["value"] = original(self, ctx).detach()
        seen["real"] = ctx.real.detach().clone()
        seen["D"] = copy.deepcopy(ctx.D)  # the weights D has when the penalty runs
        return seen["value"]

    monkeypatch.setattr(R1, "__call__", spy)
    t = _trainer("train.precision=bf16", "regularizers.r1.gamma=10")
    t.d_step(0, log=False)
    real = seen["real"].requires_grad_(True)
    (grad,) = torch.autograd.grad(seen["D"](real).sum(), real)
    expected = 5.0 * grad.pow(2).sum(1).mean()
    assert_close(seen["value"], expected, rtol=1e-5, atol=0)


# -- 9. extending a run never raises its learning rate ----------------------------------------
def _lr_trace(run, steps, *sets, resume=False):
    rates = {}

    def record(trainer):
        rates[trainer.state.step - 1] = trainer.state.g_opt.param_groups[0]["lr"]

    common = dict(progress=False, callbacks=[record])
    if resume:
        api.resume(run, steps=steps, **common)
    else:
        api.train("mixture_gan", out=run, data="ring", steps=steps, **common,
                  overrides=["generator.widths=[8]", "discriminator.widths=[8]",
                             "train.batch_size=8", "train.log_interval=1",
                             "g_optimizer.lr=1.0", "health.enabled=false", *sets])
    return rates


def test_extending_a_decayed_run_continues_from_its_last_rate(tmp_path):
    run = tmp_path / "run"
    first = _lr_trace(run, 10, "train.lr_decay=linear")
    assert_close([first[s] for s in range(10)], [(10 - s) / 10 for s in range(10)])
    more = _lr_trace(run, 20, resume=True)
    # from the last update's rate (0.1 at step 9) on a line to 0 at the new total
    assert_close([more[s] for s in range(10, 20)], [0.1 * (20 - s) / 10 for s in range(10, 20)])


def test_extending_before_the_decay_begins_schedules_on_the_new_total():
    from types import SimpleNamespace

    from gankit.training.schedule import lr_factor, schedule_for

    train = SimpleNamespace(lr_decay="linear", lr_decay_start=0.8, steps=20)
    old = {"total": 10, "anchor": None}  # decay would have begun at step 8 of 10
    fresh = schedule_for(train, 4, old)
    assert fresh == {"total": 20, "anchor": None}
    assert [lr_factor(s, train, fresh) for s in (4, 15, 16, 18)] == [1.0, 1.0, 1.0, 0.5]
    # resumed at step 9 of 10 (decay begun, factor 0.5): 0.5 on a line to 0 at step 20
    begun = schedule_for(train, 9, old)
    assert begun == {"total": 20, "anchor": [9, 0.5]}
    assert_close([lr_factor(s, train, begun) for s in (9, 14, 19)], [0.5, 0.5 * 6 / 11,
                                                                     0.5 / 11])
    assert schedule_for(SimpleNamespace(**{**vars(train), "steps": 10}), 9, old) == old


# -- 6. D's accuracy means what "D says real" means for the run's loss -------------------------
REAL_OUT = torch.tensor([0.3, 0.6, 0.9, 0.4] * 4)  # 16 real outputs
FAKE_OUT = torch.tensor([-0.2, 0.2, 0.7, 0.45] * 4)


def _fixed_scores(trainer):
    """D returns REAL_OUT for the real batch and FAKE_OUT for the fakes (kept differentiable)."""
    D = trainer.state.D
    calls = []

    def score(x, c=None):
        calls.append(1)
        tie = 0.0 * sum(p.sum() for p in D.parameters())
        return {"logits": (REAL_OUT if len(calls) % 2 else FAKE_OUT) + tie}

    D.score = score


@pytest.mark.parametrize("loss, acc_real, acc_fake", [
    ("non_saturating", 1.0, 0.25),  # logits: real > 0 (all), fake <= 0 (-0.2 only)
    ("hinge", 1.0, 0.25),
    ("least_squares", 0.5, 0.75),  # real > 1/2 (0.6, 0.9), fake <= 1/2 (3 of 4)
    ("wasserstein", None, None),  # a critic's scores: no accuracy at all
])
def test_d_accuracy_uses_the_loss_threshold(loss, acc_real, acc_fake):
    t = _trainer(f"loss={loss}")
    _fixed_scores(t)
    t.d_step(0, log=True)
    assert t.last.get("health/d_acc_real") == (None if acc_real is None else
                                                pytest.approx(acc_real))
    assert t.last.get("health/d_acc_fake") == (None if acc_fake is None else
                                                pytest.approx(acc_fake))


# -- 7. unrolled GAN: the second-order term of Metz et al. ---------------------------------
def _directional_derivatives(monkeypatch, order):
    """G's gradient along a random direction u as the loop computes it, and the central
    difference of the surrogate f(theta_G + h u) built with torch.optim.Adam on a copy of D
    (an independent reference), in float64."""
    monkeypatch.setattr(torch, "get_default_dtype", torch.get_default_dtype)
    torch.set_default_dtype(torch.float64)
    try:
        t = _trainer("train.unrolled_steps=2", f"train.unrolled_order={order}",
                     "d_optimizer.lr=0.05")
        t.batches.x = t.batches.x.double()
        t.d_step(0, log=False)  # D's Adam gets moments
        s = t.state
        G0, D0, opt_state = (copy.deepcopy(s.G), copy.deepcopy(s.D),
                             copy.deepcopy(s.d_opt.state_dict()))
        rng = s.generator.get_state()
        monkeypatch.setattr(s.g_opt, "step", lambda: None)
        t.g_step(log=False)
        grad = [p.grad for p in s.G.parameters()]
        u = [torch.randn(p.shape, generator=torch.Generator().manual_seed(i))
             for i, p in enumerate(grad)]

        def surrogate(h):
            G, D = copy.deepcopy(G0), copy.deepcopy(D0)
            with torch.no_grad():
                for p, d in zip(G.parameters(), u):
                    p.add_(h * d)
            opt = torch.optim.Adam(D.parameters(), **s.d_opt.defaults)
            opt.load_state_dict(copy.deepcopy(opt_state))
            gen = torch.Generator().set_state(rng)
            for j in range(2):  # the unrolled critic's own real batches
                real, _ = t.batches.batch(UNROLL_OFFSET + j, s.step)
                fake = G(torch.randn(16, s.config.z_dim, generator=gen))
                loss = s.loss.d_loss(D(real), D(fake))
                opt.zero_grad()
                loss.backward()
                opt.step()
            fake = G(torch.randn(16, s.config.z_dim, generator=gen))
            return s.loss.g_loss(D(fake)).item()

        h = 1e-7  # the surrogate bends fast (Adam steps): a small step, in float64
        numeric = (surrogate(h) - surrogate(-h)) / (2 * h)
        return float(sum((g * d).sum() for g, d in zip(grad, u))), numeric
    finally:
        torch.set_default_dtype(torch.float32)


def test_second_order_unrolling_gives_the_gradient_of_the_unrolled_surrogate(monkeypatch):
    analytic, numeric = _directional_derivatives(monkeypatch, order=2)
    assert analytic == pytest.approx(numeric, rel=1e-5)


def test_first_order_unrolling_omits_the_term_through_the_updates(monkeypatch):
    analytic, numeric = _directional_derivatives(monkeypatch, order=1)
    assert analytic != pytest.approx(numeric, rel=1e-2)


def test_the_last_grid_is_written_once_when_the_interval_divides_the_steps(tmp_path):
    """sample_interval 2, steps 4: grids at steps 2 and 4, each written once (the end of
    training does not write step 4's again)."""
    from gankit import api
    from gankit.training.loop import Trainer
    from gankit.training.state import build_state

    config = api.make_config("dcgan", data="digits", device="cpu", overrides=[
        "generator.width=8", "discriminator.width=8", "train.batch_size=16",
        "train.sample_interval=2"])
    ds = api.dataset_for(config)
    t = Trainer(build_state(config, api.data_info(ds), torch.device("cpu")), ds, tmp_path,
                progress=False)
    written = []
    grid = t.out.samples
    t.out.samples = lambda state, *a, **k: written.append(state.step) or grid(state, *a, **k)
    t.run(4)
    assert written == [2, 4]
    t.run(5)  # 5 is not a multiple of 2: the end of training writes it
    assert written == [2, 4, 5]
