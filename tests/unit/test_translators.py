"""Image-to-image networks: shapes and scale factors, PixelShuffle against a hand-written
reshape, PatchGAN's receptive field, the two-domain wrapper and published sizes."""

import pytest
import torch
from torch import nn

from gankit.models.super_resolution import clip_straight_through
from gankit.models.translators import DiscriminatorPair, PatchGAN, TranslatorPair
from gankit.registry import DISCRIMINATORS, GENERATORS


def _params(net):
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("name,scale,opts", [
    ("srresnet", 2, {"width": 4, "blocks": 1}), ("srresnet", 4, {"width": 4, "blocks": 1}),
    ("srresnet", 8, {"width": 4, "blocks": 1}),
    ("rrdb", 2, {"width": 4, "blocks": 1, "growth": 2}),
    ("rrdb", 8, {"width": 4, "blocks": 1, "growth": 2}),
    ("unet", 1, {"width": 4}), ("resnet_translator", 1, {"width": 4, "blocks": 1})])
def test_translators_map_sources_to_targets_of_the_right_size(name, scale, opts):
    extra = {"scale": scale} if scale > 1 else {}
    G = GENERATORS.get(name)(out_shape=(3, 32, 32), in_shape=(1 + (scale > 1) * 2,
                                                              32 // scale, 32 // scale),
                             **opts, **extra)
    y = G(torch.randn(2, 1 + (scale > 1) * 2, 32 // scale, 32 // scale))
    assert y.shape == (2, 3, 32, 32) and y.abs().max() <= 1


def test_a_source_of_the_wrong_side_is_refused():
    with pytest.raises(ValueError, match="sources of side 16 do not give 32-pixel images at "
                                         "scale 4"):
        GENERATORS.get("srresnet")(out_shape=(3, 32, 32), in_shape=(3, 16, 16), scale=4)


def test_pixel_shuffle_equals_a_hand_written_reshape():
    x = torch.randn(2, 3 * 4, 5, 7)
    r = 2
    n, c4, h, w = x.shape
    c = c4 // r ** 2
    # out[n, c, h*r + i, w*r + j] = x[n, c*r*r + i*r + j, h, w]
    hand = x.view(n, c, r, r, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, c, h * r, w * r)
    assert torch.equal(nn.PixelShuffle(r)(x), hand)
    assert torch.equal(hand[0, 1, 3, 4], x[0, 1 * 4 + 1 * 2 + 0, 1, 2])


def test_clipping_passes_the_gradient_straight_through():
    x = torch.tensor([-3.0, 0.5, 2.0], requires_grad=True)
    y = clip_straight_through(x)
    assert y.tolist() == [-1.0, 0.5, 1.0]
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("n_layers,field", [(1, 16), (2, 34), (3, 70), (4, 142)])
def test_patchgan_receptive_field(n_layers, field):
    assert PatchGAN.receptive_field(n_layers) == field  # pix2pix appendix 6.1.2
    # measured: the logit at the centre depends on exactly a field x field input window
    side = 160
    D = PatchGAN(in_shape=(1, side, side), width=2, n_layers=n_layers, norm="none")
    x = torch.zeros(1, 1, side, side, requires_grad=True)
    logits = D(x)
    logits[0, logits.shape[1] // 2, logits.shape[2] // 2].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    assert int(rows.max() - rows.min() + 1) <= field  # inside the window (weights may vanish)
    assert int(rows.max() - rows.min() + 1) >= field - 2


def test_two_domain_wrappers_apply_each_network_to_its_half():
    torch.manual_seed(0)

    def make():
        return GENERATORS.get("resnet_translator")(out_shape=(1, 8, 8), width=2, blocks=1)

    G = TranslatorPair(make, split=1)
    a, b = torch.randn(3, 1, 8, 8), torch.randn(3, 1, 8, 8)
    out = G(torch.cat([a, b], 1))
    assert torch.equal(out[:, :1], G.first(a)) and torch.equal(out[:, 1:], G.second(b))
    back = G.reconstruct(out)  # [G_BA(G_AB(a)) | G_AB(G_BA(b))]
    assert torch.equal(back[:, :1], G.second(G.first(a)))
    assert torch.equal(back[:, 1:], G.first(G.second(b)))
    D = DiscriminatorPair(lambda: PatchGAN(in_shape=(1, 16, 16), width=2, n_layers=2), split=1)
    x = torch.randn(2, 2, 16, 16)
    logits = D(x)
    assert logits.shape == (2, 2, 2, 2)  # [N, h, w, domain]
    assert torch.equal(logits[..., 0], D.first(x[:, :1]))


# published parameter counts, each with its source
@pytest.mark.parametrize("build,count,source", [
    (lambda: GENERATORS.get("unet")(out_shape=(3, 256, 256)), 54_414_019,
     "pytorch-CycleGAN-and-pix2pix, unet_256 (network summary: 54.414 M)"),
    (lambda: DISCRIMINATORS.get("patchgan")(in_shape=(3, 256, 256),
                                             conditional_on_source=True), 2_768_705,
     "pytorch-CycleGAN-and-pix2pix, basic 70x70 D on 6 channels (2.769 M)"),
    (lambda: GENERATORS.get("resnet_translator")(out_shape=(3, 256, 256)), 11_378_179,
     "pytorch-CycleGAN-and-pix2pix, resnet_9blocks (11.378 M)"),
    (lambda: GENERATORS.get("rrdb")(out_shape=(3, 128, 128)), 16_697_987,
     "ESRGAN's RRDB_PSNR_x4 / BasicSR RRDBNet (16,697,987)"),
    (lambda: GENERATORS.get("srresnet")(out_shape=(3, 96, 96)), 1_548_547,
     "SRResNet x4, 16 blocks (the 1.5 M usually cited; BasicSR MSRResNet differs: no BN)"),
])
def test_published_sizes(build, count, source):
    assert _params(build()) == count, source


def test_the_image_pool_returns_stored_fakes_with_its_probability():
    from types import SimpleNamespace

    from gankit.hooks.image_pool import ImagePool

    pool = ImagePool(size=4, replace=0.5)
    state = SimpleNamespace(info=SimpleNamespace(domains=2),
                            generator=torch.Generator().manual_seed(0))
    pool.setup(state)
    first = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 2, 1, 1).contiguous()
    first[:, 1] += 100  # the second domain's images
    assert torch.equal(pool.prepare_fake(state, first), first)  # filling: used as they are
    # full: each new image is swapped for a stored one with probability 0.5, per domain
    swapped = 0
    for r in range(500):
        new = -1.0 - torch.arange(8.0).view(4, 2, 1, 1) - 8 * r  # every image unique
        out = pool.prepare_fake(state, new)
        swapped += int((out != new).sum())
        assert all(len(p) == 4 for p in pool.pools)
    rate = swapped / (500 * 8)
    assert abs(rate - 0.5) < 0.03  # 4000 draws: 3 sigma = 0.024
    # a resumed pool (state_dict) continues the same way from the same RNG state
    other = ImagePool(size=4, replace=0.5)
    other.setup(state)
    other.load_state_dict(pool.state_dict())
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    new = torch.randn(4, 2, 1, 1)
    a = pool.prepare_fake(SimpleNamespace(generator=g1), new)
    b = other.prepare_fake(SimpleNamespace(generator=g2), new)
    assert torch.equal(a, b)


def test_vgg19_matches_torchvision_layout_and_loads_its_state_dict(tmp_path, monkeypatch):
    from gankit.metrics.features.vgg import VGG19Extractor, vgg19_features

    net = vgg19_features()
    assert _params(net) == 20_024_384  # torchvision's vgg19().features
    state = {f"features.{k}": v for k, v in net.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(1)  # ignored
    torch.save(state, tmp_path / "vgg19-dcbb9e9d.pth")
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path))
    ext = VGG19Extractor()
    x = torch.rand(2, 1, 20, 20) * 2 - 1  # grey, small: RGB and upscaled to 32
    maps = ext.feature_maps(x)
    assert maps.shape == (2, 512, 2, 2) and (maps >= 0).all()  # after conv5_4's ReLU
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="VGG19 weights vgg19-dcbb9e9d.pth not found"):
        VGG19Extractor()


def test_perceptual_loss_falls_back_to_d_features_and_is_zero_at_the_target(monkeypatch,
                                                                           tmp_path, capsys):
    from gankit.regularizers.translation import Perceptual
    from gankit.training.context import StepContext

    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path))
    D = DISCRIMINATORS.get("patchgan")(in_shape=(1, 16, 16), width=4, n_layers=2)
    target = torch.randn(3, 1, 16, 16)
    reg = Perceptual(weight=2.0)

    def ctx(fake):
        out = D.score(fake)
        return StepContext(None, D, target, fake, None, None, out["logits"], 0,
                           torch.Generator(), phase="G", fake_out=out)

    D.eval()  # BatchNorm in eval mode: the same input gives the same features
    assert reg(ctx(target.clone())).item() == 0.0
    assert "uses D's own features" in capsys.readouterr().err
    fake = torch.randn(3, 1, 16, 16, requires_grad=True)
    value = reg(ctx(fake))
    expected = 2.0 * (D.score(fake)["features"] - D.score(target)["features"]).pow(2).mean()
    torch.testing.assert_close(value, expected)
    value.backward()
    assert fake.grad.abs().sum() > 0


