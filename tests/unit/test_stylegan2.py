"""StyleGAN2 (Karras et al. 2020): equalised learning rate, demodulation, style mixing,
truncation, path length, lazy-regularisation optimiser settings and published layer sizes."""

import math

import pytest
import torch

from gankit.layers.equalized import EqualizedConv2d, EqualizedLinear, scaled_lrelu
from gankit.layers.modulated import modulated_conv2d
from gankit.models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from gankit.optimizers.adam import Adam
from gankit.regularizers.path_length import PathLength
from gankit.training.context import StepContext

SMALL = StyleGAN2Generator.test_options
LRELU_GROWTH = 2 * (0.5 + 0.5 * 0.2**2)  # E[(sqrt2 lrelu(x))^2] for x ~ N(0, 1): 1.04


@pytest.fixture(autouse=True)
def _single_thread():
    """Small tensors: one intra-op thread is faster, and immune to a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _g(shape=(1, 16, 16), **values):
    return StyleGAN2Generator(z_dim=8, out_shape=shape, **{**SMALL, **values})


# -- equalised learning rate -------------------------------------------------------------------
@pytest.mark.parametrize("lr_mul", [1.0, 0.01])
def test_one_equalized_layer_keeps_the_second_moment(lr_mul):
    """y = W x * lr_mul / sqrt(fan_in) with W ~ N(0, 1) / lr_mul: E[y^2] = E[x^2] for any
    fan-in (checked at 64 and 1024, unit-variance input)."""
    torch.manual_seed(0)
    for fan_in in (64, 1024):
        x = torch.randn(1024, fan_in)
        y = EqualizedLinear(fan_in, 256, lr_mul=lr_mul)(x)
        torch.testing.assert_close(y.square().mean().item(), 1.0, rtol=0.03, atol=0)
    x = torch.randn(32, 48, 20, 20)
    y = EqualizedConv2d(48, 64, 3)(x)[:, :, 1:-1, 1:-1]  # away from the zero padding
    torch.testing.assert_close(y.square().mean().item(), 1.0, rtol=0.03, atol=0)
    # the activation's gain: sqrt(2) LeakyReLU(0.2) takes N(0, 1) to second moment 1.04
    g = torch.randn(200_000)
    torch.testing.assert_close(scaled_lrelu(g).square().mean().item(), LRELU_GROWTH,
                               rtol=0.01, atol=0)


def test_a_fresh_equalized_stack_keeps_unit_scale():
    """Eight equalised layers with the scaled activation: every layer's pre-activations stay
    within 25 % of the 1.04^l growth of the activation gain (random weights make each layer's
    gain fluctuate by a few percent); unscaled N(0, 1) weights would grow 512x per layer."""
    torch.manual_seed(0)
    x = torch.randn(2048, 512)
    for i, layer in enumerate([EqualizedLinear(512, 512) for _ in range(8)]):
        x = layer(x if i == 0 else scaled_lrelu(x))
        m = x.square().mean().item()
        assert 0.75 * LRELU_GROWTH ** i < m < 1.25 * LRELU_GROWTH ** i, (i, m)
    x = torch.randn(64, 64, 16, 16)
    for i, layer in enumerate([EqualizedConv2d(64, 64, 3) for _ in range(4)]):
        x = layer(x if i == 0 else scaled_lrelu(x))
        m = x[:, :, 4:-4, 4:-4].square().mean().item()
        assert 0.75 * LRELU_GROWTH ** i < m < 1.25 * LRELU_GROWTH ** i, (i, m)


# -- demodulation ----------------------------------------------------------------------------
def test_demodulation_gives_unit_variance_per_output_channel():
    torch.manual_seed(0)
    x = torch.randn(64, 32, 12, 12)
    weight = torch.randn(16, 32, 3, 3) * 5.0  # any scale: demodulation removes it
    styles = torch.exp(torch.randn(64, 32))  # per-sample input-channel scales
    y = modulated_conv2d(x, weight, styles, demodulate=True)[:, :, 1:-1, 1:-1]
    var = y.transpose(0, 1).reshape(16, -1).var(dim=1)
    torch.testing.assert_close(var, torch.ones(16), rtol=0.1, atol=0)
    raw = modulated_conv2d(x, weight, styles, demodulate=False)[:, :, 1:-1, 1:-1]
    assert raw.var() > 10


def test_modulated_conv_equals_per_sample_weights():
    """Eq. 1-3 written out: each sample convolved with its own demodulated weights."""
    torch.manual_seed(0)
    x, weight, styles = torch.randn(3, 4, 6, 6), torch.randn(5, 4, 3, 3), torch.randn(3, 4)
    for n in range(3):
        w = weight * styles[n][None, :, None, None]
        w = w / (w.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8).sqrt()
        ref = torch.nn.functional.conv2d(x[n:n + 1], w, padding=1)
        torch.testing.assert_close(modulated_conv2d(x, weight, styles)[n:n + 1], ref,
                                   rtol=1e-5, atol=1e-5)


# -- style mixing, w_avg, truncation ----------------------------------------------------------
def _record_styles(G):
    """Hook every layer's affine map: returns {ws index: w it received}."""
    seen = {}

    def hook(index):
        return lambda module, args, out: seen.__setitem__(index, args[0].detach().clone())

    for i, layer in enumerate(G.convs):
        layer.conv.affine.register_forward_hook(hook(i))
    for b, rgb in enumerate(G.to_rgbs):
        rgb.conv.affine.register_forward_hook(hook(2 * b + 1 if b else -1))
    return seen


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_style_mixing_uses_w1_before_the_crossover_and_w2_after(seed):
    torch.manual_seed(0)
    G = _g((1, 32, 32), mixing_prob=1.0)
    seen = _record_styles(G)
    z = torch.randn(4, 8)
    G(z, noise_generator=torch.Generator().manual_seed(seed))
    gen = torch.Generator().manual_seed(seed)  # the draws, in the documented order
    torch.rand((), generator=gen)
    cut = int(torch.randint(1, G.num_ws, (), generator=gen))
    w1, w2 = G.mapping(z), G.mapping(torch.randn(4, 8, generator=gen))
    assert 1 <= cut < G.num_ws == 8
    for index in range(G.num_ws):
        torch.testing.assert_close(seen[index], w1 if index < cut else w2, rtol=0, atol=0)
    torch.testing.assert_close(seen[-1], w1, rtol=0, atol=0)  # the 4x4 toRGB shares ws[:, 1]


