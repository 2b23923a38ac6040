"""The residual family: SNGAN's published CIFAR networks, self-attention, BigGAN's
orthogonal penalty, hierarchical latent and truncation trick, and the shape errors."""

import math

import pytest
import torch
from torch import nn

from gankit.layers.attention import SelfAttention
from gankit.models.dcgan import DCGANGenerator
from gankit.models.resnet import ResNetDiscriminator, ResNetGenerator
from gankit.regularizers.orthogonal import Orthogonal, orthogonal_weights
from gankit.sampling import truncate_latent
from gankit.training.context import StepContext


def _count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _biggan_g(**kw):
    opts = dict(width=2, conditioning="cbn", shared_embed_dim=8, hierarchical=True,
                num_classes=3, spectral_norm=True, init="ortho")
    return ResNetGenerator(z_dim=16, out_shape=(3, 32, 32), **{**opts, **kw})


# -- published configurations --------------------------------------------------------------
def test_sngan_cifar_resnet_has_the_parameter_count_of_its_layers():
    """SNGAN's CIFAR-10 ResNet (Miyato et al. 2018, table 4; the layer list of Mimicry's
    torch_mimicry/nets/sngan/sngan_32.py): no source here reports the count, so it is
    summed from the layers by hand. G: linear 128 -> 4*4*256, three up-blocks 256 -> 256
    (two BN, two 3x3 convs, a 1x1 shortcut), BN, 3x3 conv to RGB. D: optimised block
    3 -> 128, a down-block 128 -> 128 with a 1x1 shortcut, two blocks 128 -> 128 without
    one, linear 128 -> 1."""
    conv3, conv1, bn = 256 * 256 * 9 + 256, 256 * 256 + 256, 2 * 256
    g = (128 * 4096 + 4096) + 3 * (2 * bn + 2 * conv3 + conv1) + bn + (256 * 3 * 9 + 3)
    d_conv3, d_conv1 = 128 * 128 * 9 + 128, 128 * 128 + 128
    d = ((3 * 128 * 9 + 128) + d_conv3 + (3 * 128 + 128)) + (2 * d_conv3 + d_conv1) \
        + 2 * (2 * d_conv3) + (128 + 1)
    assert (g, d) == (4_276_739, 1_053_825)
    G = ResNetGenerator(z_dim=128, out_shape=(3, 32, 32), width=64)
    D = ResNetDiscriminator(in_shape=(3, 32, 32), width=64, multipliers=(2, 2, 2, 2),
                            last_side=8, spectral_norm=True)
    assert (_count(G), _count(D)) == (g, d)


# -- self-attention -------------------------------------------------------------------------
def test_attention_with_gamma_zero_is_the_identity_and_matches_the_formula_otherwise():
    torch.manual_seed(0)
    att, x = SelfAttention(16), torch.randn(2, 16, 8, 8)
    torch.testing.assert_close(att(x), x, rtol=0, atol=0)
    with torch.no_grad():
        att.gamma.fill_(0.7)
    # reference: softmax over the 16 pooled key positions of each query position
    f = att.query.weight.view(2, 16)
    q = torch.einsum("oc,nchw->nhwo", f, x).reshape(2, 64, 2)
    pool = nn.functional.max_pool2d
    k = pool(torch.einsum("oc,nchw->nohw", att.key.weight.view(2, 16), x), 2)
    v = pool(torch.einsum("oc,nchw->nohw", att.value.weight.view(8, 16), x), 2)
    k, v = k.reshape(2, 2, 16), v.reshape(2, 8, 16)
    beta = torch.softmax(torch.einsum("nqc,nck->nqk", q, k), dim=-1)  # [2, 64, 16]
    o = torch.einsum("nck,nqk->ncq", v, beta).reshape(2, 8, 8, 8)
    ref = x + 0.7 * torch.einsum("oc,nchw->nohw", att.out.weight.view(16, 8), o)
    torch.testing.assert_close(att(x), ref)


def test_attention_sits_after_the_chosen_blocks_and_bad_sides_are_refused():
    G = ResNetGenerator(z_dim=8, out_shape=(1, 32, 32), width=2, attention=(16, 32))
    assert sorted(G.attention.keys()) == ["16", "32"]
    D = ResNetDiscriminator(in_shape=(1, 32, 32), width=2, attention=(8,))
    assert sum(isinstance(m, SelfAttention) for m in D.modules()) == 1
    with pytest.raises(ValueError, match=r"generator.attention=\[64\].*choose among \[8, 16, 32\]"):
        ResNetGenerator(z_dim=8, out_shape=(1, 32, 32), width=2, attention=(64,))
    with pytest.raises(ValueError, match=r"discriminator.attention=\[32\].*\[16, 8, 4\]"):
        ResNetDiscriminator(in_shape=(1, 32, 32), width=2, attention=(32,))


