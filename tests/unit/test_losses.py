"""Each adversarial loss pinned at hand-computed logits.

real_logits = [0, 2], fake_logits = [-1, 2]; softplus(x) = ln(1 + e^x):
softplus(0) = 0.6931471806, softplus(-2) = 0.1269280110, softplus(1) = 1.3132616875,
softplus(-1) = 0.3132616875, softplus(2) = 2.1269280110.
"""

import pytest
import torch
from torch.testing import assert_close

from gankit.registry import LOSSES

REAL = torch.tensor([0.0, 2.0], dtype=torch.float64)
FAKE = torch.tensor([-1.0, 2.0], dtype=torch.float64)

# (d_loss, g_loss) by hand
EXPECTED = {
    # D: mean softplus(-real) + mean softplus(fake) = 0.4100375958 + 1.2200948493
    "non_saturating": (1.6301324451, 0.7200948493),  # G: mean softplus(-fake)
    "minimax": (1.6301324451, -1.2200948493),  # G: -mean softplus(fake) = mean log(1 - D)
    "wasserstein": (0.5 - 1.0, -0.5),  # D: mean(fake) - mean(real); G: -mean(fake)
    "hinge": (0.5 + 1.5, -0.5),  # relu(1-[0,2]) = [1,0]; relu(1+[-1,2]) = [0,3]
    "least_squares": (0.5 * 1.0 + 0.5 * 2.5, 1.25),  # (r-1)^2 = [1,1]; f^2 = [1,4]
    # means: fake 0.5, real 1; real - 0.5 = [-0.5, 1.5], fake - 1 = [-2, 1].
    # D: mean softplus([0.5, -1.5]) + mean softplus([-2, 1]);
    # G: mean softplus([-0.5, 1.5]) + mean softplus([2, -1])
    "relativistic_average": (1.3078399804, 2.3078399804),
}


def test_every_loss_is_pinned():
    assert sorted(EXPECTED) == LOSSES.names()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loss_values(name):
    loss = LOSSES.build(name)
    d_expected, g_expected = EXPECTED[name]
    assert_close(loss.d_loss(REAL, FAKE), torch.tensor(d_expected, dtype=torch.float64))
    real = REAL if loss.g_needs_real else None  # the relativistic G compares with reals
    assert_close(loss.g_loss(FAKE, real), torch.tensor(g_expected, dtype=torch.float64))


@pytest.mark.parametrize("name", ["non_saturating", "minimax"])
def test_bce_losses_are_stable_at_extreme_logits(name):
    loss = LOSSES.build(name)
    big = torch.tensor([1e4, -1e4])
    assert torch.isfinite(loss.d_loss(big, big))
    assert torch.isfinite(loss.g_loss(big))
    # D confidently right: real +1e4, fake -1e4 gives zero loss, not NaN.
    assert_close(loss.d_loss(torch.tensor([1e4]), torch.tensor([-1e4])), torch.tensor(0.0))



def test_the_relativistic_g_loss_refuses_to_run_without_real_logits():
    with pytest.raises(ValueError, match="needs D's logits of real data"):
        LOSSES.build("relativistic_average").g_loss(FAKE)