def test_no_mixing_in_eval_mode_or_at_probability_zero():
    torch.manual_seed(0)
    for G, mode in ((_g(mixing_prob=1.0), "eval"), (_g(mixing_prob=0.0), "train")):
        G.train(mode == "train")
        seen = _record_styles(G)
        z = torch.randn(3, 8)
        G(z)
        w = G.mapping(z)
        assert all(torch.equal(v, w) for v in seen.values())


def test_w_avg_tracks_the_mean_w_in_training_mode_only():
    torch.manual_seed(0)
    G = _g(w_avg_beta=0.9)
    z = torch.randn(6, 8)
    G.eval()
    G(z)
    assert torch.equal(G.w_avg, torch.zeros(16))
    G.train()
    G(z)
    torch.testing.assert_close(G.w_avg, 0.1 * G.mapping(z).mean(0), rtol=1e-6, atol=1e-7)


def test_truncation_psi_zero_is_one_image_and_psi_one_is_plain_sampling():
    torch.manual_seed(0)
    G = _g((3, 16, 16))
    G.train()
    for _ in range(3):  # a non-zero average w
        G(torch.randn(8, 8))
    G.eval()
    assert G.supports_truncation and G.w_avg.abs().sum() > 0
    z = torch.randn(5, 8)
    mean_image = G.truncated(z, None, 0.0)
    assert all(torch.equal(mean_image[0], img) for img in mean_image[1:])
    assert torch.equal(G.truncated(z, None, 1.0), G(z))
    half = G.truncated(z, None, 0.5)
    assert not torch.equal(half, G(z)) and not torch.equal(half, mean_image)
    with pytest.raises(ValueError, match="psi"):
        G.truncated(z, None, float("nan"))


