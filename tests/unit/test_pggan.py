"""Progressive growing (Karras et al. 2018): the fade-in of G and D, the real images at each
level, the step schedule, pixel norm, the critic's pooling gradient, the drift term, the
growth hook and export at a fixed level."""

import math

import pytest
import torch

from gankit import export
from gankit.config import resolve
from gankit.hooks.growth import growth_at
from gankit.layers.pixelnorm import PixelNorm, pixel_norm
from gankit.losses.wasserstein import Wasserstein
from gankit.models.pggan import (
    PGGANDiscriminator,
    PGGANGenerator,
    downsample,
    real_images_at,
    upsample,
)
from gankit.training.state import DataInfo, build_state

SMALL = {"width": 4, "max_channels": 8}


def _g(side=16, channels=1, **kw):
    torch.manual_seed(0)
    return PGGANGenerator(z_dim=6, out_shape=(channels, side, side), **{**SMALL, **kw}).eval()


def _d(side=16, channels=1, **kw):
    torch.manual_seed(1)
    return PGGANDiscriminator(in_shape=(channels, side, side), **{**SMALL, **kw})


def _at(net, level, alpha, *inputs):
    net.set_growth(level, alpha)
    return net(*inputs)


# -- G's fade-in ------------------------------------------------------------------------------
def test_fade_in_at_alpha_0_is_the_upsampled_lower_resolution_output():
    G, z = _g(side=32), torch.randn(3, 6)
    with torch.no_grad():
        faded = _at(G, 2, 0.0, z)
        # level 1 (8x8) by hand: its block's toRGB, tanh, each pixel repeated 4x4 times
        low = torch.tanh(G.to_rgb[1](G.features(z, None, 1)))  # [3, 1, 8, 8]
        assert low.shape == (3, 1, 8, 8)
        torch.testing.assert_close(faded, low.repeat_interleave(4, 2).repeat_interleave(4, 3),
                                   rtol=0, atol=0)
        assert torch.equal(faded, _at(G, 1, 1.0, z))
        assert not torch.equal(faded, _at(G, 2, 1.0, z))


def test_fade_in_at_alpha_1_is_the_new_blocks_output():
    G, z = _g(side=32), torch.randn(3, 6)
    with torch.no_grad():
        out = _at(G, 2, 1.0, z)
        new = torch.tanh(G.to_rgb[2](G.blocks[1](G.features(z, None, 1))))  # [3, 1, 16, 16]
        assert new.shape == (3, 1, 16, 16)
        torch.testing.assert_close(out, new.repeat_interleave(2, 2).repeat_interleave(2, 3),
                                   rtol=0, atol=0)


def test_mid_fade_blends_the_two_toRGB_outputs_linearly():
    """Unbounded (no tanh): G(k, a) = (1 - a) G(k - 1, 1) + a G(k, 1), both at the target."""
    G, z = _g(side=16, bounded=False), torch.randn(4, 6)
    with torch.no_grad():
        low, high = _at(G, 1, 1.0, z), _at(G, 2, 1.0, z)
        torch.testing.assert_close(_at(G, 2, 0.25, z), 0.75 * low + 0.25 * high)
        assert not torch.allclose(low, high)


def test_output_is_block_constant_at_the_current_resolution():
    G, z = _g(side=32), torch.randn(2, 6)
    for level, block in ((0, 8), (1, 4), (2, 2), (3, 1)):
        x = _at(G, level, 1.0, z).detach()
        small = x[:, :, ::block, ::block]
        assert small.shape[-1] == 4 * 2 ** level
        torch.testing.assert_close(upsample(small, block), x, rtol=0, atol=0)
        assert G.resolution == 4 * 2 ** level


@pytest.mark.parametrize("level, alpha", [(0, 1.0), (1, 0.0), (1, 0.5), (2, 1.0)])
def test_gradients_reach_exactly_the_active_blocks(level, alpha):
    G, D = _g(side=16).train(), _d(side=16)
    G.set_growth(level, alpha)
    D.set_growth(level, alpha)
    D(G(torch.randn(4, 6))).sum().backward()
    for net, active in ((G, {"to_rgb.0"} if (level, alpha) in ((0, 1.0), (1, 0.0)) else
                         {"to_rgb.0", "to_rgb.1", "blocks.0"} if alpha < 1 else
                         {f"to_rgb.{level}"} | {f"blocks.{j}" for j in range(level)}),
                        (D, {"from_rgb.0"} if (level, alpha) in ((0, 1.0), (1, 0.0)) else
                         {"from_rgb.0", "from_rgb.1", "blocks.0"} if alpha < 1 else
                         {f"from_rgb.{level}"} | {f"blocks.{j}" for j in range(level)})):
        idle = net.idle_parameters()
        for name, p in net.named_parameters():
            grown = name.startswith(("to_rgb", "from_rgb", "blocks"))
            used = not grown or ".".join(name.split(".")[:2]) in active
            assert (name not in idle) == used, name
            assert (p.grad is not None) == used, name


