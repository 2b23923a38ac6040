"""Precision/recall, density/coverage and memorization: hand-computed cases, brute-force
references, and PROTOCOLS.md §4's sanity case."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from gankit.metrics import (
    _knn,
    density_coverage,
    memorization,
    memorization_ratios,
    precision_recall,
)
from gankit.registry import METRICS

# 1-D hand case. real 0, 2, 4, 6: radius (k=1) 2 each. fake 1, 2, 9, 12: radii 1, 1, 3, 3.
REAL = np.array([[0.0], [2.0], [4.0], [6.0]])
FAKE = np.array([[1.0], [2.0], [9.0], [12.0]])


def test_precision_recall_hand_computed():
    # precision: 1 (|1-0| = 1 <= 2) and 2 (0 <= 2) are inside real balls; 9, 12 are not -> 1/2.
    # recall: real 0 (|0-1| = 1 <= 1, on the boundary: <= counts it), 2 (0 <= 1) and
    # 6 (|6-9| = 3 <= 3, boundary) are inside generated balls; 4 is not -> 3/4.
    assert precision_recall(FAKE, REAL, k=1) == (0.5, 0.75)


def test_density_coverage_hand_computed():
    # density, strict <: fake 1 lies in the balls of real 0 and 2 (distance 1 < 2); fake 2 only
    # in its own (real 4 and 0 at distance 2 are not < 2); 9, 12 in none -> 3 / (k M) = 3/4.
    # coverage: nearest fake of real 0, 2, 4, 6 at 1, 0, 2, 3 vs radius 2 -> 2/4.
    assert density_coverage(FAKE, REAL, k=1) == (0.75, 0.5)


def test_metric_classes_and_keys():
    pr = METRICS.build("pr").compute(FAKE, REAL, k=1)
    dc = METRICS.build("dc").compute(FAKE, REAL, k=1)
    assert pr == {"pr_k1_precision": 0.5, "pr_k1_recall": 0.75}
    assert dc == {"dc_k1_density": 0.75, "dc_k1_coverage": 0.5}
    assert set(METRICS.build("pr").compute(FAKE, REAL)) == {"pr_k3_precision", "pr_k3_recall"}
    assert set(METRICS.build("dc").compute(FAKE, REAL[[0, 1, 2, 3, 0, 1]] + np.arange(6)[:, None]))


def _brute_force(fake, real, k):
    """prdc-style reference: full scipy distance matrices and np.sort."""
    d_rr, d_ff, d_fr = cdist(real, real), cdist(fake, fake), cdist(fake, real)
    r_real = np.sort(d_rr, axis=1)[:, k]  # column 0 is the point itself
    r_fake = np.sort(d_ff, axis=1)[:, k]
    precision = (d_fr <= r_real[None, :]).any(axis=1).mean()
    recall = (d_fr <= r_fake[:, None]).any(axis=0).mean()
    density = (d_fr < r_real[None, :]).sum() / (k * len(fake))
    coverage = (d_fr.min(axis=0) < r_real).mean()
    return precision, recall, density, coverage


def test_against_brute_force_with_small_blocks(monkeypatch):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 8))
    fake = rng.normal(size=(350, 8)) * 1.1 + 0.2
    monkeypatch.setattr(_knn, "MAX_ELEMENTS", 1000)  # many small blocks
    ours = (*precision_recall(fake, real, k=3), *density_coverage(fake, real, k=5))
    ref_pr = _brute_force(fake, real, 3)[:2]
    ref_dc = _brute_force(fake, real, 5)[2:]
    np.testing.assert_allclose(ours, (*ref_pr, *ref_dc), rtol=1e-12)
    # pinned
    np.testing.assert_allclose(
        ours, [0.7571428571428571, 0.9066666666666666, 0.7674285714285715, 0.92], rtol=1e-12
    )


def test_knn_radii_exclude_self_but_count_duplicates():
    x = _knn.to_tensor(np.array([[0.0], [0.0], [3.0], [7.0]]))
    np.testing.assert_allclose(_knn.knn_radii(x, 1).numpy(), [0.0, 0.0, 3.0, 4.0])
    np.testing.assert_allclose(_knn.knn_radii(x, 2).numpy(), [3.0, 3.0, 3.0, 7.0])


def test_gaussian_sanity_small_is_reference_equivalent():
    # PROTOCOLS.md §4's setting scaled down (1,000 vs 1,000 in 64-d), pinned to brute force.
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(1000, 64)), rng.normal(size=(1000, 64))
    ours = (*precision_recall(fake, real, k=5), *density_coverage(fake, real, k=5))
    np.testing.assert_allclose(ours, _brute_force(fake, real, 5), rtol=1e-12)


@pytest.mark.slow
def test_protocols_sanity_case_10k_in_1000d():
    # PROTOCOLS.md §4: 10,000 vs 10,000 N(0, I) in 1,000-d, k = 5 -> P 0.4772, R 0.4705,
    # D 1.0555, C 0.9735 (prdc README, one draw). Seeds 0-3 here gave P 0.456-0.497
    # (std 0.017), R 0.474-0.486 (0.005), D 0.91-1.07 (0.066; E[D] = 1 exactly for equal
    # distributions), C 0.962-0.974 (0.006). Two independent draws differ by sqrt(2) std, so
    # the tolerances are about 3 sqrt(2) std. About 40 s on one core.
    rng = np.random.default_rng(0)
    real = rng.normal(size=(10_000, 1000)).astype(np.float32)
    fake = rng.normal(size=(10_000, 1000)).astype(np.float32)
    values = (*precision_recall(fake, real, k=5), *density_coverage(fake, real, k=5))
    np.testing.assert_allclose(values[0], 0.4772, atol=0.07, err_msg=str(values))
    np.testing.assert_allclose(values[1], 0.4705, atol=0.025, err_msg=str(values))
    np.testing.assert_allclose(values[2], 1.0555, atol=0.28, err_msg=str(values))
    np.testing.assert_allclose(values[3], 0.9735, atol=0.025, err_msg=str(values))
    np.testing.assert_allclose(values[2], 1.0, atol=0.2, err_msg=str(values))


def test_memorization_copies_and_fresh_samples():
    rng = np.random.default_rng(2)
    train = rng.normal(size=(2000, 16))
    copies = train[rng.choice(2000, 500, replace=False)]
    fraction, median = memorization(copies, train)
    assert fraction == 1.0 and median < 1e-6
    fresh_fraction, fresh_median = memorization(rng.normal(size=(500, 16)), train)
    assert fresh_fraction < 0.02
    assert 0.8 < fresh_median < 1.3


def test_memorization_hand_computed():
    # train 0, 1, 3, 10: nearest-other distances 1, 1, 2, 7 -> median 1.5.
    train = np.array([[0.0], [1.0], [3.0], [10.0]])
    fake = np.array([[0.3], [2.0], [10.0], [20.0]])  # nearest 0.3, 1, 0, 10
    np.testing.assert_allclose(memorization_ratios(fake, train), [0.2, 2 / 3, 0.0, 20 / 3])
    out = METRICS.build("memorization").compute(fake, train)
    assert out == pytest.approx(
        {"memorization_fraction": 0.5, "memorization_median_ratio": (0.2 + 2 / 3) / 2}
    )
    assert memorization(fake, train, threshold=0.7)[0] == 0.75


def test_errors_are_clear():
    with pytest.raises(ValueError, match="k must lie"):
        _knn.knn_radii(_knn.to_tensor(np.zeros((3, 2))), 3)
    with pytest.raises(ValueError, match="real=None"):
        METRICS.build("pr").compute(FAKE, None)
    with pytest.raises(ValueError, match="duplicates"):
        memorization(FAKE, np.zeros((5, 1)))
