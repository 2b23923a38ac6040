"""The anti-collapse and stability toolbox (issue 4 §2) pinned at hand-computed values:
one-sided label smoothing, feature matching, instance noise, DiffAugment, PacGAN packing,
the unrolled critic and the minibatch layers."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from gankit import api
from gankit.augment.diffaugment import (
    DiffAugment,
    contrast,
    cutout_mask,
    saturation,
    translate,
)
from gankit.augment.instance_noise import InstanceNoise
from gankit.config import resolve
from gankit.data import BatchSampler
from gankit.data._sampler import epoch_seed
from gankit.layers.minibatch import MinibatchDiscrimination, MinibatchStdDev
from gankit.models._base import Discriminator, PackedDiscriminator
from gankit.registry import AUGMENTATIONS, DISCRIMINATORS, GENERATORS, LOSSES
from gankit.regularizers.feature_matching import FeatureMatching
from gankit.training import batches
from gankit.training.batches import BatchSource
from gankit.training.context import StepContext
from gankit.training.loop import Trainer
from gankit.training.state import DataInfo, build_networks, build_state
from gankit.training.unroll import UNROLL_OFFSET

F64 = torch.float64


# -- 1. one-sided label smoothing ----------------------------------------------------------
# real_logits = [0, 2], fake_logits = [-1, 2] as in test_losses.py; target t = 0.9:
# l = 0: 0.9 softplus(0) + 0.1 softplus(0) = 0.6931471806
# l = 2: 0.9 softplus(-2) + 0.1 softplus(2) = 0.9 * 0.1269280110 + 0.1 * 2.1269280110
#        = 0.3269280110
# real term = (0.6931471806 + 0.3269280110) / 2 = 0.5100375958
# fake term = (softplus(-1) + softplus(2)) / 2 = (0.3132616875 + 2.1269280110) / 2 = 1.2200948493
REAL = torch.tensor([0.0, 2.0], dtype=F64)
FAKE = torch.tensor([-1.0, 2.0], dtype=F64)
SMOOTHED_D = 0.5100375958 + 1.2200948493
G_LOSS = {"non_saturating": 0.7200948493, "minimax": -1.2200948493}  # unchanged by smoothing


@pytest.mark.parametrize("name", ["non_saturating", "minimax"])
def test_label_smoothing_pinned(name):
    loss = LOSSES.build(name, real_label=0.9)
    real = REAL.clone().requires_grad_(True)
    value = loss.d_loss(real, FAKE)
    assert_close(value, torch.tensor(SMOOTHED_D, dtype=F64))
    value.backward()  # d/dl of the real term: (sigmoid(l) - t) / N
    assert_close(real.grad, torch.tensor([(0.5 - 0.9) / 2, (0.8807970780 - 0.9) / 2],
                                         dtype=F64))
    assert_close(loss.g_loss(FAKE), torch.tensor(G_LOSS[name], dtype=F64))
    # t = 1 is the unsmoothed loss of test_losses.py, bit for bit
    assert torch.equal(LOSSES.build(name, real_label=1.0).d_loss(REAL, FAKE),
                       LOSSES.build(name).d_loss(REAL, FAKE))


@pytest.mark.parametrize("name", ["non_saturating", "minimax"])
def test_label_smoothing_is_stable_and_one_sided(name):
    loss = LOSSES.build(name, real_label=0.9)
    # real at +1e4: 0.1 * softplus(1e4) = 1000 (the price of confidence); fake at -1e4: 0
    assert_close(loss.d_loss(torch.tensor([1e4]), torch.tensor([-1e4])), torch.tensor(1000.0))
    assert torch.isfinite(loss.d_loss(torch.tensor([-1e4]), torch.tensor([1e4])))
    # fakes keep target 0: only the real term changes
    base = LOSSES.build(name)
    fake = torch.tensor([0.3, -2.0])
    real = torch.zeros(2)
    assert_close(loss.d_loss(real, fake) - F.softplus(fake).mean(),
                 base.d_loss(real, fake) - F.softplus(fake).mean())


def test_label_smoothing_through_set_and_its_errors():
    config = resolve("dcgan", ["loss.real_label=0.9"])
    assert config.loss.options == {"real_label": 0.9}
    assert resolve("gan", ["loss.real_label=0.8"]).loss.options["real_label"] == 0.8
    with pytest.raises(ValueError, match=r"loss.real_label must be in \(0.5, 1\]"):
        resolve("dcgan", ["loss.real_label=1.5"])
    with pytest.raises(ValueError, match="'hinge' takes no options"):
        resolve("sngan", ["loss.real_label=0.9"])  # hinge has no labels to smooth


# -- 2. feature matching ----------------------------------------------------------------------
def _fm_ctx(real_features, fake_features, phase="G"):
    return StepContext(None, None, None, None, None, None, None, 0, torch.Generator(),
                       phase=phase, real_out={"features": real_features},
                       fake_out={"features": fake_features})


def test_feature_matching_closed_form():
    # mean real [2, 3], mean fake [1, -1]: difference [1, 4], squared norm 17
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    fake = torch.tensor([[0.0, 0.0], [2.0, -2.0]], requires_grad=True)
    value = FeatureMatching(weight=0.5)(_fm_ctx(real, fake))
    assert_close(value, torch.tensor(8.5))
    value.backward()  # d/dfake_j = -2 * 0.5 * [1, 4] / 2 per row; real is detached
    assert_close(fake.grad, torch.tensor([[-0.5, -2.0], [-0.5, -2.0]]))
    assert real.grad is None
    assert_close(FeatureMatching(weight=0.5, interval=3)(_fm_ctx(real, fake)),
                 torch.tensor(25.5))
    assert FeatureMatching.phases == ("G",)


def test_unbiased_feature_matching_closed_form():
    # as above, 17 before the correction; per-dimension sample variances (B - 1) are all 2,
    # so each batch's tr(Cov)/B is 4 / 2 = 2: 17 - 2 - 2 = 13
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    fake = torch.tensor([[0.0, 0.0], [2.0, -2.0]], requires_grad=True)
    value = FeatureMatching(weight=0.5, unbiased=True)(_fm_ctx(real, fake))
    assert_close(value, torch.tensor(6.5))
    value.backward()  # mean part [-0.5, -2] per row, plus -0.5 * (f_j - mean_fake)
    assert_close(fake.grad, torch.tensor([[0.0, -2.5], [-1.0, -1.5]]))
    with pytest.raises(ValueError, match="batches of at least 2"):
        FeatureMatching(unbiased=True)(_fm_ctx(real[:1], fake))


def test_unbiased_feature_matching_is_zero_on_average_for_equal_distributions():
    # real and fake from N(0, I_3), batches of 4: the plain value averages
    # tr(I)/4 + tr(I)/4 = 1.5, the unbiased one 0
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(4000, 4, 3, generator=g), torch.randn(4000, 4, 3, generator=g)
    plain = torch.stack([FeatureMatching()(_fm_ctx(r, f)) for r, f in zip(real, fake)])
    unbiased = torch.stack([FeatureMatching(unbiased=True)(_fm_ctx(r, f))
                            for r, f in zip(real, fake)])
    assert abs(plain.mean().item() - 1.5) < 0.06
    assert abs(unbiased.mean().item()) < 0.06
    assert (unbiased < 0).any()


def test_feature_matching_gradient_reaches_g_only():
    torch.manual_seed(0)
    G = GENERATORS.get("mlp")(z_dim=3, out_shape=(2,), bounded=False, widths=(8,))
    D = DISCRIMINATORS.get("mlp")(in_shape=(2,), widths=(8, 8))
    real = torch.randn(6, 2, requires_grad=True)
    D.requires_grad_(False)  # as in the loop's G step
    fake = G(torch.randn(6, 3))
    ctx = StepContext(G, D, None, fake, None, None, None, 0, torch.Generator(), phase="G",
                      real_out=D.score(real), fake_out=D.score(fake))
    value = FeatureMatching()(ctx)
    assert value > 0
    value.backward()
    assert real.grad is None
    assert all(p.grad is None for p in D.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())


def test_feature_matching_in_the_loop_adds_to_g_loss():
    a, b = _trainer(), _trainer("regularizers.feature_matching.weight=1.0")
    for t in (a, b):
        t.d_step(0, log=False)
        t.g_step(log=True)
    fm = b.last["loss/G"] - a.last["loss/G"]
    assert fm > 0  # same seed, same batches: the difference is the feature-matching term
    assert not torch.equal(_params(a.state.G)[0], _params(b.state.G)[0])
    for p, q in zip(_params(a.state.D), _params(b.state.D)):
        assert torch.equal(p, q)  # D is untouched by G's regulariser
    with pytest.raises(ValueError, match="feature_matching.weight must be >= 0"):
        resolve("dcgan", ["regularizers.feature_matching.weight=-1"])


# -- 3. instance noise ------------------------------------------------------------------------
def test_instance_noise_schedule():
    aug = InstanceNoise(std=0.4, anneal_steps=10)
    assert [aug.sigma(s) for s in (0, 5, 10, 15)] == pytest.approx([0.4, 0.2, 0.0, 0.0])
    assert aug.sigma(7) == pytest.approx(0.4 * 0.3)
    assert InstanceNoise(std=0.4).sigma(10**6) == 0.4  # anneal_steps 0: constant


def test_instance_noise_draws_from_the_generator():
    aug = InstanceNoise(std=0.5, anneal_steps=10)
    x = torch.randn(4000, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    out = aug(x, 2, torch.Generator().manual_seed(0))
    expected = x + 0.4 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    assert_close(out, expected)  # sigma(2) = 0.5 * (1 - 2/10)
    noise = (out - x).double()
    assert_close(noise.mean(), torch.tensor(0.0, dtype=F64), atol=0.003, rtol=0)
    assert_close(noise.std(), torch.tensor(0.4, dtype=F64), atol=0.003, rtol=0)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(aug(x, 0, g1), aug(x, 0, g2))  # same state, same output
    assert not torch.equal(aug(x, 0, g1), aug(x, 0, torch.Generator().manual_seed(4)))


def test_instance_noise_is_zero_after_annealing_and_draws_nothing():
    aug = InstanceNoise(std=0.5, anneal_steps=10)
    x = torch.randn(8, 2)
    gen = torch.Generator().manual_seed(0)
    before = gen.get_state()
    for step in (10, 11, 1000):
        assert aug(x, step, gen) is x
    assert torch.equal(gen.get_state(), before)
    with pytest.raises(ValueError, match="std must be >= 0"):
        resolve("dcgan", ["augmentations.instance_noise.std=-0.1"])


# -- 4. DiffAugment ---------------------------------------------------------------------------
def test_translate_known_shift():
    x = torch.arange(1.0, 17.0).view(1, 1, 4, 4)
    out = translate(x, torch.tensor([1]), torch.tensor([-1]))  # out[i, j] = x[i + 1, j - 1]
    assert_close(out[0, 0], torch.tensor([[0.0, 5, 6, 7], [0, 9, 10, 11], [0, 13, 14, 15],
                                          [0, 0, 0, 0]]))


@pytest.mark.parametrize("side,max_shift", [(8, 1), (32, 4)])
def test_translation_draws_per_sample_shifts_up_to_an_eighth(side, max_shift):
    n = 64
    x = torch.arange(1.0, n * 2 * side * side + 1).view(n, 2, side, side)
    out = DiffAugment(policy="translation")(x, 0, torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(0)  # recompute the draws
    tx = torch.randint(-max_shift, max_shift + 1, (n,), generator=gen)
    ty = torch.randint(-max_shift, max_shift + 1, (n,), generator=gen)
    assert set(tx.tolist()) == set(range(-max_shift, max_shift + 1))
    expected = torch.zeros_like(x)
    for k in range(n):
        for i in range(side):
            for j in range(side):
                si, sj = i + int(tx[k]), j + int(ty[k])
                if 0 <= si < side and 0 <= sj < side:
                    expected[k, :, i, j] = x[k, :, si, sj]
    assert torch.equal(out, expected)


def test_cutout_zeroes_a_square_of_half_the_side():
    n, side = 200, 16
    x = torch.ones(n, 3, side, side)
    out = DiffAugment(policy="cutout")(x, 0, torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(0)
    cx = torch.randint(0, side + 1, (n,), generator=gen)  # centre, as the reference code
    cy = torch.randint(0, side + 1, (n,), generator=gen)
    zeros = (out == 0).sum(dim=(2, 3))  # [N, 3]
    assert torch.equal(zeros, zeros[:, :1].expand(n, 3))  # every channel alike
    inside = (cx >= 4) & (cx <= 12) & (cy >= 4) & (cy <= 12)  # square within the image
    assert inside.sum() > 20
    assert (zeros[inside, 0] == (side // 2) ** 2).all()
    assert (zeros[~inside, 0] < (side // 2) ** 2).all()
    k = int(inside.nonzero()[0])
    top, left = int(cx[k]) - 4, int(cy[k]) - 4
    assert (out[k, :, top:top + 8, left:left + 8] == 0).all()
    mask = cutout_mask(x[:1], torch.tensor([1]), torch.tensor([2]), (2, 3))
    assert mask[0, 0].nonzero().shape[0] == side * side - 6
    assert (mask[0, 0, 1:3, 2:5] == 0).all()


def test_brightness_shift_equals_the_drawn_value():
    # a grey constant image: saturation and contrast leave it unchanged, only the
    # brightness draw u (the first of the three per-sample draws) moves it, by u - 0.5
    x = torch.full((16, 3, 8, 8), 0.2, dtype=F64)
    out = DiffAugment(policy="color")(x, 0, torch.Generator().manual_seed(0))
    u = torch.rand(16, 1, 1, 1, generator=torch.Generator().manual_seed(0), dtype=F64)
    assert_close(out, x + (u - 0.5))
    assert out[:, 0, 0, 0].unique().numel() == 16  # per-sample parameters


def test_saturation_and_contrast_by_hand():
    x = torch.tensor([1.0, 3.0]).view(1, 2, 1, 1)  # channel mean 2; factor 2 * 0.25
    assert_close(saturation(x, torch.tensor(0.25)).flatten(), torch.tensor([1.5, 2.5]))
    y = torch.tensor([0.0, 4.0]).view(1, 1, 1, 2)  # image mean 2; factor 1.0 + 0.5
    assert_close(contrast(y, torch.tensor(1.0)).flatten(), torch.tensor([-1.0, 5.0]))


def test_diffaugment_is_differentiable():
    x = torch.randn(6, 3, 16, 16, requires_grad=True)
    out = DiffAugment()(x, 0, torch.Generator().manual_seed(0))
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # cutout alone: gradient 1 where the pixel survives, 0 where it was cut
    x.grad = None
    out = DiffAugment(policy="cutout")(x, 0, torch.Generator().manual_seed(0))
    out.sum().backward()
    assert torch.equal(x.grad, (out != 0).to(x.dtype))


def test_diffaugment_errors_on_points_and_bad_policy():
    with pytest.raises(ValueError, match=r"needs images \[N, C, H, W\].*\[8, 2\]"):
        DiffAugment()(torch.randn(8, 2), 0, torch.Generator())
    for bad in ("color,flip", "", "color,color"):
        with pytest.raises(ValueError, match="subset of color,translation,cutout"):
            DiffAugment(policy=bad)
    with pytest.raises(ValueError, match="diffaugment.policy"):
        resolve("dcgan", ["augmentations.diffaugment.policy=colour"])
    ops = resolve("dcgan", ["augmentations.diffaugment.policy=translation,color"])
    assert ops.augmentations == {"diffaugment": {"policy": "translation,color"}}


@pytest.mark.parametrize("name", AUGMENTATIONS.names())
def test_augmentation_contract(name):
    """Every registered augmentation: documented options, shape kept, finite, deterministic
    in the generator, stateless round trip."""
    cls = AUGMENTATIONS.get(name)
    assert dataclasses.is_dataclass(cls.Options)
    assert all(f.default is not dataclasses.MISSING for f in dataclasses.fields(cls.Options))
    aug = cls()
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    a = aug(x, 0, torch.Generator().manual_seed(5))
    b = aug(x, 0, torch.Generator().manual_seed(5))
    assert a.shape == x.shape and torch.isfinite(a).all() and torch.equal(a, b)
    assert not torch.equal(a, x)
    cls().load_state_dict(aug.state_dict())


# -- 5. PacGAN packing ----------------------------------------------------------------------
def test_packed_d_first_layer_sees_m_times_the_input():
    images = resolve("dcgan", ["pack=4", "discriminator.width=8", "generator.width=8"])
    _, D = build_networks(images, DataInfo((1, 8, 8), "image", 0))
    assert isinstance(D, PackedDiscriminator) and D.inner.body[0].in_channels == 4
    points = resolve("mixture_gan", ["pack=2", "discriminator.widths=[16]"])
    _, D = build_networks(points, DataInfo((2,), "points", 0))
    assert D.inner.body[1].linear.in_features == 4
    logits = D(torch.randn(10, 2))
    assert logits.shape == (5,)


class _ChannelProbe(Discriminator):
    """logits = the sum of the input, features = its per-channel means."""

    def score(self, x, c=None):
        return {"logits": x.sum(dim=(1, 2, 3)), "features": x.mean(dim=(2, 3))}


def test_packing_groups_consecutive_samples():
    v = 2.0 ** torch.arange(6.0)  # sample i is the constant image (v_i, -v_i) over 2 channels
    x = torch.stack([v, -v], dim=1).view(6, 2, 1, 1).expand(6, 2, 3, 3)
    out = PackedDiscriminator(_ChannelProbe(), 2).score(x)
    assert torch.equal(out["logits"], torch.zeros(3))  # each sample sums to 0 ...
    assert torch.equal(out["features"], torch.tensor(  # ... and packs (0,1), (2,3), (4,5)
        [[1.0, -1, 2, -2], [4, -4, 8, -8], [16, -16, 32, -32]]))
    y = torch.stack([v, v], dim=1).view(6, 2, 1, 1)
    assert torch.equal(PackedDiscriminator(_ChannelProbe(), 3)(y), torch.tensor([14.0, 112.0]))


def test_packing_needs_a_divisible_batch():
    with pytest.raises(ValueError, match=r"divisible by pack=2, got 5"):
        PackedDiscriminator(_ChannelProbe(), 2)(torch.ones(5, 1, 2, 2))
    with pytest.raises(ValueError, match=r"pack must be >= 1 and divide train.batch_size \(64\)"):
        resolve("dcgan", ["pack=3"])


# -- 6. unrolled discriminator --------------------------------------------------------------
def _trainer(*overrides, preset="mixture_gan"):
    sets = ["generator.widths=[16,16]", "discriminator.widths=[16,16]",
            "train.batch_size=16", *overrides]
    config = api.make_config(preset, data="ring", device="cpu", overrides=sets)
    ds = api.dataset_for(config)
    state = build_state(config, api.data_info(ds), torch.device("cpu"))
    return Trainer(state, ds, None, progress=False)


def _params(net):
    return [p.detach().clone() for p in net.parameters()]


def _opt_state(opt):
    return {i: {k: v.clone() for k, v in s.items()} for i, s in enumerate(opt.state.values())}


def test_unrolling_moves_a_copy_not_d():
    t = _trainer("train.unrolled_steps=3", "train.unrolled_order=1")
    t.d_step(0, log=False)
    D_before = _params(t.state.D)
    copies = []
    original = t.unroller.critic
    t.unroller.critic = lambda trainer: copies.append(original(trainer)) or copies[-1]
    t.g_step(log=False)
    assert len(copies) == 1 and copies[0][0] is not t.state.D
    for before, now, moved in zip(D_before, _params(t.state.D), _params(copies[0][0])):
        assert torch.equal(before, now)  # the real D is unchanged ...
        assert not torch.equal(before, moved)  # ... the copy took 3 steps


def test_unrolling_leaves_d_optimizer_state_and_g_statistics_unchanged():
    # the copy's optimiser must not share state tensors with state.d_opt, and the copy's
    # extra batches must not move G's BatchNorm running statistics
    t = _trainer("train.unrolled_steps=2", "train.unrolled_order=1")
    t.d_step(0, log=False)
    before = _opt_state(t.state.d_opt)
    t.state.G.requires_grad_(False)  # isolate: only the unrolling could touch G's buffers
    buffers = [b.clone() for b in t.state.G.buffers()]
    D, _ = t.unroller.critic(t)
    after = _opt_state(t.state.d_opt)
    for i in before:
        for k in before[i]:
            assert torch.equal(before[i][k], after[i][k]), (i, k)
    for b, now in zip(buffers, t.state.G.buffers()):
        assert torch.equal(b, now)


def test_weight_clipping_holds_for_the_unrolled_copy():
    # a large RMSprop step moves weights far past c = 0.01; the copy must be clamped after
    # each of its updates, as the real critic is
    t = _trainer("train.unrolled_steps=2", "train.unrolled_order=1", "d_optimizer.lr=0.5",
                 "hooks.weight_clip.clip=0.01")
    t.d_step(0, log=False)
    c = torch.tensor(0.01).item()  # 0.01 in float32
    assert max(p.abs().max().item() for p in t.state.D.parameters()) == c
    D, _ = t.unroller.critic(t)
    assert max(p.abs().max().item() for p in D.parameters()) == c
    unclipped = _trainer("train.unrolled_steps=2", "train.unrolled_order=1", "d_optimizer.lr=0.5")
    D, _ = unclipped.unroller.critic(unclipped)
    assert max(p.abs().max().item() for p in D.parameters()) > 0.1


def test_unrolling_changes_g_update_not_the_main_data_stream(monkeypatch):
    seen = {}
    original = BatchSource.batch

    def recording(self, data_step, step):
        real, labels = original(self, data_step, step)
        seen.setdefault(id(self), []).append((data_step, real))
        return real, labels

    monkeypatch.setattr(BatchSource, "batch", recording)
    plain, unrolled = _trainer(), _trainer("train.unrolled_steps=2")
    for t in (plain, unrolled):
        for step in range(3):
            t.d_step(step, log=False)
            t.g_step(log=False)
    seen = {t.state.config.train.unrolled_steps: seen[id(t.batches)] for t in (plain, unrolled)}
    assert not torch.equal(_params(plain.state.G)[0], _params(unrolled.state.G)[0])
    offset = UNROLL_OFFSET
    main = [(s, r) for s, r in seen[2] if s < offset]
    extra = [s for s, _ in seen[2] if s >= offset]
    assert [s for s, _ in main] == [s for s, _ in seen[0]] == [0, 1, 2]
    for (_, a), (_, b) in zip(main, seen[0]):
        assert torch.equal(a, b)  # the main D sees the same real batches
    assert extra == [offset + 0, offset + 1, offset + 2, offset + 3, offset + 4, offset + 5]


# -- 7. minibatch discrimination and minibatch stddev ------------------------------------------
def test_minibatch_stddev_by_hand():
    f = torch.tensor([[1.0, 2.0], [3.0, 6.0], [5.0, 4.0], [3.0, 10.0]], dtype=F64)
    out = MinibatchStdDev(group_size=2)(f)
    # groups are samples {0, 2} and {1, 3} (sample i in group i % 2, as ProGAN):
    # {0, 2}: per-feature std (biased) [2, 1] -> mean 1.5; {1, 3}: [0, 2] -> mean 1.0
    g0 = (math.sqrt(4 + 1e-8) + math.sqrt(1 + 1e-8)) / 2
    g1 = (math.sqrt(0 + 1e-8) + math.sqrt(4 + 1e-8)) / 2
    assert_close(out, torch.cat([f, torch.tensor([[g0], [g1], [g0], [g1]], dtype=F64)], 1))
    # 3 samples do not split into groups of 2: one group, the whole batch
    f3 = torch.tensor([[0.0], [3.0], [6.0]], dtype=F64)  # std sqrt(6)
    assert_close(MinibatchStdDev(2)(f3)[:, 1], torch.full((3,), math.sqrt(6 + 1e-8), dtype=F64))


def test_minibatch_discrimination_by_hand():
    layer = MinibatchDiscrimination(2, num_kernels=2, kernel_dim=2).double()
    with torch.no_grad():  # kernel 0: M = f; kernel 1: M = (2 f_0, 0)
        layer.T.copy_(torch.tensor([[1.0, 0.0, 2.0, 0.0], [0.0, 1.0, 0.0, 0.0]]))
    f = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]], dtype=F64)
    # kernel 0 L1 distances: d01 = 1, d02 = 2, d12 = 3; kernel 1: d01 = 2, d02 = 0, d12 = 2
    e = math.exp
    o = torch.tensor([[1 + e(-1) + e(-2), 1 + e(-2) + 1],
                      [1 + e(-1) + e(-3), 1 + e(-2) + e(-2)],
                      [1 + e(-2) + e(-3), 1 + 1 + e(-2)]], dtype=F64)
    assert_close(layer(f), torch.cat([f, o], 1))
    # identical samples see each other fully (o = 2), far-apart ones only themselves (o = 1)
    same = layer(torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=F64))[:, 2:]
    apart = layer(torch.tensor([[0.0, 0.0], [100.0, -100.0]], dtype=F64))[:, 2:]
    assert_close(same, torch.full((2, 2), 2.0, dtype=F64))
    assert_close(apart, torch.ones(2, 2, dtype=F64))


def test_minibatch_layers_through_set():
    config = resolve("dcgan", ["discriminator.minibatch_discrimination=4",
                               "discriminator.minibatch_stddev=2", "discriminator.width=8"])
    _, D = build_networks(config, DataInfo((1, 8, 8), "image", 0))
    kinds = [type(m) for m in D.batch_layers]
    assert kinds == [MinibatchDiscrimination, MinibatchStdDev]
    assert D.head.in_features == D.batch_layers[0].T.shape[0] + 4 + 1
    assert isinstance(D.head, nn.Linear)


def test_linear_lr_decay_factor_by_hand():
    from types import SimpleNamespace

    from gankit.training.schedule import lr_factor

    t = SimpleNamespace(lr_decay="linear", lr_decay_start=0.5, steps=10)
    # full rate for steps 0..4, then (10 - s) / 5: 1.0, 0.8, 0.6, 0.4, 0.2
    assert [lr_factor(s, t) for s in range(10)] == [1, 1, 1, 1, 1, 1.0, 0.8, 0.6, 0.4, 0.2]
    t0 = SimpleNamespace(lr_decay="linear", lr_decay_start=0.0, steps=4)
    assert [lr_factor(s, t0) for s in range(4)] == [1.0, 0.75, 0.5, 0.25]
    off = SimpleNamespace(lr_decay="none", lr_decay_start=0.5, steps=10)
    assert {lr_factor(s, off) for s in range(10)} == {1.0}


# -- train.batch_schedule ----------------------------------------------------------------------
def _record_batch_sizes(trainer):
    """Wrap D.score and G's forward to log (phase, step, batch) for every call."""
    seen = []
    s = trainer.state
    score, gen = s.D.score, s.G.forward

    def d_score(x, c=None):
        seen.append(("D", s.step, x.shape[0]))
        return score(x, c)

    def g_forward(z, c=None):
        seen.append(("G", s.step, z.shape[0]))
        return gen(z, c)

    s.D.score, s.G.forward = d_score, g_forward
    return seen


