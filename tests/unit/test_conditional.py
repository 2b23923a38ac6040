"""Class conditioning: cGAN concat, conditional BatchNorm, projection D, ACGAN head and loss,
conditional sampling and the conditioning-accuracy helper."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gankit import api
from gankit.conditional_eval import conditioning_accuracy
from gankit.config import resolve
from gankit.layers.conditioning import ConditionalBatchNorm
from gankit.registry import DISCRIMINATORS, GENERATORS, REGULARIZERS
from gankit.training.context import StepContext
from gankit.training.state import DataInfo, build_networks

K = 10
# every registered network, on the first two candidate shapes its class `supports`, built
# with its class's small `test_options`
CANDIDATE_SHAPES = [(2,), (3, 28, 28), (1, 16, 16), (1, 8, 8), (1, 32, 32)]
FAMILY_SHAPES = [(name, shape) for name in GENERATORS.names()
                 if getattr(GENERATORS.get(name), "takes", "latent") == "latent"
                 for shape in [s for s in CANDIDATE_SHAPES
                               if GENERATORS.get(name).supports(s)][:2]]


def _g(name, shape, mode, **kw):
    cls = GENERATORS.get(name)
    return cls(z_dim=6, out_shape=shape, bounded=len(shape) == 3, num_classes=K,
               conditioning=mode, **{**cls.test_options, **kw})


def _d(name, shape, mode, **kw):
    cls = DISCRIMINATORS.get(name)
    return cls(in_shape=shape, num_classes=K, conditioning=mode, **{**cls.test_options, **kw})


@torch.no_grad()
def _spread_class_norms(G):
    """Move every class's CBN gain and bias away from the shared initial 1 and 0."""
    for m in G.modules():
        if isinstance(m, ConditionalBatchNorm):
            m.gamma.weight.add_(0.5 * torch.randn_like(m.gamma.weight))
            m.beta.weight.add_(0.5 * torch.randn_like(m.beta.weight))


# -- shapes, gradients, labels matter --------------------------------------------------------
@pytest.mark.parametrize("name,shape", FAMILY_SHAPES)
@pytest.mark.parametrize("mode,embed_dim", [("concat", 0), ("concat", 5), ("cbn", 0)])
def test_generator_modes_shapes_gradients_and_label_dependence(name, shape, mode, embed_dim):
    if mode not in GENERATORS.get(name).conditioning_modes():
        pytest.skip(f"generator {name} has no {mode} conditioning")
    torch.manual_seed(0)
    G = _g(name, shape, mode, embed_dim=embed_dim)
    assert G.conditional
    z = torch.randn(6, 6)
    c = torch.tensor([0, 1, 2, 3, 8, 9])
    x = G(z, c)
    assert x.shape == (6, *shape) and torch.isfinite(x).all()
    x.square().mean().backward()
    idle = G.idle_parameters()  # e.g. a progressively grown G's other resolutions
    assert all(p.grad is not None and torch.isfinite(p.grad).all()
               for n, p in G.named_parameters() if n not in idle)
    _spread_class_norms(G)  # at initialisation every class has gain 1 and bias 0
    G.eval()  # the same z with another label gives another sample
    with torch.no_grad():
        assert not torch.allclose(G(z, c), G(z, (c + 1) % K))
        # without labels a conditional G cycles through the classes (no random draw)
        torch.testing.assert_close(G(z), G(z, torch.arange(6) % K))


@pytest.mark.parametrize("name,shape", FAMILY_SHAPES)
@pytest.mark.parametrize("mode", ["concat", "projection", "acgan"])
@pytest.mark.parametrize("sn", [False, True])
def test_discriminator_modes_shapes_gradients_and_label_dependence(name, shape, mode, sn):
    torch.manual_seed(0)
    D = _d(name, shape, mode, spectral_norm=sn, embed_dim=3 if mode == "concat" else 0)
    assert D.conditional
    x, c = torch.randn(4, *shape), torch.tensor([0, 1, 2, 9])
    out = D.score(x, c)
    assert out["logits"].shape == (4,) and out["features"].dim() == 2
    loss = out["logits"].sum()
    if mode == "acgan":
        assert out["class_logits"].shape == (4, K)
        loss = loss + out["class_logits"].sum()
    else:
        assert "class_logits" not in out
    loss.backward()
    idle = D.idle_parameters()
    assert all(p.grad is not None for n, p in D.named_parameters()
               if p.requires_grad and n not in idle)
    D.eval()
    with torch.no_grad():
        other = D.score(x, (c + 1) % K)
        if mode == "acgan":  # the adversarial logits do not see c; the class head is there
            torch.testing.assert_close(other["logits"], D(x, c))
        else:
            assert not torch.allclose(other["logits"], D(x, c))
    if sn:  # spectral norm covers the new embedding and linear layers
        new = [m for m in D.cond.modules() if isinstance(m, (nn.Embedding, nn.Linear))]
        assert new and all(hasattr(m, "parametrizations") for m in new)