def test_crossover_counts_the_styles_of_the_coarse_sides():
    G32, G28 = _g((1, 32, 32)), _g((1, 28, 28))  # ws: 4x4 conv, then 2 per side (+ toRGB)
    assert G32.num_ws == 8 and G28.num_ws == 6
    assert [G32.crossover(s) for s in (4, 8, 16, 32, 64)] == [1, 3, 5, 7, 7]
    assert [G28.crossover(s) for s in (4, 7, 8, 14, 28)] == [1, 1, 1, 3, 5]


def test_other_generators_refuse_truncation():
    from gankit.registry import GENERATORS

    G = GENERATORS.get("dcgan")(z_dim=8, out_shape=(1, 16, 16), width=8)
    assert not G.supports_truncation
    with pytest.raises(ValueError, match="no truncation"):
        G.truncated(torch.randn(2, 8), None, 0.5)


def test_eval_mode_noise_is_fixed_and_training_noise_follows_the_generator():
    torch.manual_seed(0)
    G = _g(mixing_prob=0.0)
    with torch.no_grad():
        for layer in G.convs:
            layer.noise_strength.fill_(0.5)
    z = torch.randn(2, 8)
    G.eval()
    assert torch.equal(G(z), G(z))
    G.train()
    a = G(z, noise_generator=torch.Generator().manual_seed(1))
    b = G(z, noise_generator=torch.Generator().manual_seed(1))
    c = G(z, noise_generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


# -- path length ------------------------------------------------------------------------------
def test_path_length_of_a_linear_synthesis_matches_the_hand_computed_value():
    """x = [[2a, 3b], [a + b, 0]] from ws = [[a], [b]] (2 layers, w_dim 1), y = 1: J^T y' =
    (2 + 1, 3 + 1) / sqrt(4) = (1.5, 2); length = sqrt((1.5^2 + 2^2) / 2) = sqrt(3.125)."""
    ws = torch.tensor([[[0.3], [-0.7]]], requires_grad=True)
    a, b = ws[0, 0, 0], ws[0, 1, 0]
    x = torch.stack([2 * a, 3 * b, a + b, 0 * a]).reshape(1, 1, 2, 2)
    length = PathLength.lengths(x, ws, torch.ones(1, 1, 2, 2))
    torch.testing.assert_close(length, torch.tensor([math.sqrt(3.125)]))
    reg = PathLength(weight=2.0, interval=4, decay=0.01)
    first = reg.penalty(length)
    mean = 0.01 * math.sqrt(3.125)  # a: 0 -> 0 + 0.01 (length - 0)
    torch.testing.assert_close(first.item(), 2 * 4 * (math.sqrt(3.125) - mean) ** 2)
    second = reg.penalty(torch.tensor([1.0, 3.0]))  # a -> a + 0.01 (2 - a)
    mean2 = mean + 0.01 * (2.0 - mean)
    torch.testing.assert_close(second.item(), 8 * ((1 - mean2) ** 2 + (3 - mean2) ** 2) / 2)
    restored = PathLength()
    restored.load_state_dict(reg.state_dict())
    torch.testing.assert_close(restored.mean.item(), mean2)


def test_path_length_on_a_stylegan2_generator_reaches_its_weights():
    torch.manual_seed(0)
    G = _g()
    fake = G(torch.randn(8, 8))
    ctx = StepContext(G, None, None, fake, None, None, torch.zeros(8), 0,
                      torch.Generator().manual_seed(0), phase="G")
    reg = PathLength()
    value = reg(ctx)
    assert value.dim() == 0 and torch.isfinite(value) and value > 0
    assert reg.mean > 0
    G.zero_grad()
    value.backward()
    assert G.convs[0].conv.weight.grad.abs().sum() > 0
    assert G.mapping_net[0].weight.grad.abs().sum() > 0


def test_path_length_refuses_a_generator_without_styles():
    from gankit.registry import GENERATORS

    G = GENERATORS.get("dcgan")(z_dim=8, out_shape=(1, 16, 16), width=8)
    ctx = StepContext(G, None, None, torch.zeros(2, 1, 16, 16), None, None, torch.zeros(2), 0,
                      torch.Generator(), phase="G")
    with pytest.raises(ValueError, match="stylegan2"):
        PathLength()(ctx)


# -- optimiser settings for lazy regularisation -----------------------------------------------
@pytest.mark.parametrize("interval", [4, 16])
def test_adam_lazy_interval_rescales_lr_and_betas(interval):
    c = interval / (interval + 1)
    opt = Adam(lr=0.0025, betas=(0.0, 0.99), lazy_interval=interval).build(
        [torch.nn.Parameter(torch.zeros(2))])
    group = opt.param_groups[0]
    assert group["lr"] == pytest.approx(0.0025 * c, rel=1e-12)
    assert group["betas"] == pytest.approx((0.0, 0.99 ** c), rel=1e-12)
    plain = Adam(lr=0.0025, betas=(0.5, 0.99)).build([torch.nn.Parameter(torch.zeros(2))])
    assert plain.param_groups[0]["lr"] == 0.0025
    assert plain.param_groups[0]["betas"] == (0.5, 0.99)


# -- shapes and published layer sizes ---------------------------------------------------------
def test_supported_shapes():
    for cls in (StyleGAN2Generator, StyleGAN2Discriminator):
        assert all(cls.supports(s) for s in [(1, 8, 8), (3, 32, 32), (1, 28, 28), (3, 256, 256)])
        assert not any(cls.supports(s) for s in [(2,), (3, 30, 30), (3, 32, 16), (1, 4, 4)])
    with pytest.raises(ValueError, match="data.resolution"):
        StyleGAN2Generator(z_dim=8, out_shape=(1, 30, 30))


def test_conditional_stylegan2_pair():
    torch.manual_seed(0)
    G = StyleGAN2Generator(z_dim=8, out_shape=(1, 16, 16), num_classes=3,
                           conditioning="concat", **SMALL)
    D = StyleGAN2Discriminator(in_shape=(1, 16, 16), num_classes=3, conditioning="projection",
                               **StyleGAN2Discriminator.test_options)
    c = torch.tensor([0, 1, 2, 0])
    out = D.score(G(torch.randn(4, 8), c), c)
    assert out["logits"].shape == (4,) and out["features"].shape == (4, 16)
    G.eval()
    z = torch.randn(1, 8).repeat(2, 1)
    a, b = G(z, torch.tensor([0, 1]))
    assert not torch.equal(a, b)


def test_layer_sizes_match_the_published_network_summary():
    """Parameter counts of the 1024x1024 networks as printed by NVlabs/stylegan2-ada-pytorch's
    train.py (``--cfg=auto``: 2 mapping layers, channel_base 32768, channel_max 512, w 512),
    quoted in a public training log: G total 28,794,124 (mapping.fc0 262,656;
    synthesis.b4.conv1 2,622,465; synthesis.b4.torgb 264,195; const 8,192), D total
    29,012,513 (b1024.fromrgb 128, b1024.conv0 9,248, b1024.conv1 18,496, b1024.skip 2,048).
    Config F's 8-layer mapping adds 6 x 262,656."""
    def count(m):
        return sum(p.numel() for p in m.parameters())

    torch.manual_seed(0)
    G = StyleGAN2Generator(z_dim=512, out_shape=(3, 1024, 1024), width=32, max_channels=512,
                           w_dim=512, mapping_layers=2)
    assert count(G) == 28_794_124
    assert count(G.mapping_net[0]) == 262_656
    assert count(G.convs[0]) == 2_622_465 and count(G.to_rgbs[0]) == 264_195
    assert G.const.numel() == 8_192
    del G
    D = StyleGAN2Discriminator(in_shape=(3, 1024, 1024), width=32, max_channels=512)
    assert count(D) == 29_012_513
    assert count(D.from_rgb) == 128
    block = D.blocks[0]
    assert (count(block.conv1), count(block.conv2), count(block.skip)) == (9_248, 18_496, 2_048)


def test_path_length_on_another_generator_is_refused_before_training():
    from gankit.config import resolve

    with pytest.raises(ValueError, match=r"^regularizers.path_length needs generator "
                       r"stylegan2, got 'dcgan'; remove regularizers.path_length or use "
                       r"generator=stylegan2$"):
        resolve("dcgan", ["regularizers.path_length.weight=2"])