# -- shapes and options ---------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, 48, 48), (3, 16, 16), (3, 512, 512), (3, 32, 64), (2,)])
def test_other_shapes_are_refused_with_the_fix(shape):
    with pytest.raises(ValueError, match="data.resolution=32"):
        ResNetGenerator(z_dim=8, out_shape=shape, width=2)
    with pytest.raises(ValueError, match="data.resolution=32"):
        ResNetDiscriminator(in_shape=shape, width=2)
    assert not ResNetGenerator.supports(shape) and not ResNetDiscriminator.supports(shape)


def test_images_have_one_or_three_channels_and_d_takes_packed_stacks():
    with pytest.raises(ValueError, match="C 1 or 3"):
        ResNetGenerator(z_dim=8, out_shape=(2, 32, 32), width=2)
    D = ResNetDiscriminator(in_shape=(2, 32, 32), width=2)  # pack=2 of grey images
    assert D(torch.randn(3, 2, 32, 32)).shape == (3,)


def test_hierarchical_latent_feeds_one_chunk_to_each_block():
    torch.manual_seed(0)
    G = _biggan_g(spectral_norm=False).eval()
    assert G.linear.in_features == 4  # 16 = 4 chunks of 4: the linear layer and 3 blocks
    z, c = torch.randn(2, 16), torch.tensor([0, 1])
    base = G(z, c)
    for chunk in range(4):  # each chunk changes the image
        z2 = z.clone()
        z2[:, 4 * chunk:4 * chunk + 4] += 1.0
        assert not torch.allclose(G(z2, c), base), chunk
    with pytest.raises(ValueError, match="z_dim=15 is not a multiple of 4"):
        ResNetGenerator(z_dim=15, out_shape=(3, 32, 32), width=2, hierarchical=True)
    with pytest.raises(ValueError, match="needs conditioning=cbn"):
        ResNetGenerator.Options(shared_embed_dim=8)


def test_biggan_spectral_norm_leaves_g_embeddings_alone():
    G = _biggan_g()
    names = [n for n, _ in G.named_parameters()]
    assert "shared.weight" in names  # a plain table
    assert "linear.parametrizations.weight.original" in names  # normalised


# -- orthogonal regularisation --------------------------------------------------------------
class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 3)
        self.conv = nn.Conv2d(1, 2, (1, 2))
        self.emb = nn.Embedding(3, 3)  # left out
        self.bn = nn.BatchNorm2d(2)  # 1-D parameters: left out
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0], [0.0, 1.0]]))
            self.conv.weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 1.0]]).view(2, 1, 1, 2))


def test_orthogonal_penalty_equals_the_hand_computed_value_and_gradient():
    # lin: W W^T = [[5, 11, 2], [11, 25, 4], [2, 4, 1]], off-diagonal squares 2 (121+4+16)
    # = 282; conv rows [1, 0], [1, 1]: W W^T = [[1, 1], [1, 2]], off-diagonal 2; total 284
    net = _Tiny()
    assert {id(p) for p in orthogonal_weights(net)} == {id(net.lin.weight), id(net.conv.weight)}
    reg = Orthogonal(beta=0.5, interval=2)
    ctx = StepContext(net, None, None, torch.zeros(1), None, None, torch.zeros(1), 0,
                      torch.Generator(), phase="G")
    value = reg(ctx)
    torch.testing.assert_close(value, torch.tensor(0.5 * 2 * 284.0))
    value.backward()
    # d/dW ||M||^2 = 4 M W with M = W W^T off the diagonal
    w = net.lin.weight.detach()
    m = torch.tensor([[0.0, 11, 2], [11, 0, 4], [2, 4, 0]])
    torch.testing.assert_close(net.lin.weight.grad, 0.5 * 2 * 4 * m @ w)
    assert net.emb.weight.grad is None and net.lin.bias.grad is None


def test_orthogonal_penalty_is_zero_for_orthogonal_rows():
    net = _Tiny()
    with torch.no_grad():
        net.lin.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 3.0], [0.0, 0.0]]))
        net.conv.weight.copy_(torch.tensor([[1.0, 1.0], [1.0, -1.0]]).view(2, 1, 1, 2))
    ctx = StepContext(net, None, None, torch.zeros(1), None, None, torch.zeros(1), 0,
                      torch.Generator(), phase="G")
    assert Orthogonal(beta=1.0)(ctx).item() == 0.0


