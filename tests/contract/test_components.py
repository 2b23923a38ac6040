"""Contract tests over every registered component: a new entry is tested on registration."""

import dataclasses
import importlib
import pkgutil

import pytest
import torch

import gankit
from gankit.registry import (
    AUGMENTATIONS,
    DISCRIMINATORS,
    GENERATORS,
    HOOKS,
    LOSSES,
    OPTIMIZERS,
    REGULARIZERS,
)

# candidate sample shapes; each network is tested on those its class `supports`, with its
# class's `test_options` (no table here is keyed by a network's name)
SHAPES = [(1, 28, 28), (3, 32, 32), (1, 32, 32), (1, 16, 16), (3, 64, 64), (2,)]


def _pairs(registry):
    return [(n, s) for n in registry.names() for s in SHAPES if registry.get(n).supports(s)]


@pytest.mark.parametrize("registry", [GENERATORS, DISCRIMINATORS], ids=lambda r: r.kind)
def test_every_network_is_tested_and_refuses_what_it_does_not_support(registry):
    """Each network supports one of the candidate shapes at least, and its constructor
    refuses a shape its `supports` rejects with a ValueError."""
    for name in registry.names():
        cls = registry.get(name)
        assert any(cls.supports(s) for s in SHAPES), f"{name} supports no candidate shape"
        for shape in [s for s in SHAPES + [(3, 24, 24), (5,)] if not cls.supports(s)]:
            key = "out_shape" if registry is GENERATORS else "in_shape"
            with pytest.raises(ValueError):
                cls(**{key: shape}, **({"z_dim": 8} if registry is GENERATORS else {}),
                    **cls.test_options)


def _g_input(G, n, shape):
    """What G maps: latents [n, 16], or a translator's source images."""
    if getattr(G, "takes", "latent") == "image":
        return torch.randn(n, *type(G).source_shape(shape, G.options))
    return torch.randn(n, 16)


@pytest.mark.parametrize("name,shape", _pairs(GENERATORS))
def test_generator_contract(name, shape):
    torch.manual_seed(0)
    bounded = len(shape) == 3
    small = GENERATORS.get(name).test_options
    G = GENERATORS.get(name)(z_dim=16, out_shape=shape, bounded=bounded, **small)
    z = _g_input(G, 5, shape)
    x = G(z)
    assert x.shape == (5, *shape)
    assert torch.isfinite(x).all()
    if bounded:
        assert x.min() >= -1 and x.max() <= 1
    x.square().mean().backward()
    idle = G.idle_parameters()  # e.g. a progressively grown G's other resolutions
    for n, p in G.named_parameters():
        assert (p.grad is None) if n in idle else \
            (p.grad is not None and torch.isfinite(p.grad).all()), n
    G2 = GENERATORS.get(name)(z_dim=16, out_shape=shape, bounded=bounded, **small)
    G2.load_state_dict(G.state_dict())
    G.eval(), G2.eval()
    torch.testing.assert_close(G(z), G2(z))


@pytest.mark.parametrize("name,shape", _pairs(DISCRIMINATORS))
@pytest.mark.parametrize("sn", [False, True])
def test_discriminator_contract(name, shape, sn):
    torch.manual_seed(0)
    small = DISCRIMINATORS.get(name).test_options
    D = DISCRIMINATORS.get(name)(in_shape=shape, spectral_norm=sn, **small)
    x = torch.randn(4, *shape)
    c = x if getattr(D, "takes_source", False) else None  # a pix2pix D scores pairs
    out = D(x, c)
    assert out.shape[0] == 4 and out.dim() in (1, 3)  # one logit, or one per patch
    assert torch.isfinite(out).all()
    out.sum().backward()
    idle = D.idle_parameters()
    for n, p in D.named_parameters():
        if p.requires_grad:
            assert (p.grad is None) if n in idle else (p.grad is not None), n
    D2 = DISCRIMINATORS.get(name)(in_shape=shape, spectral_norm=sn, **small)
    D2.load_state_dict(D.state_dict())
    D.eval(), D2.eval()
    torch.testing.assert_close(D(x, c), D2(x, c))