def test_concat_discriminator_sees_one_hot_maps_on_images():
    torch.manual_seed(0)
    D = _d("dcgan", (1, 16, 16), "concat")
    x, c = torch.randn(3, 1, 16, 16), torch.tensor([4, 0, 9])
    attached = D.cond.attach(x, c)  # [3, 1 + K, 16, 16]
    assert attached.shape == (3, 1 + K, 16, 16)
    torch.testing.assert_close(attached[:, 0], x[:, 0])
    torch.testing.assert_close(attached[:, 1:, 5, 7], F.one_hot(c, K).float())
    flat = _d("mlp", (1, 8, 8), "concat").cond.attach(torch.randn(3, 1, 8, 8), c)
    assert flat.shape == (3, 64 + K)
    torch.testing.assert_close(flat[:, 64:], F.one_hot(c, K).float())


# -- pinned numbers ----------------------------------------------------------------------------
def test_projection_logits_equal_linear_part_plus_embedding_inner_product():
    D = DISCRIMINATORS.get("mlp")(in_shape=(2,), widths=(3,), num_classes=2,
                                  conditioning="projection")
    with torch.no_grad():
        layer = D.body[1]
        layer.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        layer.bias.zero_()
        D.head.weight.copy_(torch.tensor([[1.0, -1.0, 0.5]]))
        D.head.bias.fill_(0.25)
        D.cond.embed.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 1.0]]))
    x = torch.tensor([[1.0, -2.0], [1.0, -2.0]])
    # phi(x) = LeakyReLU_0.2([1, -2, -1]) = [1, -0.4, -0.2]; linear part 1 + 0.4 - 0.1 + 0.25
    # = 1.55; <embed(0), phi> = 1 - 0.8 - 0.6 = -0.4; <embed(1), phi> = -1 - 0.2 = -1.2
    out = D.score(x, torch.tensor([0, 1]))
    torch.testing.assert_close(out["features"][0], torch.tensor([1.0, -0.4, -0.2]))
    torch.testing.assert_close(out["logits"], torch.tensor([1.15, 0.35]))


def test_conditional_batchnorm_picks_gain_and_bias_by_class():
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm(3, num_classes=4, dims=2)
    bn = nn.BatchNorm2d(3, affine=False)
    x = torch.randn(5, 3, 2, 2)
    torch.testing.assert_close(cbn(x, torch.zeros(5, dtype=torch.long)), bn(x))  # at init
    with torch.no_grad():
        cbn.gamma.weight.copy_(torch.arange(12.0).view(4, 3))
        cbn.beta.weight.copy_(-torch.arange(12.0).view(4, 3))
    c = torch.tensor([0, 1, 2, 3, 1])
    want = (torch.arange(12.0).view(4, 3)[c].view(5, 3, 1, 1) * bn(x)
            - torch.arange(12.0).view(4, 3)[c].view(5, 3, 1, 1))
    torch.testing.assert_close(cbn(x, c), want)


@pytest.mark.parametrize("name,shape", [("mlp", (1, 8, 8)), ("dcgan", (1, 16, 16))])
def test_cbn_generator_per_class_parameters_get_gradient_only_from_their_class(name, shape):
    torch.manual_seed(0)
    G = _g(name, shape, "cbn")
    G.eval()  # running statistics: samples do not interact through the batch
    _spread_class_norms(G)
    z = torch.randn(1, 6).repeat(2, 1)
    a, b = G(z, torch.tensor([2, 7]))
    assert not torch.allclose(a, b)  # two classes, same z, different samples
    G(z, torch.tensor([2, 2])).sum().backward()
    cbns = [m for m in G.modules() if isinstance(m, ConditionalBatchNorm)]
    assert cbns
    for m in cbns:
        for emb in (m.gamma, m.beta):
            rows = emb.weight.grad.abs().sum(1)
            assert rows[2] > 0 and torch.all(rows[torch.arange(K) != 2] == 0)


