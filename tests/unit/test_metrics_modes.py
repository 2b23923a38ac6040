"""Mode counting, 2D-mixture metrics and k-means diversity: exact small cases."""

import math

import numpy as np
import pytest

from gankit.metrics import kmeans_diversity, mixture_metrics, mode_counts
from gankit.registry import METRICS

RING = np.array([[math.cos(2 * math.pi * i / 8), math.sin(2 * math.pi * i / 8)] for i in range(8)])


def test_one_class_generator():
    probs = np.tile([0.05, 0.8, 0.15], (100, 1))
    out = METRICS.build("modes").compute(probs, None)
    assert out == {"modes_hit": 1.0, "modes_kl": pytest.approx(math.log(3), rel=1e-12)}


def test_balanced_generator():
    probs = np.eye(10)[np.arange(1000) % 10] * 0.9 + 0.01
    hit, kl = mode_counts(probs)
    assert hit == 10
    assert kl == pytest.approx(0.0, abs=1e-12)


def test_hand_histogram():
    # classes 0, 0, 1, 3 of K = 4: p̂ = (1/2, 1/4, 0, 1/4), KL = ln 4 - 1.5 ln 2 = 0.5 ln 2.
    probs = np.eye(4)[[0, 0, 1, 3]]
    assert mode_counts(probs) == (3, pytest.approx(0.5 * math.log(2), rel=1e-12))


def test_stacked_per_channel_modes():
    # [N, 3, 10]: every triple once -> 1000 modes, KL 0; all the same triple -> KL = ln 1000.
    triples = np.array([[i // 100, i // 10 % 10, i % 10] for i in range(1000)])
    probs = np.eye(10)[triples]  # [1000, 3, 10]
    assert mode_counts(probs) == (1000, pytest.approx(0.0, abs=1e-12))
    assert mode_counts(probs[:1].repeat(50, 0)) == (1, pytest.approx(math.log(1000)))


def test_mixture_hand_made_points():
    std = 0.01
    points = np.concatenate(
        [
            np.repeat(RING[[0]], 10, 0),  # 10 exactly at mode 0
            np.repeat(RING[[3]], 5, 0) + [0.0, 0.029],  # 5 within 3 std of mode 3
            np.repeat(RING[[5]], 5, 0),
            np.zeros((4, 2)),  # far from every mode
            RING[[1]] + [0.031, 0.0],  # just outside 3 std of mode 1
        ]
    )
    out = mixture_metrics(points, RING, std)
    # HQ 20 of 25; p̂ = (1/2, 1/4, 1/4) over 3 modes -> KL = ln 8 - 1.5 ln 2 = 1.5 ln 2.
    assert out == {"modes": 3.0, "hq": 0.8, "reverse_kl": pytest.approx(1.5 * math.log(2))}


def test_mixture_perfect_and_empty():
    grid = np.array([[x, y] for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)], float)
    perfect = mixture_metrics(np.repeat(grid, 4, 0), grid, 0.05)
    assert perfect == {"modes": 25.0, "hq": 1.0, "reverse_kl": pytest.approx(0.0, abs=1e-12)}
    empty = mixture_metrics(np.full((10, 2), 1.0), grid, 0.05)  # all 1.0 from the nearest mean
    assert empty == {"modes": 0.0, "hq": 0.0, "reverse_kl": pytest.approx(math.log(25))}


def test_mixture_metric_class():
    metric = METRICS.build("mixture")
    assert metric.needs == {"points"}
    out = metric.compute(np.repeat(RING, 2, 0), None, means=RING, std=0.01)
    assert out == {"mixture_modes": 8.0, "mixture_hq": 1.0, "mixture_reverse_kl": 0.0}
    with pytest.raises(ValueError, match="needs options means"):
        metric.compute(RING, None)


def test_kmeans_diversity():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(10, 5)) * 20
    real = (centres[:, None, :] + rng.normal(size=(10, 50, 5))).reshape(-1, 5)
    h_same, h_real = kmeans_diversity(real.copy(), real, num_clusters=10, seed=0)
    assert h_same == h_real == pytest.approx(math.log(10))
    collapsed = centres[3] + rng.normal(size=(200, 5))
    out = METRICS.build("kmeans_diversity").compute(collapsed, real, seed=0)
    assert out == {
        "kmeans_k10_entropy": 0.0,
        "kmeans_k10_entropy_real": pytest.approx(math.log(10)),
        "kmeans_k10_entropy_ratio": 0.0,
    }


def test_recognized_share_by_hand():
    from gankit.metrics.recognized import Recognized, recognized_share

    probs = np.array([[0.95, 0.05], [0.5, 0.5], [0.1, 0.9], [0.89, 0.11]])
    assert recognized_share(probs) == 0.5  # 0.95 and 0.9 (>=), not 0.5 nor 0.89
    assert recognized_share(probs, threshold=0.5) == 1.0
    assert Recognized().compute(probs) == {"recognized_p0.9": 0.5}
    with pytest.raises(ValueError, match="threshold must lie in"):
        recognized_share(probs, threshold=0.0)


def test_eval_of_stacked_samples_classifies_each_channel(tmp_path):
    """`gankit eval --metrics modes` on stacked_mnist counts triples of channel digits, as
    the benchmark's count_modes does; one grey image per stack would give at most 10."""
    from gankit.benchmarks.stacked_mnist import count_modes
    from gankit.data import load_dataset
    from gankit.evaluation import compute_metrics, evaluate

    x = load_dataset("stacked_mnist").x[:600]
    reference = count_modes(x)
    path = tmp_path / "stacks.npz"
    np.savez(path, x=x.numpy())
    out = evaluate(str(path), against="stacked_mnist", metrics=["modes"], cache=None,
                   extractor="lenet_mnist5k")
    hit = next(v for k, v in out.items() if k.startswith("modes_hit"))
    kl = next(v for k, v in out.items() if k.startswith("modes_kl"))
    # 600 draws of 1,000 equally likely triples: about 1000 (1 - e^-0.6) = 451 distinct
    assert hit == reference["modes"] and 400 < hit < 500
    assert kl == pytest.approx(reference["kl"], rel=1e-9)
    whole = compute_metrics(x, None, ["modes"], "lenet_mnist5k", "stacked_mnist")
    assert next(v for k, v in whole.items() if k.startswith("modes_hit")) <= 10
    with pytest.raises(ValueError, match=r"metrics \['is'\] read one class per image"):
        compute_metrics(x[:8], None, ["is", "modes"], "lenet_mnist5k", "stacked_mnist",
                        per_channel=True)