@pytest.mark.parametrize("loss_name", LOSSES.names())
def test_loss_gradients_reach_the_right_network(loss_name):
    torch.manual_seed(0)
    G = GENERATORS.get("mlp")(z_dim=4, out_shape=(2,), bounded=False, widths=(8,))
    D = DISCRIMINATORS.get("mlp")(in_shape=(2,), widths=(8,))
    loss = LOSSES.build(loss_name)
    z, real = torch.randn(6, 4), torch.randn(6, 2)
    # D update: fakes detached, so G gets no gradient
    loss.d_loss(D(real), D(G(z).detach())).backward()
    assert all(p.grad is None for p in G.parameters())
    # (a bias gradient may cancel exactly, e.g. hinge/Wasserstein: -1 + 1)
    assert all(p.grad is not None for p in D.parameters())
    assert sum(p.grad.abs().sum() for p in D.parameters()) > 0
    D.zero_grad(set_to_none=True)
    # G update with D frozen: only G gets a gradient
    D.requires_grad_(False)
    real_logits = D(real) if loss.g_needs_real else None  # relativistic: G compares with them
    loss.g_loss(D(G(z)), real_logits).backward()
    assert all(p.grad is None for p in D.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())
    for value in (loss.d_loss(D(real), D(G(z))), loss.g_loss(D(G(z)), real_logits)):
        assert value.dim() == 0 and torch.isfinite(value)


CONFIGURED = [GENERATORS, DISCRIMINATORS, LOSSES, REGULARIZERS, HOOKS, OPTIMIZERS,
              AUGMENTATIONS]


def _out_of_range(f, value):
    """A value of field ``f``'s type that no option should accept: -1 for a number (each
    of a tuple's numbers in turn), a string no choice list holds."""
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [type(value)(-1)]
    if isinstance(value, tuple) and value and all(isinstance(v, (int, float)) for v in value):
        return [tuple(type(v)(-1) if i == j else v for j, v in enumerate(value))
                for i in range(len(value))]
    if isinstance(value, str):
        return ["no-such-choice"]
    return []


def _options_cases():
    for registry in CONFIGURED:
        for name in registry.names():
            opts = getattr(registry.get(name), "Options", None)
            if opts is None:
                continue
            for f in dataclasses.fields(opts):
                for bad in _out_of_range(f, f.default):
                    yield pytest.param(opts, f.name, bad, id=f"{registry.kind}-{name}-{f.name}")


# an option where -1 or any string is a valid value would be listed here
ANY_VALUE = {"gan_run"}  # a path: any string


@pytest.mark.parametrize("opts, field, bad", list(_options_cases()))
def test_an_out_of_range_option_is_refused(opts, field, bad):
    """Every numeric option of every component refuses -1, every string option a value it
    does not know: the component's Options checks its ranges."""
    if field in ANY_VALUE:
        pytest.skip(f"{field} accepts any value")
    with pytest.raises(ValueError, match=field):
        opts(**{field: bad})


def test_every_kind_of_configured_component_is_covered():
    kinds = {case.id.split("-")[0] for case in _options_cases()}
    assert kinds >= {"generator", "discriminator", "loss", "regularizer", "hook", "optimizer",
                     "augmentation"}


@pytest.mark.parametrize("registry, protocol", [
    (LOSSES, "Loss"), (REGULARIZERS, "Regularizer"), (HOOKS, "Hook"),
    (AUGMENTATIONS, "Augmentation")], ids=lambda x: getattr(x, "kind", x))
def test_components_implement_the_protocol_the_loop_calls(registry, protocol):
    from gankit import components

    for name in registry.names():
        instance = registry.get(name)()
        assert isinstance(instance, getattr(components, protocol)), name


@pytest.mark.parametrize("registry", CONFIGURED, ids=lambda r: r.kind)
def test_options_are_documented_dataclasses(registry):
    for name in registry.names():
        opts = getattr(registry.get(name), "Options", None)
        if opts is None:
            continue
        assert dataclasses.is_dataclass(opts)
        for f in dataclasses.fields(opts):
            assert f.default is not dataclasses.MISSING, f"{name}.{f.name} needs a default"


