"""G's bounded output: clamp(scale * tanh(a), -1, 1) (generator.output_scale) and its
asymmetric form clamp(mid + half * tanh(a), -1, 1) (generator.output_range)."""

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


def test_asymmetric_range_by_hand():
    # range (-1.5, 1.05): mid = -0.225, half = 1.275. Exact -1 below a = -0.5 ln(4.1) = -0.7055
    # and exact +1 above a = 0.5 ln(50) = 1.9560 (in general 0.5 ln((-1 - low) / (high + 1))
    # ... 0.5 ln((1 - low) / (high - 1)))
    layer = BoundedOutput(output_range=(-1.5, 1.05))
    assert (layer.mid, layer.half) == (pytest.approx(-0.225), pytest.approx(1.275))
    lo_t, hi_t = -0.5 * math.log(4.1), 0.5 * math.log(50)
    assert abs(lo_t - 0.5 * math.log(0.5 / 2.05)) < 1e-12  # (-1 - low) / (high + 1)
    assert abs(hi_t - 0.5 * math.log(2.5 / 0.05)) < 1e-12  # (1 - low) / (high - 1)
    assert abs(-0.225 + 1.275 * math.tanh(lo_t) + 1) < 1e-12
    assert abs(-0.225 + 1.275 * math.tanh(hi_t) - 1) < 1e-12
    a = torch.tensor([-3.0, -0.72, -0.69, -0.5, 0.0, 0.5, 1.9, 1.95, 1.97, 3.0],
                     requires_grad=True)
    y = layer(a)
    t = [math.tanh(v) for v in (-0.69, -0.5, 0.5, 1.9, 1.95)]
    expected = torch.tensor([-1.0, -1.0, -0.225 + 1.275 * t[0], -0.225 + 1.275 * t[1], -0.225,
                             -0.225 + 1.275 * t[2], -0.225 + 1.275 * t[3],
                             -0.225 + 1.275 * t[4], 1.0, 1.0])
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-6)
    # the numbers, for a reader: -0.5 -> -0.8142, 0.5 -> 0.3642, 1.9 -> 0.9942 (< 1)
    assert [round(v, 4) for v in y[[3, 5, 6]].tolist()] == [-0.8142, 0.3642, 0.9942]
    assert -1 < y[2].item() < -0.98 and 0.99 < y[7].item() < 1  # just inside both ends
    y.sum().backward()
    grad = [0.0, 0.0] + [1.275 * (1 - v ** 2) for v in t[:2]] + [1.275] + \
        [1.275 * (1 - v ** 2) for v in t[2:]] + [0.0, 0.0]
    torch.testing.assert_close(a.grad, torch.tensor(grad), rtol=0, atol=1e-6)


def test_symmetric_range_is_output_scale_bit_for_bit():
    a = torch.randn(1000, generator=torch.Generator().manual_seed(0)) * 4
    assert torch.equal(BoundedOutput(output_range=(-1.5, 1.5))(a), BoundedOutput(1.5)(a))
    assert torch.equal(BoundedOutput(output_range=(-1.0, 1.0))(a), torch.tanh(a))
    assert torch.equal(BoundedOutput(1.5)(a), (1.5 * torch.tanh(a)).clamp(-1, 1))


@pytest.mark.parametrize("family", ["dcgan", "mlp"])
@pytest.mark.parametrize("option", ["scale", "range"])
def test_generator_output_scale_rescales_the_same_network(family, option):
    def build(scale):
        torch.manual_seed(3)
        kw = ({"output_scale": scale} if option == "scale" or scale == 1.0
              else {"output_range": (-scale, 1.05)})
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
    if option == "scale":
        torch.testing.assert_close(y15, (1.5 * y1).clamp(-1, 1), rtol=0, atol=1e-6)
    else:
        torch.testing.assert_close(y15, (-0.225 + 1.275 * y1).clamp(-1, 1), rtol=0, atol=1e-6)
    assert (y1 > -1).all() and (y1 < 1).all()
    lows, highs = (y15 == -1).float().mean().item(), (y15 == 1).float().mean().item()
    assert 0.05 < lows + highs < 0.95  # exact -1 and +1 are now drawn, and not everywhere
    if option == "scale":  # pre-activations of std 1: P(|a| > atanh(2/3) = 0.805) each side
        assert 0.1 < lows < 0.35 and 0.1 < highs < 0.35
    else:  # P(a < -0.7055) ~ 0.24 but P(a > 1.956) ~ 0.025: +1 is now rare
        assert 0.1 < lows < 0.4 and highs < 0.08 and highs < lows / 4


def test_output_scale_errors():
    for bad in (0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="output_scale must be a finite number >= 1"):
            DCGANGenerator(16, (1, 28, 28), width=8, output_scale=bad)
    with pytest.raises(ValueError, match="unbounded points"):
        MLPGenerator(2, (2,), bounded=False, widths=(8,), output_scale=1.5)
    with pytest.raises(ValueError, match="unbounded points"):
        MLPGenerator(2, (2,), bounded=False, widths=(8,), output_range=(-1.5, 1.0))


@pytest.mark.parametrize("bad", [(-0.9, 1.0), (-1.5, 0.99), (float("nan"), 1.0),
                                 (-1.5, float("inf")), (-1.5,), (-2.0, 1.0, 2.0)])
def test_output_range_errors(bad):
    with pytest.raises(ValueError, match=r"generator\.output_range"):
        DCGANGenerator(16, (1, 28, 28), width=8, output_range=bad)


def test_output_range_and_scale_together_is_an_error():
    with pytest.raises(ValueError, match="set one of generator.output_scale=1.5"):
        DCGANGenerator(16, (1, 28, 28), width=8, output_scale=1.5, output_range=(-1.5, 1.05))


def test_output_range_from_the_command_line():
    cfg = resolve("dcgan", ["generator.output_range=[-1.5, 1.05]"])
    assert cfg.generator.options["output_range"] == (-1.5, 1.05)
    assert resolve("dcgan", []).generator.options["output_range"] is None
    with pytest.raises(TypeError, match="output_range"):
        resolve("dcgan", ["generator.output_range=[-1.5]"])
    # bad bounds fail when the config resolves, before a run directory is written
    with pytest.raises(ValueError, match=r"generator\.output_range=\[low, high\] needs"):
        resolve("dcgan", ["generator.output_range=[-0.5, 1.2]"])
    with pytest.raises(ValueError, match="set one of generator.output_scale=1.5"):
        resolve("gan", ["generator.output_scale=1.5", "generator.output_range=[-2, 2]"])  # mlp G