def test_acgan_loss_equals_cross_entropy_by_hand():
    reg = REGULARIZERS.get("auxiliary_classifier")(weight=0.5)
    assert reg.phases == ("D", "G")
    real_cl = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    fake_cl = torch.tensor([[0.5, 0.5, 3.0], [1.0, -2.0, 0.0]])
    labels, fake_labels = torch.tensor([0, 2]), torch.tensor([2, 1])

    def ce(logits, y):  # -log softmax(logits)[y], averaged
        return -(logits[torch.arange(2), y] - logits.exp().sum(1).log()).mean()

    ctx = StepContext(None, None, None, None, labels, None, None, 0, None, phase="D",
                      fake_labels=fake_labels, real_out={"class_logits": real_cl},
                      fake_out={"class_logits": fake_cl})
    torch.testing.assert_close(reg(ctx), 0.5 * (ce(real_cl, labels) + ce(fake_cl, fake_labels)))
    torch.testing.assert_close(reg(ctx), 0.5 * (F.cross_entropy(real_cl, labels)
                                                + F.cross_entropy(fake_cl, fake_labels)))
    ctx.phase = "G"
    torch.testing.assert_close(reg(ctx), 0.5 * ce(fake_cl, fake_labels))
    ctx.fake_out = {"logits": torch.zeros(2)}
    with pytest.raises(ValueError, match="use discriminator.conditioning=acgan"):
        reg(ctx)


# -- unconditional behaviour unchanged (values pinned before conditioning was added) -----------
PINNED = {
    ("G", "mlp", False): [0.56894070, -0.09254500, -0.11109439, 0.12010824],
    ("G", "dcgan", False): [0.01930951, -0.04247864, 0.01866410, 0.02210625],
    ("D", "mlp", False): [-0.12610210, -0.05088396, -0.17914024, -0.17228840],
    ("D", "mlp", True): [-0.11631488, 0.01085955, -0.20737584, -0.19496199],
    ("D", "dcgan", False): [0.08672972, -0.32875109, -0.19325460, -0.27563572],
    ("D", "dcgan", True): [0.12231113, -0.14248301, -0.06059989, -0.23423097],
}


@pytest.mark.parametrize("kind,name,sn", list(PINNED))
def test_unconditional_networks_are_unchanged(kind, name, sn):
    torch.manual_seed(0)
    if kind == "G":
        shape = (1, 8, 8) if name == "mlp" else (1, 16, 16)
        net = GENERATORS.get(name)(z_dim=16, out_shape=shape, bounded=True,
                                   **({"widths": (32, 32)} if name == "mlp" else {"width": 8}))
        torch.manual_seed(1)
        x = torch.randn(4, 16)
    else:
        shape = (1, 8, 8) if name == "mlp" else (1, 16, 16)
        net = DISCRIMINATORS.get(name)(in_shape=shape, spectral_norm=sn,
                                       **({"widths": (32, 32)} if name == "mlp" else {"width": 8}))
        torch.manual_seed(1)
        x = torch.rand(4, *shape) * 2 - 1
    assert not net.conditional
    with torch.no_grad():
        out = net(x).flatten()[:4]
    torch.testing.assert_close(out, torch.tensor(PINNED[(kind, name, sn)]), rtol=1e-5,
                               atol=1e-6)
    assert not any(k.startswith("cond.") for k in net.state_dict())


# -- error paths -------------------------------------------------------------------------------
@pytest.mark.parametrize("who,name,mode", [("generator", "mlp", "concat"),
                                           ("generator", "dcgan", "cbn"),
                                           ("discriminator", "mlp", "projection"),
                                           ("discriminator", "dcgan", "acgan")])
def test_conditional_networks_need_labelled_data(who, name, mode):
    config = resolve("dcgan", [f"{who}={{name: {name}, conditioning: {mode}}}"])
    info = DataInfo((1, 16, 16), "image", 0)
    with pytest.raises(ValueError, match=f"{who}.conditioning={mode} needs labelled data"):
        build_networks(config, info)


def test_bad_conditioning_options_are_explained():
    with pytest.raises(ValueError, match="generator.conditioning must be one of none, concat"):
        resolve("dcgan", ["generator.conditioning=projection"])
    with pytest.raises(ValueError, match="conditioning must be one of none, concat"):
        _g("dcgan", (1, 16, 16), "projection")
    with pytest.raises(ValueError, match="discriminator.conditioning must be one of"):
        resolve("gan", ["discriminator.conditioning=cbn"])
    with pytest.raises(ValueError, match="generator: conditioning=cbn .* needs batch_norm=true"):
        resolve("gan", ["generator.conditioning=cbn", "generator.batch_norm=false"])
    with pytest.raises(ValueError, match="needs class labels"):
        _d("dcgan", (1, 16, 16), "projection")(torch.randn(2, 1, 16, 16))
    with pytest.raises(ValueError, match=r"must have shape \[2\]"):
        _g("mlp", (2,), "concat")(torch.randn(2, 6), torch.tensor([1, 2, 3]))


