"""KID against a straightforward loop implementation; Inception Score closed forms."""

import math

import numpy as np
import pytest
import torch

from gankit.metrics import inception_score, kernel_inception_distance
from gankit.registry import METRICS


def _loop_mmd2(x, y):
    """Unbiased MMD² written out term by term with k(a, b) = (a·b / d + 1)³."""
    m, d = x.shape

    def k(a, b):
        return (float(np.dot(a, b)) / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_loop_implementation_on_full_sets():
    rng = np.random.default_rng(0)
    fake, real = rng.normal(size=(25, 6)) + 0.3, rng.normal(size=(25, 6))
    # subset_size >= N: every subset is a permutation of the full set, so all agree.
    mean, std = kernel_inception_distance(fake, real, num_subsets=4, subset_size=1000)
    np.testing.assert_allclose(mean, _loop_mmd2(fake, real), rtol=1e-10)
    np.testing.assert_allclose(std, 0.0, atol=1e-12)


def test_kid_subsets_match_loop_implementation():
    rng = np.random.default_rng(1)
    fake, real = rng.normal(size=(40, 5)) * 1.2, rng.normal(size=(50, 5))
    mean, std = kernel_inception_distance(fake, real, num_subsets=3, subset_size=12, seed=7)
    draw = np.random.default_rng(7)  # the documented subset draw: fake then real, per subset
    values = []
    for _ in range(3):
        x = fake[draw.choice(40, 12, replace=False)]
        y = real[draw.choice(50, 12, replace=False)]
        values.append(_loop_mmd2(x, y))
    np.testing.assert_allclose([mean, std], [np.mean(values), np.std(values)], rtol=1e-10)


def test_kid_default_protocol_pinned():
    rng = np.random.default_rng(2)
    fake, real = rng.normal(size=(1500, 32)) + 0.1, rng.normal(size=(1200, 32))
    out = METRICS.build("kid").compute(torch.from_numpy(fake).float(), real, seed=0)
    assert set(out) == {"kid_mean", "kid_std"}
    # 100 subsets of 1,000; float32 input is upcast to float64. Pinned from an independent
    # einsum implementation over the same documented subset draw.
    np.testing.assert_allclose(
        [out["kid_mean"], out["kid_std"]],
        [0.03829361571068045, 0.0025002878745747767],
        rtol=1e-9,
    )


def test_kid_near_zero_for_same_distribution():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(600, 16))
    same, _ = kernel_inception_distance(x, rng.normal(size=(600, 16)), num_subsets=20)
    shifted, _ = kernel_inception_distance(x, rng.normal(size=(600, 16)) + 0.5, num_subsets=20)
    assert abs(same) < 0.01 * shifted


def test_kid_identical_sets_closed_form():
    # With X = Y as full sets the unbiased estimate is not exactly 0 but
    # 2 (S / m - T) / (m (m - 1)), S = sum of all kernel entries, T = its trace: an O(1/m)
    # offset because the same samples sit in both sets.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 16))
    k = (x @ x.T / 16 + 1) ** 3
    m = len(x)
    expected = 2 * (k.sum() / m - np.trace(k)) / (m * (m - 1))
    mean, _ = kernel_inception_distance(x, x.copy(), num_subsets=2)
    np.testing.assert_allclose(mean, expected, rtol=1e-10)
    assert -0.1 < mean < 0  # a small negative offset (diagonal kernel terms exceed the rest)


def test_kid_is_seeded():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(300, 8)), rng.normal(size=(300, 8)) + 0.2
    r1 = kernel_inception_distance(a, b, num_subsets=10, subset_size=100, seed=5)
    r2 = kernel_inception_distance(a, b, num_subsets=10, subset_size=100, seed=5)
    r3 = kernel_inception_distance(a, b, num_subsets=10, subset_size=100, seed=6)
    assert r1 == r2 and r1 != r3