# -- truncation -----------------------------------------------------------------------------
def test_truncated_latents_lie_within_psi_and_follow_the_truncated_normal():
    z = torch.randn(200_000, 1, generator=torch.Generator().manual_seed(0))
    psi = 0.5
    t = truncate_latent(z, psi)
    assert t.abs().max() <= psi
    inside = z.abs() <= psi
    torch.testing.assert_close(t[inside], z[inside], rtol=0, atol=0)  # kept as they are
    # Kolmogorov-Smirnov distance to N(0, 1) truncated to [-psi, psi]: about 1/sqrt(n)
    x = t.double().flatten().sort().values
    phi = torch.special.ndtr
    lo, hi = phi(torch.tensor(-psi, dtype=torch.float64)), phi(torch.tensor(psi,
                                                                          dtype=torch.float64))
    cdf = (phi(x) - lo) / (hi - lo)
    n = len(x)
    ks = torch.maximum(torch.arange(1, n + 1) / n - cdf, cdf - torch.arange(n) / n).max()
    assert ks < 0.005
    assert torch.equal(truncate_latent(z, 0), torch.zeros_like(z))
    with pytest.raises(ValueError, match="--truncation must be a finite number >= 0"):
        truncate_latent(z, -1)
    with pytest.raises(ValueError, match="--truncation must be a finite number >= 0"):
        truncate_latent(z, math.inf)


def test_psi_zero_gives_one_image_per_class():
    torch.manual_seed(0)
    G = _biggan_g().eval()
    assert G.supports_truncation
    z = torch.randn(6, 16)
    c = torch.tensor([0, 0, 0, 2, 2, 2])
    with torch.no_grad():
        x = G.truncated(z, c, 0.0)
        torch.testing.assert_close(x[:3], x[:1].expand(3, -1, -1, -1), rtol=0, atol=0)
        torch.testing.assert_close(x[3:], x[3:4].expand(3, -1, -1, -1), rtol=0, atol=0)
        assert not torch.equal(x[0], x[3])  # the class still matters
        assert not torch.equal(G.truncated(z, c, 1.0), G.truncated(z, c, 0.0))
        torch.testing.assert_close(G.truncated(z, c, 50.0), G(z, c))  # nothing beyond 50


def test_generators_without_the_trick_refuse_truncation():
    plain = ResNetGenerator(z_dim=8, out_shape=(1, 32, 32), width=2)
    assert not plain.supports_truncation
    with pytest.raises(ValueError, match="has no truncation trick; --truncation applies to "
                                         "biggan and stylegan2 runs"):
        plain.truncated(torch.randn(2, 8), None, 0.5)
    dcgan = DCGANGenerator(z_dim=8, out_shape=(1, 16, 16), width=4)
    assert not DCGANGenerator.supports_truncation
    with pytest.raises(ValueError, match=r"this generator \(dcgan\) has no truncation trick"):
        dcgan.truncated(torch.randn(2, 8), None, 0.5)


def test_the_loop_adds_the_orthogonal_penalty_to_gs_loss():
    """biggan's G step: loss/G with beta b is the hinge term plus b times the penalty of
    G's weights (same seed, so the same fakes and D)."""
    from gankit import api
    from gankit.regularizers.orthogonal import orthogonal_penalty
    from gankit.training.loop import Trainer
    from gankit.training.state import build_state

    def first_step(beta):
        cfg = api.make_config("biggan", data="digits", steps=1, overrides=[
            "data.resolution=32", "generator.width=2", "discriminator.width=2",
            "train.batch_size=4", "train.d_steps=1", "hooks.ema=null", "health.enabled=false",
            f"regularizers.orthogonal.beta={beta}"])
        ds = api.dataset_for(cfg)
        state = build_state(cfg, api.data_info(ds), torch.device("cpu"))
        penalty = orthogonal_penalty(orthogonal_weights(state.G)).item()
        trainer = Trainer(state, ds, None, progress=False)
        trainer.g_step(log=True)
        return float(trainer.last["loss/G"]), penalty

    plain, penalty = first_step(0.0)
    with_reg, _ = first_step(0.01)
    assert penalty > 0
    assert with_reg - plain == pytest.approx(0.01 * penalty, rel=1e-4)