@pytest.mark.parametrize("name", REGULARIZERS.names())
def test_regularizers_return_finite_scalars_with_gradient(name):
    """Each regulariser, in each phase it declares, gives a finite positive scalar whose
    gradient reaches D (phase D) or G (phase G: through the fakes or G's weights)."""
    from gankit.training.context import StepContext

    torch.manual_seed(0)
    # an ACGAN-headed D provides every output any regulariser reads (logits, features,
    # class_logits)
    D = DISCRIMINATORS.get("dcgan")(in_shape=(1, 16, 16), width=8, batch_norm=False,
                                    num_classes=3, conditioning="acgan")
    reg = REGULARIZERS.get(name)()
    labels, fake_labels = torch.tensor([0, 1, 2, 0]), torch.tensor([2, 2, 1, 0])
    if reg.generator is not None and getattr(GENERATORS.get(reg.generator), "takes",
                                             None) == "table":
        _check_table_regularizer(reg)
        return
    G = GENERATORS.get("dcgan")(z_dim=4, out_shape=(1, 16, 16), width=8)
    if reg.generator is not None and not reg.needs_source:  # a regulariser tied to one
        cls = GENERATORS.get(reg.generator)  # generator gets it, and its fakes
        if getattr(cls, "takes", None) == "bigan":  # with its joint critic D(x, z)
            G = cls(z_dim=8, out_shape=(1, 16, 16), **cls.test_options)
            D = DISCRIMINATORS.get("bigan")(in_shape=(1, 16, 16), width=4, latent_dim=8)
            labels = fake_labels = None
        else:
            G = cls(z_dim=8, out_shape=(1, 16, 16), bounded=True, num_classes=3,
                    conditioning="concat", **cls.test_options)
    channels, source = 1, None
    if reg.needs_source and reg.generator is not None:  # e.g. an anomaly model's term
        cls = GENERATORS.get(reg.generator)
        G = cls(out_shape=(1, 16, 16), **cls.test_options)
        source = torch.randn(4, 1, 16, 16)
    elif reg.needs_source:  # translation terms: two unpaired domains, one translator each
        from gankit.models.translators import TranslatorPair

        G = TranslatorPair(lambda: GENERATORS.get("resnet_translator")(
            out_shape=(1, 16, 16), width=2, blocks=1), split=1)
        D = DISCRIMINATORS.get("dcgan")(in_shape=(2, 16, 16), width=8, batch_norm=False,
                                        num_classes=3, conditioning="acgan")
        channels, source = 2, torch.randn(4, 2, 16, 16)
    for phase in reg.phases:
        D.zero_grad(set_to_none=True)
        real = torch.randn(4, channels, 16, 16, requires_grad=reg.needs_real_grad)
        fake = G(source) if source is not None else \
            torch.randn(4, 1, 16, 16, requires_grad=True) if reg.generator is None else \
            G(torch.randn(4, 8), fake_labels)
        real_out, fake_out = D.score(real, labels), D.score(fake, fake_labels)
        if phase == "G":
            real_out = {k: v.detach() for k, v in real_out.items()}
        ctx = StepContext(G, D, real, fake, labels, real_out["logits"], fake_out["logits"],
                          0, torch.Generator().manual_seed(0), phase=phase,
                          fake_labels=fake_labels, real_out=real_out, fake_out=fake_out,
                          source=source)
        value = reg(ctx)
        assert value.dim() == 0 and torch.isfinite(value) and value > 0, phase
        value.backward()
        if phase == "D":
            assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in D.parameters())
        else:  # through the fakes, or straight to G's weights (orthogonal regularisation)
            to_fake = fake.grad is not None and fake.grad.abs().sum() > 0
            assert to_fake or any(p.grad is not None and p.grad.abs().sum() > 0
                                  for p in G.parameters())


def _check_table_regularizer(reg):
    """A table generator's term on a two-column table: finite, positive, reaching G."""
    from gankit.tabular.table import Column, Table
    from gankit.tabular.transform import TableTransform
    from gankit.training.context import StepContext

    table = Table([Column("v", "continuous", [0.0, 1.0, 2.0, 5.0]),
                   Column("c", "categorical", ["a", "b", "a", "c"])])
    state = TableTransform.fit(table).state_dict()
    cls = GENERATORS.get(reg.generator)
    dim = TableTransform.from_state(state).dim
    G = cls(out_shape=(dim + 3,), z_dim=8, table=state, **cls.test_options)
    cond = torch.eye(3)[torch.tensor([0, 1, 2, 0])]
    fake = G(torch.randn(4, 8), cond)
    ctx = StepContext(G, None, None, fake, None, None, None, 0,
                      torch.Generator().manual_seed(0), phase="G")
    value = reg(ctx)
    assert value.dim() == 0 and torch.isfinite(value) and value > 0
    value.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())


@pytest.mark.parametrize("package", ["models", "losses", "regularizers", "hooks", "optimizers",
                                     "data", "augment", "metrics", "metrics.features"])
def test_every_module_registers_something(package):
    pkg = importlib.import_module(f"gankit.{package}")
    registries = list(gankit.registry.ALL.values())
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_") or info.ispkg:  # sub-packages are listed on their own
            continue
        module = importlib.import_module(f"gankit.{package}.{info.name}")
        owned = [obj for reg in registries for obj in reg._entries.values()
                 if getattr(obj, "__module__", None) == module.__name__]
        assert owned, f"gankit.{package}.{info.name} registers nothing"


def test_registry_rejects_duplicates_and_suggests_names():
    with pytest.raises(ValueError, match="already registered"):
        LOSSES.register("hinge")(object)
    with pytest.raises(ValueError, match="Did you mean 'hinge'"):
        LOSSES.get("hing")