def test_cycle_and_identity_terms_vanish_for_identity_generators_and_not_otherwise():
    from gankit.regularizers.translation import Cycle, Identity, Reconstruction
    from gankit.training.context import StepContext

    class Same(nn.Module):
        options = None

        def forward(self, x, c=None):
            return x * self.gain

        gain = 1.0

    G = TranslatorPair(Same, split=1)
    a, b = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)
    source, target = torch.cat([a, b], 1), torch.cat([b, a], 1)

    def ctx():
        return StepContext(G, None, target, G(source), None, None, None, 0,
                           torch.Generator(), phase="G", source=source)

    assert Cycle()(ctx()).item() == 0.0 and Identity()(ctx()).item() == 0.0
    Same.gain = 2.0  # now G doubles: the round trip gives 4x, the identity 2x
    expected_cycle = 10.0 * ((4 * a - a).abs().mean() + (4 * b - b).abs().mean())
    torch.testing.assert_close(Cycle()(ctx()), expected_cycle)
    expected_identity = 5.0 * ((2 * b - b).abs().mean() + (2 * a - a).abs().mean())
    torch.testing.assert_close(Identity()(ctx()), expected_identity)
    Same.gain = 1.0
    # pix2pix's L1: 100 * mean |G(source) - target|
    fake, tgt = torch.zeros(2, 1, 2, 2), torch.full((2, 1, 2, 2), 0.5)
    c = StepContext(None, None, tgt, fake, None, None, None, 0, torch.Generator(), phase="G")
    assert Reconstruction()(c).item() == pytest.approx(50.0)
    assert Reconstruction(norm="l2", weight=1.0)(c).item() == pytest.approx(0.25)


def test_a_full_resolution_resnet_translator_has_no_stride_two_levels():
    G = GENERATORS.get("resnet_translator")(out_shape=(3, 30, 30), in_shape=(1, 30, 30),
                                             width=4, blocks=1, downsample=0)
    # 7x7 conv 1->4 (196 + 4), one block of two 3x3 4->4 convs (2 x 148), 7x7 conv 4->3
    # (588 + 3); instance norm has no parameters
    assert _params(G) == 200 + 296 + 591
    assert G(torch.randn(2, 1, 30, 30)).shape == (2, 3, 30, 30)
    with pytest.raises(ValueError, match="downsample=2 needs an image side divisible by 4, "
                                         "got 30"):
        GENERATORS.get("resnet_translator")(out_shape=(3, 30, 30), width=4, blocks=1)
