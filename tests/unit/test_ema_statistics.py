"""G_ema's BatchNorm statistics (issue 33 §1.2): standing statistics for the averaged weights
(the default), statistics averaged alongside the weights, or G's copied."""

import copy
from types import SimpleNamespace

import torch
from torch import nn
from torch.testing import assert_close

from gankit import api
from gankit.hooks.ema import EMA, standing_statistics
from gankit.sampling import stream
from gankit.training.loop import Trainer
from gankit.training.state import build_state


class _TinyG(nn.Module):
    """z [N, 3] -> BatchNorm1d(Linear(z)) [N, 4]."""

    conditional = False

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc, self.bn = nn.Linear(3, 4), nn.BatchNorm1d(4)

    def forward(self, z, c=None):
        return self.bn(self.fc(z))


def test_standing_statistics_average_the_batch_statistics():
    G = _TinyG()
    standing_statistics(G, 3, samples=40, batch_size=16,  # batches of 16, 16, 8
                        generator=torch.Generator().manual_seed(7))
    gen = torch.Generator().manual_seed(7)
    h = [G.fc(torch.randn(n, 3, generator=gen)).detach() for n in (16, 16, 8)]
    # BatchNorm's cumulative average (momentum None) weighs each batch equally
    assert_close(G.bn.running_mean, sum(b.mean(0) for b in h) / 3)
    assert_close(G.bn.running_var, sum(b.var(0, unbiased=True) for b in h) / 3)
    assert not G.training and G.bn.momentum == 0.1  # eval mode, momentum restored


def test_average_mode_averages_running_statistics_with_the_weights():
    G = _TinyG()
    state = SimpleNamespace(G=G, G_ema=None)
    ema = EMA(beta=0.5, warmup=False, bn_stats="average")
    ema.setup(state)
    with torch.no_grad():
        G.bn.running_mean.fill_(2.0)
        G.bn.running_var.fill_(4.0)
    ema.after_g_step(state, 1)  # 0.5 * (0, 1) + 0.5 * (2, 4)
    assert_close(state.G_ema.bn.running_mean, torch.full((4,), 1.0))
    assert_close(state.G_ema.bn.running_var, torch.full((4,), 2.5))
    copying = EMA(beta=0.5, warmup=False, bn_stats="copy")
    state.G_ema = None
    copying.setup(state)
    copying.after_g_step(state, 1)
    assert_close(state.G_ema.bn.running_mean, torch.full((4,), 2.0))


def _trainer(bn_stats):
    config = api.make_config("dcgan", data="digits", device="cpu", overrides=[
        "generator.width=8", "discriminator.width=8", "train.batch_size=16",
        f"hooks.ema.bn_stats={bn_stats}", "hooks.ema.standing_samples=64"])
    ds = api.dataset_for(config)
    state = build_state(config, api.data_info(ds, config), torch.device("cpu"))
    return Trainer(state, ds, None, progress=False)


def test_the_sampled_g_ema_has_standing_statistics_and_g_trains_as_before():
    standing, copying = _trainer("standing"), _trainer("copy")
    for t in (standing, copying):
        t.run(3)
    for a, b in zip(standing.state.G.state_dict().values(),
                    copying.state.G.state_dict().values()):
        assert torch.equal(a, b)  # G_ema's statistics never feed back into training
    saved = standing.state.state_dict()["G_ema"]
    expected = copy.deepcopy(standing.state.G_ema)
    standing_statistics(expected, 100, 64, 16, stream(0, "standing"))
    for name, value in expected.state_dict().items():
        assert torch.equal(saved[name], value), name
    key = next(k for k in saved if k.endswith("running_var"))
    assert not torch.equal(saved[key], copying.state.state_dict()["G_ema"][key])
