"""Gradient penalty, R1, spectral norm and weight clipping against closed forms."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from gankit.hooks.weight_clip import WeightClip
from gankit.layers.spectral import apply_spectral_norm
from gankit.regularizers.gradient_penalty import GradientPenalty
from gankit.regularizers.r1 import R1
from gankit.training.context import StepContext


class Linear(nn.Module):
    """D(x) = w . x + b: its input gradient is w everywhere."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))
        self.b = nn.Parameter(torch.tensor(0.3))

    def forward(self, x, c=None):
        return x.flatten(1) @ self.w + self.b


def _ctx(D, real, fake, real_logits=None):
    return StepContext(None, D, real, fake, None, real_logits, D(fake), 0,
                       torch.Generator().manual_seed(0))


def test_gradient_penalty_linear_critic_closed_form():
    D = Linear([3.0, 4.0])  # ||w|| = 5 -> penalty = 10 * (5 - 1)^2 = 160
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    gp = GradientPenalty(weight=10.0)(_ctx(D, real, fake))
    assert_close(gp, torch.tensor(160.0))
    gp.backward()  # d/dw 10 (||w|| - 1)^2 = 20 (||w|| - 1) w / ||w|| = 16 w
    assert_close(D.w.grad, torch.tensor([48.0, 64.0]))


def test_gradient_penalty_draws_one_weight_per_example():
    seen = []

    class Probe(nn.Module):
        def forward(self, x, c=None):
            seen.append(x.detach().clone())
            return x.flatten(1).sum(1)

    real, fake = torch.ones(4, 1, 3, 3), torch.zeros(4, 1, 3, 3)
    GradientPenalty()(_ctx(Probe(), real, fake))
    x_hat = seen[-1]  # eps * 1 + (1 - eps) * 0 = eps: constant within each example
    per_example = x_hat.flatten(1)
    assert_close(per_example, per_example[:, :1].expand_as(per_example))
    assert per_example[:, 0].unique().numel() == 4


def test_r1_linear_critic_closed_form():
    D = Linear([1.0, 2.0])  # gamma / 2 * ||w||^2 = 5 * 5 = 25
    real = torch.randn(6, 2, requires_grad=True)
    assert_close(R1(gamma=10.0)(_ctx(D, real, real.detach(), D(real))), torch.tensor(25.0))
    # lazy regularisation every 4 steps scales the weight by 4
    assert_close(R1(gamma=10.0, interval=4)(_ctx(D, real, real.detach(), D(real))),
                 torch.tensor(100.0))


def test_spectral_norm_brings_top_singular_value_to_one():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 5))
    with torch.no_grad():
        net[0].weight.mul_(7.0)
    apply_spectral_norm(net)
    x = torch.randn(16, 20)
    for _ in range(30):  # power iteration runs once per training-mode forward
        net(x)
    for layer in (net[0], net[2]):
        sigma = torch.linalg.matrix_norm(layer.weight.detach(), ord=2)
        assert_close(sigma, torch.tensor(1.0), atol=1e-3, rtol=0)


def test_weight_clip_bounds_every_parameter():
    torch.manual_seed(0)
    D = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 1))

    WeightClip(clip=0.01).constrain_d(D)
    for p in D.parameters():
        assert p.abs().max() <= 0.01
    assert any((p.abs() == 0.01).any() for p in D.parameters())  # clipping did happen


def test_ema_update_and_warmup_schedule():
    from gankit.hooks.ema import EMA

    class S:
        pass

    s = S()
    s.G = nn.Linear(2, 1)
    s.G_ema = None
    ema = EMA(beta=0.9, warmup=False)
    ema.setup(s)
    with torch.no_grad():
        ema_w = s.G_ema.weight.clone()
        s.G.weight.add_(1.0)
    ema.after_g_step(s, 1)  # 0.9 * old + 0.1 * (old + 1) = old + 0.1
    assert_close(s.G_ema.weight, ema_w + 0.1)
    warm = EMA(beta=0.999)
    assert warm.decay(0) == pytest.approx(0.1) and warm.decay(90) == pytest.approx(0.91)
    assert warm.decay(100_000) == 0.999
    assert EMA(beta=0.999, start_step=5).decay(4) == 0.0
