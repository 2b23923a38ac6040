"""G's bounded output: clamp(scale * tanh(a), -1, 1) (generator.output_scale)."""

from __future__ import annotations

import math

import pytest
import torch

from gankit.config import resolve
from gankit.layers.output import BoundedOutput
from gankit.models.dcgan import DCGANGenerator
from gankit.models.mlp import MLPGenerator


def test_bounded_output_by_hand():
    # atanh(1 / 1.5) = 0.5 * ln(5) = 0.8047: the pre-activation where 1.5 * tanh reaches 1
    a = torch.tensor([-3.0, -0.9, -0.5, 0.0, 0.5, 0.8, 0.9, 3.0], requires_grad=True)
    y = BoundedOutput(1.5)(a)
    t5 = math.tanh(0.5)  # 0.46212
    t8 = math.tanh(0.8)  # 0.66404: 1.5 * 0.66404 = 0.99606 < 1
    expected = torch.tensor([-1.0, -1.0, -1.5 * t5, 0.0, 1.5 * t5, 1.5 * t8, 1.0, 1.0])
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-6)
    assert y[0].item() == -1.0 and y[-1].item() == 1.0  # exact, unlike tanh
    assert abs(0.5 * math.log(5) - math.atanh(1 / 1.5)) < 1e-12
    y.sum().backward()
    # d/da 1.5 tanh(a) = 1.5 (1 - tanh^2 a) inside the bounds, zero where clamped
    grad = torch.tensor([0.0, 0.0, 1.5 * (1 - t5 ** 2), 1.5, 1.5 * (1 - t5 ** 2),
                         1.5 * (1 - t8 ** 2), 0.0, 0.0])
    torch.testing.assert_close(a.grad, grad, rtol=0, atol=1e-6)


def test_scale_one_is_tanh_bit_for_bit():
    a = torch.randn(1000, generator=torch.Generator().manual_seed(0)) * 4
    assert torch.equal(BoundedOutput(1.0)(a), torch.tanh(a))
    # the open interval in practice: a generator's typical outputs never hit -1 exactly
    assert (torch.tanh(torch.linspace(-5, 5, 101)) > -1).all()


@pytest.mark.parametrize("family", ["dcgan", "mlp"])
def test_generator_output_scale_rescales_the_same_network(family):
    def build(scale):
        torch.manual_seed(3)
        kw = {"output_scale": scale}
        if family == "dcgan":
            return DCGANGenerator(16, (3, 28, 28), width=8, **kw)
        return MLPGenerator(16, (1, 8, 8), widths=(32,), **kw)

    g1, g15 = build(1.0), build(1.5)
    # no parameters added: the same state dict, so old checkpoints load unchanged
    assert list(g1.state_dict()) == list(g15.state_dict())
    for p, q in zip(g1.state_dict().values(), g15.state_dict().values()):
        assert torch.equal(p, q)
    z = torch.randn(64, 16, generator=torch.Generator().manual_seed(1))
    g1.eval(), g15.eval()
    with torch.no_grad():  # rescale the last layer so that its pre-activations have std 1
        pre = []
        hook = g1.net[-2].register_forward_hook(lambda m, i, o: pre.append(o.std()))
        g1(z)
        hook.remove()
        for g in (g1, g15):
            g.net[-2].weight.div_(pre[0])
            if g.net[-2].bias is not None:
                g.net[-2].bias.div_(pre[0])
        y1, y15 = g1(z), g15(z)
    torch.testing.assert_close(y15, (1.5 * y1).clamp(-1, 1), rtol=0, atol=1e-6)
    assert (y1 > -1).all() and (y1 < 1).all()
    lows, highs = (y15 == -1).float().mean().item(), (y15 == 1).float().mean().item()
    assert 0.05 < lows + highs < 0.95  # exact -1 and +1 are now drawn, and not everywhere
    # pre-activations of std 1: P(|a| > atanh(2/3) = 0.805) each side
    assert 0.1 < lows < 0.35 and 0.1 < highs < 0.35


def test_output_scale_errors():
    for bad in (0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="output_scale must be a finite number >= 1"):
            DCGANGenerator(16, (1, 28, 28), width=8, output_scale=bad)
    with pytest.raises(ValueError, match="unbounded points"):
        MLPGenerator(2, (2,), bounded=False, widths=(8,), output_scale=1.5)
    with pytest.raises(ValueError, match=r"generator\.output_scale must be a finite"):
        resolve("dcgan", ["generator.output_scale=0.5"])  # before a run directory is written