def test_is_one_hot_balanced_is_k():
    k, n = 10, 1000
    probs = np.eye(k)[np.arange(n) % k]  # every split of 100 holds 10 of each class
    mean, std = inception_score(probs, splits=10, shuffle=False)
    np.testing.assert_allclose([mean, std], [10.0, 0.0], atol=1e-12)
    shuffled, _ = inception_score(probs)  # chunks of 100 drawn at random: close to 10
    assert 9.0 < shuffled < 10.0


def test_is_uniform_is_one():
    out = METRICS.build("is").compute(torch.full((200, 7), 1 / 7), None)
    np.testing.assert_allclose([out["is_mean"], out["is_std"]], [1.0, 0.0], atol=1e-7)


def test_is_hand_computed():
    p = np.array([[0.9, 0.1], [0.2, 0.8]])
    p_y = np.array([0.55, 0.45])
    kl1 = 0.9 * math.log(0.9 / 0.55) + 0.1 * math.log(0.1 / 0.45)
    kl2 = 0.2 * math.log(0.2 / 0.55) + 0.8 * math.log(0.8 / 0.45)
    assert np.allclose(p.mean(0), p_y)
    mean, std = inception_score(p, splits=1)
    np.testing.assert_allclose(mean, math.exp((kl1 + kl2) / 2), rtol=1e-12)
    assert std == 0.0


def test_is_splits_use_per_split_marginals_and_shuffle_by_default():
    # First half all class 0, second half all class 1. Unshuffled, each split sees one class
    # -> IS 1; one split over everything sees two balanced classes -> IS 2. The default seeded
    # shuffle mixes the classes into both splits.
    probs = np.eye(2)[np.repeat([0, 1], 50)]
    assert inception_score(probs, splits=2, shuffle=False) == pytest.approx((1.0, 0.0))
    assert inception_score(probs, splits=1) == pytest.approx((2.0, 0.0))
    mean, _ = inception_score(probs, splits=2, seed=0)
    assert mean > 1.9
    assert inception_score(probs, splits=2, seed=0) == inception_score(probs, splits=2, seed=0)
    assert inception_score(probs, splits=2, seed=0) != inception_score(probs, splits=2, seed=1)


def test_is_rejects_non_probabilities():
    with pytest.raises(ValueError, match="rows summing to 1"):
        inception_score(np.ones((20, 3)))
    with pytest.raises(ValueError, match="splits must lie"):
        inception_score(np.full((5, 2), 0.5), splits=10)


def test_kid_key_names_a_subset_size_below_the_protocol():
    from gankit.evaluation import compute_metrics
    from gankit.metrics import protocol_key

    rng = np.random.default_rng(8)
    fake = (rng.normal(size=(500, 6)) + 0.2).astype(np.float32)  # the raw extractor's dtype
    real = rng.normal(size=(2000, 6)).astype(np.float32)
    out = compute_metrics(torch.from_numpy(fake), torch.from_numpy(real), ["kid"], "raw",
                          "blobs", seed=1)
    # 500 fake samples hold no subset of 1,000: the key says the subsets had 500
    mean, std = kernel_inception_distance(fake, real, subset_size=500, seed=1)
    assert out == {protocol_key("kid_sub500_mean", 500, "blobs", "raw"): mean,
                   protocol_key("kid_sub500_std", 500, "blobs", "raw"): std}
    assert set(out) == {"kid_sub500_mean_500_blobs_raw", "kid_sub500_std_500_blobs_raw"}
    # so does a smaller real set, and an explicit smaller subset_size
    small_real = METRICS.build("kid").compute(real[:300], fake, seed=1)
    assert set(small_real) == {"kid_sub300_mean", "kid_sub300_std"}
    chosen = METRICS.build("kid").compute(real, fake, seed=1, subset_size=64)
    assert chosen["kid_sub64_mean"] == kernel_inception_distance(real, fake, subset_size=64,
                                                                 seed=1)[0]
    # the protocol's 1,000 keeps the plain key
    full = METRICS.build("kid").compute(real[:1000], real[1000:], seed=1)
    assert set(full) == {"kid_mean", "kid_std"}
