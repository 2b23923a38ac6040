"""train.compile, train.channels_last and train.deterministic (gankit.training.speed)."""

import copy
import functools

import pytest
import torch

from gankit import api
from gankit.config import resolve
from gankit.training.loop import Trainer
from gankit.training.speed import _compile_method, deterministic
from gankit.training.state import build_state

TINY = {"dcgan": ["generator.width=8", "discriminator.width=8", "train.batch_size=16"],
        "gan": ["generator.widths=[32,32]", "discriminator.widths=[32,32]",
                "train.batch_size=16"]}


def _trainer(*overrides, preset="dcgan", data="digits"):
    config = api.make_config(preset, data=data, device="cpu",
                             overrides=[*TINY[preset], *overrides])
    ds = api.dataset_for(config)
    state = build_state(config, api.data_info(ds), torch.device("cpu"))
    return Trainer(state, ds, None, progress=False)


def test_channels_last_converts_the_convolutions_and_trains_like_the_default_layout():
    a, b = _trainer(), _trainer("train.channels_last=true")
    weight = next(p for p in b.state.G.parameters() if p.ndim == 4 and p.shape[1] > 1
                  and p.shape[2] > 1)
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert not weight.is_contiguous()
    a.run(3)
    b.run(3)
    for k, v in a.state.G.state_dict().items():  # same maths, another summation order
        torch.testing.assert_close(b.state.G.state_dict()[k], v, rtol=1e-4, atol=1e-5)


def test_compiled_methods_keep_weight_names_and_bind_deep_copies_to_the_copy():
    t = _trainer()
    G = t.state.G
    names = list(G.state_dict())
    _compile_method(G, "forward")
    assert isinstance(G.forward, functools.partial) and G.forward.args[0] is G
    assert list(G.state_dict()) == names
    twin = copy.deepcopy(G)
    assert twin.forward.args[0] is twin  # the EMA copy or an unrolled critic runs itself


def test_compile_trains_and_matches_eager_outputs():
    """A compiled mlp on the ring: the same G output as eager to float tolerance, and D
    stays eager (with a note) when R1 needs its double backward."""
    t = _trainer("train.compile=true", preset="gan", data="ring")
    z = torch.randn(8, t.state.config.z_dim, generator=torch.Generator().manual_seed(0))
    eager = type(t.state.G).forward(t.state.G, z, None)
    torch.testing.assert_close(t.state.G(z, None), eager, rtol=1e-5, atol=1e-6)
    t.run(2)
    assert t.state.step == 2
    r1 = _trainer("train.compile=true", "regularizers.r1.gamma=1.0", preset="gan", data="ring")
    assert isinstance(r1.state.G.forward, functools.partial)
    assert "score" not in vars(r1.state.D)  # D eager: torch.compile has no double backward


def test_compile_with_unrolling_is_refused():
    with pytest.raises(ValueError, match=r"train.compile=true with train.unrolled_steps"):
        resolve("dcgan", ["train.compile=true", "train.unrolled_steps=2"])


def test_deterministic_mode_holds_during_training_and_is_restored():
    seen = []
    t = _trainer("train.deterministic=true")
    t.callbacks.append(lambda tr: seen.append(torch.are_deterministic_algorithms_enabled()))
    before = torch.are_deterministic_algorithms_enabled()
    t.run(1)
    assert seen == [True]
    assert torch.are_deterministic_algorithms_enabled() == before
    with deterministic(False):
        assert torch.are_deterministic_algorithms_enabled() == before


def test_deterministic_mode_changes_nothing_on_the_cpu():
    """CPU kernels here are deterministic already: the same weights bit for bit."""
    a, b = _trainer(), _trainer("train.deterministic=true")
    a.run(2)
    b.run(2)
    for k, v in a.state.D.state_dict().items():
        assert torch.equal(b.state.D.state_dict()[k], v), k