# -- sampling with classes ---------------------------------------------------------------------
def _loaded(G, config="cgan", shape=(1, 16, 16)):
    return api.LoadedRun(resolve(config, ["z_dim=6"]), DataInfo(shape, "image", K),
                         G.eval(), None, 0)


def test_sample_with_classes():
    torch.manual_seed(0)
    run = _loaded(_g("dcgan", (1, 16, 16), "concat"))
    x, y = api.sample(run, 5, classes=7, seed=3, return_labels=True)
    assert x.shape == (5, 1, 16, 16) and y.tolist() == [7] * 5
    x2, y2 = api.sample(run, 5, classes=[7, 7, 7, 7, 7], seed=3, return_labels=True)
    torch.testing.assert_close(x, x2)
    # default: uniform labels drawn from the seed, reproducible
    _, u1 = api.sample(run, 200, seed=1, return_labels=True)
    _, u2 = api.sample(run, 200, seed=1, return_labels=True)
    assert torch.equal(u1, u2) and set(u1.tolist()) == set(range(K))
    # the same z with and without explicit classes
    xb, ub = api.sample(run, 4, seed=1, batch_size=3, return_labels=True)
    xa = api.sample(run, 4, classes=ub.tolist(), seed=1, batch_size=3)
    torch.testing.assert_close(xa, xb, rtol=0, atol=0)
    with pytest.raises(ValueError, match="class 10 is out of range: this run has 10 classes"):
        api.sample(run, 2, classes=10)
    with pytest.raises(ValueError, match="one int or 3 labels"):
        api.sample(run, 3, classes=[1, 2])
    with pytest.raises(TypeError, match="integer labels"):
        api.sample(run, 3, classes=1.5)


def test_sample_class_on_unconditional_run_is_an_error():
    torch.manual_seed(0)
    run = _loaded(_g("dcgan", (1, 16, 16), "none"), config="dcgan")
    assert not run.conditional
    x, y = api.sample(run, 3, return_labels=True)
    assert x.shape == (3, 1, 16, 16) and y is None
    with pytest.raises(ValueError, match="generator is unconditional"):
        api.sample(run, 3, classes=1)
    with pytest.raises(ValueError, match="generator is unconditional"):
        api.class_grid_labels(run, 4)


# -- conditioning accuracy ---------------------------------------------------------------------
class _RealImages(nn.Module):
    """A fake generator that returns mnist5k images the classifier gets right: of the requested
    class (``follow_labels``) or of class i % K whatever was asked."""

    conditional = True

    def __init__(self, banks, follow_labels):
        super().__init__()
        self.banks, self.follow_labels = banks, follow_labels
        self.anchor = nn.Parameter(torch.zeros(()))  # gives the module a device

    def forward(self, z, c=None):
        i = torch.arange(len(z))
        want = c if self.follow_labels else i % K
        return torch.stack([self.banks[int(k)][int(j) % len(self.banks[int(k)])]
                            for k, j in zip(want, i)])


@pytest.fixture(scope="module")
def digit_banks():
    from gankit.data import load_dataset
    from gankit.metrics.features import build_extractor

    ds = load_dataset("mnist5k")
    x, y = ds.x[::5], ds.y[::5]  # 1,000 images
    right = build_extractor("lenet_mnist5k").probs(x).argmax(1) == y
    return [x[(y == k) & right] for k in range(K)]


@pytest.mark.parametrize("follow,expected", [(True, 1.0), (False, 0.1)])
def test_conditioning_accuracy_of_ideal_and_label_blind_generators(monkeypatch, digit_banks,
                                                                   follow, expected):
    run = api.LoadedRun(resolve("cgan"), DataInfo((1, 28, 28), "image", K),
                        _RealImages(digit_banks, follow), None, 0)
    monkeypatch.setattr(api, "load", lambda *a, **k: run)
    result = conditioning_accuracy("some/run", n_per_class=20)
    assert result["n"] == 200 and len(result["per_class"]) == K
    assert result["overall"] == pytest.approx(expected, abs=1e-12)
    assert result["per_class"] == pytest.approx([expected] * K, abs=1e-12)
