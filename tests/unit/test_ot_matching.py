"""regularizers.ot_matching: the minibatch OT energy distance, pinned at hand-computed values
and against a brute-force reference (every permutation), and its balancing pull."""

import itertools
import math

import pytest
import torch
from torch.testing import assert_close

from gankit.config import resolve
from gankit.regularizers.feature_matching import FeatureMatching
from gankit.regularizers.ot_matching import OTMatching, energy_distance, transport_cost
from gankit.training.context import StepContext

F64 = torch.float64


def _reference_w(a, b, cost):
    """min over all one-to-one matchings of the mean cost, by enumeration."""
    if cost == "cosine":
        c = 1 - torch.nn.functional.normalize(a, dim=1) @ torch.nn.functional.normalize(b, dim=1).T
    else:
        c = ((a[:, None] - b[None]) ** 2).sum(-1)
    n = len(a)
    return min((c[torch.arange(n), torch.tensor(p)].mean() for p in
                itertools.permutations(range(n))), key=lambda v: v.item())


def test_transport_cost_swaps_crossed_pairs():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=F64)
    b = torch.tensor([[0.0, 2.0], [3.0, 0.0]], dtype=F64)
    # the best matching pairs a0-b1 and a1-b0: cosine 0, squared distances 4 and 1
    assert transport_cost(a, b, "cosine").item() == pytest.approx(0.0, abs=1e-12)
    assert transport_cost(a, b, "sqeuclidean").item() == pytest.approx((4 + 1) / 2)


def test_energy_distance_hand_values():
    # one row per half: value = (c11 + c12 + c21 + c22) / 2 - c(x1, x2) - c(y1, y2)
    x = torch.tensor([[0.0], [2.0]], dtype=F64)
    y = torch.tensor([[1.0], [1.0]], dtype=F64)
    assert energy_distance(x, y, "sqeuclidean").item() == pytest.approx((1 + 1 + 1 + 1) / 2 - 4 - 0)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=F64)
    y = torch.tensor([[1.0, 1.0], [1.0, 0.0]], dtype=F64)
    r = 1 - 1 / math.sqrt(2)
    assert energy_distance(x, y, "cosine").item() == pytest.approx((r + 0 + r + 1) / 2 - 1 - r)
    assert energy_distance(x, y, "cosine").item() == pytest.approx(-0.5)


@pytest.mark.parametrize("cost", ["cosine", "sqeuclidean"])
def test_value_and_gradient_match_brute_force(cost):
    g = torch.Generator().manual_seed(3)
    real = torch.randn(10, 6, generator=g, dtype=F64)  # halves of 5: 120 matchings each
    fake = torch.randn(11, 6, generator=g, dtype=F64, requires_grad=True)  # row 10 unused
    value = energy_distance(real, fake, cost)
    value.backward()
    fake_ref = fake.detach().clone().requires_grad_(True)
    x1, x2, y1, y2 = real[:5], real[5:10], fake_ref[:5], fake_ref[5:10]
    ref = (sum(_reference_w(a, b, cost) for a in (x1, x2) for b in (y1, y2)) / 2
           - _reference_w(x1, x2, cost) - _reference_w(y1, y2, cost))
    ref.backward()
    assert_close(value, ref)
    assert_close(fake.grad, fake_ref.grad)
    assert fake.grad[10].abs().sum() == 0


def _ctx(real_f, fake_f):
    return StepContext(None, None, None, None, None, None, None, 0, torch.Generator(),
                       phase="G", real_out={"features": real_f}, fake_out={"features": fake_f})


def test_ot_pulls_extra_fakes_towards_missing_reals_where_feature_matching_moves_all():
    """Real features: two kinds, (1, 0) and (0, 1), two of each per half. Fakes: all of the
    first kind, offset by 0, 1, 2, 3 thousandths towards the second within each half.
    Feature matching gives every fake the same gradient; the OT term moves the two fakes
    per half nearest the missing kind all the way, and leaves the others."""
    a, b = [1.0, 0.0], [0.0, 1.0]
    real = torch.tensor([a, a, b, b, a, a, b, b], dtype=F64)
    offsets = torch.tensor([[0.0, j * 1e-3] for j in (0, 1, 2, 3, 0, 1, 2, 3)], dtype=F64)
    fake = (torch.tensor([a] * 8, dtype=F64) + offsets).requires_grad_(True)
    OTMatching(weight=1.0, cost="sqeuclidean")(_ctx(real, fake)).backward()
    ot_grad = fake.grad.clone()
    fake.grad = None
    FeatureMatching(weight=1.0)(_ctx(real, fake)).backward()
    # FM: 2 (mean_fake - mean_real) / 8 ~ 2 (0.5, -0.5) / 8 for every fake
    assert_close(fake.grad, torch.tensor([[0.125, -0.125]] * 8, dtype=F64), atol=1e-3, rtol=0)
    # OT: in both cross terms of its half, fakes 2 and 3 (4 + 2, 4 + 3) are matched to
    # (0, 1): 2 terms * (1/2) * (1/4) * 2 (y - x) = (0.5, -0.5); the others to (1, 0): ~0
    expected = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.5, -0.5], [0.5, -0.5]] * 2, dtype=F64)
    assert_close(ot_grad, expected, atol=1e-2, rtol=0)
    assert_close(ot_grad.sum(0), torch.tensor([2.0, -2.0], dtype=F64), atol=1e-2, rtol=0)


def test_weight_and_interval_scale_the_value():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g)
    one = OTMatching()(_ctx(real, fake))
    assert_close(OTMatching(weight=0.5, interval=2)(_ctx(real, fake)), one)
    assert_close(OTMatching(weight=3.0)(_ctx(real, fake)), 3 * one)


@pytest.mark.parametrize("override, message", [
    ("regularizers.ot_matching.weight=-1", "weight >= 0"),
    ("regularizers.ot_matching.cost=l1", "cost must be one of"),
])
def test_bad_options_fail_when_the_config_resolves(override, message):
    with pytest.raises(ValueError, match=message):
        resolve("dcgan", [override])


def test_batches_of_one_are_refused():
    with pytest.raises(ValueError, match="batches of at least 2, got 1 real and 4 fake"):
        energy_distance(torch.zeros(1, 3), torch.zeros(4, 3))