# -- D ------------------------------------------------------------------------------------------
def test_discriminator_fade_in_blends_the_previous_fromRGB_path():
    D, x = _d(side=16), torch.randn(4, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(_at(D, 2, 0.0, x), _at(D, 1, 1.0, x))
        # at level 2, alpha a: h = (1 - a) fromRGB_1(pool(x)) + a block_2(fromRGB_2(x))
        D.set_growth(2, 0.3)
        h = 0.7 * D.from_rgb[1](downsample(x, 2)) + 0.3 * D.blocks[1](D.from_rgb[2](x))
        h = D.blocks[0](h)
        std = h.flatten(1).std(dim=0, unbiased=False).mean()  # one group of 4
        h = torch.cat([h, std.expand(4, 1, 4, 4)], dim=1)
        expected = D.out(D.dense(D.final_conv(h).flatten(1))).squeeze(1)
        torch.testing.assert_close(D(x), expected, rtol=1e-5, atol=1e-6)


def test_discriminator_average_pools_its_input_to_the_current_resolution():
    D, x = _d(side=16), torch.randn(3, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(_at(D, 1, 1.0, x), D(upsample(downsample(x, 2), 2)))


def test_critic_pool_gives_the_gradient_norm_at_the_current_resolution():
    """On block-constant images (G's outputs, the prepared reals), ||dD/dx|| at 16x16 equals
    the gradient norm with respect to the 8x8 pixels (plain average pooling: half of it),
    and G's gradient through the upsampling is exact."""
    D = _d(side=16, width=8)  # 8 channels at every level, as D8's
    D.set_growth(1, 1.0)
    y = torch.randn(4, 1, 8, 8, requires_grad=True)
    x = upsample(y, 2).detach().requires_grad_(True)
    (gx,) = torch.autograd.grad(D(x).sum(), x)
    (gy,) = torch.autograd.grad(D(upsample(y, 2)).sum(), y)
    torch.testing.assert_close(gx.flatten(1).norm(dim=1), gy.flatten(1).norm(dim=1))
    # the reference: a D built for 8x8 with the same weights, on y itself
    D8 = PGGANDiscriminator(in_shape=(1, 8, 8), **{**SMALL, "width": 8})
    shared = {k: v for k, v in D.state_dict().items()
              if not k.startswith(("from_rgb.2", "blocks.1", "growth"))}
    D8.load_state_dict({**D8.state_dict(), **shared})
    y8 = y.detach().requires_grad_(True)
    (g8,) = torch.autograd.grad(D8(y8).sum(), y8)
    torch.testing.assert_close(gy, g8)
    # plain average pooling's gradient would be a quarter per pixel, half the norm
    torch.testing.assert_close(gx[:, :, ::2, ::2], gy)
    assert gx[:, :, 1::2].abs().sum() == 0


# -- real images --------------------------------------------------------------------------------
def test_real_images_at_alpha_0_are_the_upsampled_downsampled_images():
    real = torch.randn(2, 3, 16, 16)
    # level 2 of 2 (16x16) at alpha 0: pooled to 8x8, then repeated back
    expected = real.reshape(2, 3, 8, 2, 8, 2).mean(dim=(3, 5))
    expected = expected.repeat_interleave(2, 2).repeat_interleave(2, 3)
    torch.testing.assert_close(real_images_at(real, 2, 0.0, 2), expected)
    assert torch.equal(real_images_at(real, 2, 1.0, 2), real)  # fully grown: untouched


def test_real_images_mid_fade_by_hand():
    real = torch.arange(16.0).reshape(1, 1, 4, 4).repeat(1, 1, 4, 4)  # [1, 1, 16, 16]
    # level 1 of 2 (8x8), alpha 0.25: x8 = pool2(real); low = up2(pool2(x8))
    x8 = real.reshape(1, 1, 8, 2, 8, 2).mean(dim=(3, 5))
    low = x8.reshape(1, 1, 4, 2, 4, 2).mean(dim=(3, 5)).repeat_interleave(2, 2) \
        .repeat_interleave(2, 3)
    expected = (0.75 * low + 0.25 * x8).repeat_interleave(2, 2).repeat_interleave(2, 3)
    torch.testing.assert_close(real_images_at(real, 1, 0.25, 2), expected)
    assert real_images_at(real, 1, 0.25, 2)[0, 0, 0, 0] == pytest.approx(
        0.75 * (0 + 1 + 4 + 5 + 2 + 3 + 6 + 7 + 8 + 9 + 12 + 13 + 10 + 11 + 14 + 15) / 16
        + 0.25 * (0 + 1 + 4 + 5) / 4)


# -- schedule -----------------------------------------------------------------------------------
@pytest.mark.parametrize("step, expected", [
    (0, (0, 1.0)), (9, (0, 1.0)),  # stabilise 4x4
    (10, (1, 0.0)), (15, (1, 0.5)), (19, (1, 0.9)),  # fade 8x8 in
    (20, (1, 1.0)), (29, (1, 1.0)),  # stabilise 8x8
    (30, (2, 0.0)), (37, (2, 0.7)), (40, (2, 1.0)),
    (50, (3, 0.0)), (55, (3, 0.5)), (60, (3, 1.0)), (10 ** 6, (3, 1.0))])
def test_schedule_at_phase_boundaries_and_mid_fade(step, expected):
    level, alpha = growth_at(step, 3, 10)
    assert level == expected[0] and alpha == pytest.approx(expected[1], abs=1e-12)


def test_growth_state_survives_state_dict_and_is_validated():
    G = _g(side=16)
    G.set_growth(2, 0.375)
    G2 = _g(side=16)
    assert (G2.level, G2.alpha) == (2, 1.0)  # built fully grown
    G2.load_state_dict(G.state_dict())
    assert (G2.level, G2.alpha) == (2, 0.375)
    for level, alpha, match in ((3, 1.0, "integer in 0..2"), (1, 1.5, r"\[0, 1\]"),
                                (0, 0.5, "no fade-in")):
        with pytest.raises(ValueError, match=match):
            G.set_growth(level, alpha)


# -- pixel norm and drift -----------------------------------------------------------------------
def test_pixel_norm_gives_unit_mean_square_per_pixel():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 3, 3) * torch.rand(2, 1, 3, 3) * 7  # every pixel its own scale
    y = PixelNorm()(x)
    torch.testing.assert_close(y.square().mean(dim=1), torch.ones(2, 3, 3))
    torch.testing.assert_close(pixel_norm(torch.tensor([[3.0, 4.0]])),
                               torch.tensor([[3.0, 4.0]]) / math.sqrt(12.5))


def test_wasserstein_drift_term_by_hand():
    real, fake = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.5, -1.0])
    # mean(fake) - mean(real) + 0.001 * mean(real^2) = -0.25 - 2 + 0.001 * 14 / 3
    assert float(Wasserstein(drift=0.001).d_loss(real, fake)) == pytest.approx(
        -2.25 + 0.014 / 3, abs=1e-7)
    assert float(Wasserstein().d_loss(real, fake)) == pytest.approx(-2.25)
    with pytest.raises(ValueError, match="drift"):
        Wasserstein(drift=-1.0)