def test_batch_schedule_changes_the_batch_at_the_given_steps():
    t = _trainer("train.batch_schedule=[[3, 32], [5, 8]]")
    seen = _record_batch_sizes(t)
    t.run(7)
    seen = [e for e in seen if e[1] < 7]  # not the health monitor's and sample grid's calls
    expected = {0: 16, 1: 16, 2: 16, 3: 32, 4: 32, 5: 8, 6: 8}
    assert {step for _, step, _ in seen} == set(expected)
    for phase, step, size in seen:
        assert size == expected[step], (phase, step, size)
    # per step D scores a real and a fake batch in its update and a fake one in G's, and G
    # draws one batch for D's update and one for its own
    assert sum(p == "D" for p, _, _ in seen) == 3 * 7
    assert sum(p == "G" for p, _, _ in seen) == 2 * 7


def test_batch_schedule_leaves_the_steps_before_it_bitwise_unchanged():
    plain, later = _trainer(), _trainer("train.batch_schedule=[[50, 32]]")
    plain.run(4)
    later.run(4)
    for a, b in zip(_params(plain.state.G) + _params(plain.state.D),
                    _params(later.state.G) + _params(later.state.D)):
        assert torch.equal(a, b)


def test_batch_schedule_stage_draws_its_own_data_order():
    """From its first step a stage reads batches of its own size from its own seeded
    permutation, starting at the permutation's beginning."""
    t = _trainer("train.batch_schedule=[[2, 24]]", "train.seed=5")
    real, _ = t.batches.batch(2, 2)  # D update 2, at G step 2: the stage's first batch
    expected = BatchSampler(len(t.batches.x), 24, epoch_seed(5, batches._STAGE_SEED + 1))
    assert torch.equal(real, t.batches.x[expected.indices(0)])
    first_stage = BatchSampler(len(t.batches.x), 16, 5)
    assert torch.equal(t.batches.batch(1, 1)[0], t.batches.x[first_stage.indices(1)])


@pytest.mark.parametrize("schedule, message", [
    ("[[0, 32]]", "steps >= 1 in increasing order"),
    ("[[10, 32], [5, 64]]", "steps >= 1 in increasing order"),
    ("[[10, 32], [10, 64]]", "steps >= 1 in increasing order"),
    ("[[10, 0]]", "the batch size 0 from step 10"),
])
def test_batch_schedule_rejects_bad_schedules(schedule, message):
    with pytest.raises(ValueError, match=message):
        resolve("dcgan", [f"train.batch_schedule={schedule}"])
    with pytest.raises(ValueError, match=r"batch size 30 from step 10 must be >= 1 and a multiple "
                                         r"of pack \(4\)"):
        resolve("dcgan", ["pack=4", "train.batch_schedule=[[10, 30]]"])


def test_batch_schedule_larger_than_the_dataset_is_refused_before_training():
    with pytest.raises(ValueError, match=r"batch size 200000 from step 3 is larger than the "
                                         r"dataset \(100000 samples\); use sizes <= 100000"):
        _trainer("train.batch_schedule=[[3, 200000]]")