# -- the hook -----------------------------------------------------------------------------------
def _state(overrides):
    config = resolve("pggan", ["generator.width=4", "generator.max_channels=8",
                               "discriminator.width=4", "discriminator.max_channels=8",
                               "hooks.growth.phase_steps=4", "train.batch_size=4", *overrides])
    return build_state(config, DataInfo((1, 16, 16), "image", 0), torch.device("cpu"))


def test_growth_hook_sets_g_d_and_g_ema_and_prepares_the_reals():
    state = _state([])
    hook = state.hooks["growth"]
    assert (state.G.level, state.D.level, state.G_ema.level) == (0, 0, 0)  # step 0
    state.step = 6  # fading 8x8 in, alpha 0.5
    real = torch.randn(4, 1, 16, 16)
    torch.testing.assert_close(hook.prepare_real(state, real), real_images_at(real, 1, 0.5, 2))
    for net in (state.G, state.D, state.G_ema):
        assert (net.level, net.alpha) == (1, 0.5)
        assert net.growth.tolist() == [1.0, 0.5]
    hook.after_g_step(state, 7)
    assert (state.G_ema.level, state.G_ema.alpha) == (1, 0.75)


def test_growth_hook_refuses_other_networks():
    config = resolve("dcgan", ["hooks.growth.phase_steps=4", "generator.width=8",
                               "discriminator.width=8"])
    with pytest.raises(ValueError, match="the generator is dcgan; use --set generator=pggan"):
        build_state(config, DataInfo((1, 16, 16), "image", 0), torch.device("cpu"))
    with pytest.raises(ValueError, match="hooks.growth needs pack 1"):
        _state(["pack=2"])


# -- export at a fixed level --------------------------------------------------------------------
def test_torchscript_export_keeps_the_current_level():
    G = _g(side=16, channels=3)
    G.set_growth(2, 0.5)
    data, diff = export.export_network(G, "torchscript", z_dim=6)
    assert diff is not None and diff <= export.TOLERANCE["torchscript"]
    z = torch.randn(3, 6)
    got = export.run_torchscript(data, (z,))
    with torch.no_grad():
        torch.testing.assert_close(got, G(z))
        assert not torch.allclose(got, _at(G, 2, 1.0, z))


# -- the published configuration ------------------------------------------------------------------
def test_the_papers_1024_networks_have_the_reported_parameter_count():
    """Karras et al. 2018, Table 2 (CelebA-HQ 1024x1024): G and D each have 23.1M trainable
    parameters; channels min(16384 / side, 512) are width 16 at 1024 doubled up to 512. The
    table lists the fully grown networks: the lower levels' toRGB / fromRGB are idle."""
    with torch.device("meta"):  # shapes only, no memory
        G = PGGANGenerator(z_dim=512, out_shape=(3, 1024, 1024), width=16, max_channels=512)
        D = PGGANDiscriminator(in_shape=(3, 1024, 1024), width=16, max_channels=512)
    for net in (G, D):
        idle = net.idle_parameters()
        active = sum(p.numel() for n, p in net.named_parameters() if n not in idle)
        assert round(active / 1e6, 1) == 23.1, type(net).__name__
