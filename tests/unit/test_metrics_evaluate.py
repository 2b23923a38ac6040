"""The evaluation glue: protocol keys, registry conventions, caching of real features."""

import importlib

import numpy as np
import pytest
import torch

import gankit.metrics as metrics
from gankit.evaluation import compute_metrics, evaluate_features
from gankit.metrics import format_count, protocol_key
from gankit.metrics.features import build_extractor
from gankit.registry import EXTRACTORS, METRICS

EXPECTED_METRICS = {
    "fid",
    "kid",
    "is",
    "pr",
    "dc",
    "modes",
    "memorization",
    "kmeans_diversity",
    "mixture",
}


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (10_000, "10k"),
        (2500, "2.5k"),
        (500, "500"),
        (50_000, "50k"),
        (1234, "1.234k"),
        (1_000_000, "1M"),
        (26_000, "26k"),
        (1, "1"),
    ],
)
def test_format_count(n, text):
    assert format_count(n) == text


def test_protocol_key():
    assert protocol_key("fid", 10_000, "mnist5k", "lenet") == "fid_10k_mnist5k_lenet"
    assert protocol_key("kid_mean", 2500, "ring", "raw") == "kid_mean_2.5k_ring_raw"
    with pytest.raises(ValueError, match="positive integer"):
        protocol_key("fid", 0, "mnist5k", "lenet")
    with pytest.raises(ValueError, match="dataset"):
        protocol_key("fid", 10, "", "lenet")


def test_every_metric_module_registers_one_metric():
    assert set(METRICS.names()) >= EXPECTED_METRICS
    for name in EXPECTED_METRICS:
        metric = METRICS.build(name)
        assert metric.needs and metric.needs <= {"features", "probs", "points"}
    for module in metrics.MODULES:
        if module == "features":
            continue
        mod = importlib.import_module(f"gankit.metrics.{module}")
        registered = [n for n in METRICS.names() if METRICS.get(n).__module__ == mod.__name__]
        assert len(registered) == 1, (module, registered)
    assert set(EXTRACTORS.names()) >= {
        "raw",
        "inception_v3_fid",
        "lenet",
        "lenet_mnist5k",
        "lenet_digits",
    }


def test_unknown_names_suggest_the_closest():
    with pytest.raises(ValueError, match="Did you mean 'fid'"):
        compute_metrics(torch.zeros(4, 2), torch.zeros(4, 2), ["fdi"], "raw", "ring")
    with pytest.raises(ValueError, match="Did you mean 'lenet_digits'"):
        build_extractor("lenet_digit")


def _clouds(seed=0, n=400, d=6):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) + 0.3, torch.randn(n + 100, d, generator=g)


def test_compute_metrics_keys_and_values_match_direct_calls(tmp_path):
    fake, real = _clouds()
    out = compute_metrics(
        fake,
        real,
        ["fid", "kid", "pr", "dc", "memorization"],
        "raw",
        "blobs",
        cache_dir=tmp_path,
        seed=3,
        options={"kid": {"subset_size": 100}},
    )
    direct = evaluate_features(
        {"features": fake.numpy()},
        {"features": real.numpy()},
        ["fid", "kid", "pr", "dc", "memorization"],
        seed=3,
        options={"kid": {"subset_size": 100}},
    )
    assert out == {f"{k}_400_blobs_raw": v for k, v in direct.items()}
    assert set(direct) == {
        "fid",
        "kid_sub100_mean",
        "kid_sub100_std",
        "pr_k3_precision",
        "pr_k3_recall",
        "dc_k5_density",
        "dc_k5_coverage",
        "memorization_fraction",
        "memorization_median_ratio",
    }


def test_real_features_are_cached_atomically(tmp_path):
    fake, real = _clouds(1)
    extractor = build_extractor("raw")
    calls = []
    original = extractor.extract

    def counting_extract(x, *args, **kwargs):
        calls.append(len(x))
        return original(x, *args, **kwargs)

    extractor.extract = counting_extract
    first = compute_metrics(fake, real, ["fid", "pr"], extractor, "blobs", cache_dir=tmp_path)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"  # no temp files left behind
    with np.load(files[0]) as data:
        assert {"features", "summary__fid__mu", "summary__fid__sigma"} <= set(data.files)
    second = compute_metrics(fake, real, ["fid", "pr"], extractor, "blobs", cache_dir=tmp_path)
    assert first == second
    assert calls == [400, 500, 400]  # the real set was extracted once
    # other real data with the same name and size gets its own cache entry
    compute_metrics(fake, real + 1, ["fid"], extractor, "blobs", cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2 and calls[-1] == 500


def test_mixture_through_compute_metrics():
    means = np.array([[0.0, 0.0], [1.0, 0.0]])
    points = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    out = compute_metrics(
        points, None, ["mixture"], "raw", "pair", options={"mixture": {"means": means, "std": 0.01}}
    )
    assert out == {
        "mixture_modes_4_pair_raw": 2.0,
        "mixture_hq_4_pair_raw": 0.75,
        "mixture_reverse_kl_4_pair_raw": pytest.approx(
            np.log(2) + (np.log(1 / 3) / 3 + 2 / 3 * np.log(2 / 3))
        ),
    }


def test_argument_errors():
    fake, real = _clouds()
    with pytest.raises(ValueError, match="no classifier head"):
        compute_metrics(fake, real, ["is"], "raw", "blobs")
    with pytest.raises(ValueError, match="n=10 but fake_x holds 400"):
        compute_metrics(fake, real, ["fid"], "raw", "blobs", n=10)
    with pytest.raises(ValueError, match="real_x=None"):
        compute_metrics(fake, None, ["fid"], "raw", "blobs")
    with pytest.raises(ValueError, match="not requested"):
        compute_metrics(fake, real, ["fid"], "raw", "blobs", options={"pr": {"k": 5}})
    with pytest.raises(ValueError, match="twice"):
        compute_metrics(fake, real, ["fid", "fid"], "raw", "blobs")


def test_quantize_8bit_by_hand():
    from gankit.utils.images import quantize_8bit

    x = torch.tensor([-1.0, -0.999, 0.0, 0.5, 1.0, 1.3, -2.0, 0.00392])
    # (x + 1) * 127.5 = 0, 0.1275, 127.5, 191.25, 255, 293.25, -127.5, 127.9998: rounded
    # (half to even) to 0, 0, 128, 191, 255, 255 (clamped), 0 (clamped), 128 of 255
    levels = torch.tensor([0, 0, 128, 191, 255, 255, 0, 128], dtype=torch.float64)
    out = quantize_8bit(x.view(1, 1, 2, 4))
    assert out.dtype == torch.float32 and out.shape == (1, 1, 2, 4)
    torch.testing.assert_close(out.flatten().double(), levels * 2 / 255 - 1,
                               rtol=0, atol=1e-7)
    assert quantize_8bit(out).equal(out)  # already on the 8-bit grid: unchanged
    # 8-bit data as the readers scale it (p / 127.5 - 1) is left bit for bit as it is
    levels = torch.arange(256).float() / 127.5 - 1
    assert quantize_8bit(levels).equal(levels)


def _images(seed, n=60):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 4, 4, generator=g) * 2 - 1).float()


def test_generated_images_are_quantized_before_features_unless_asked_not_to():
    from gankit.utils.images import quantize_8bit

    fake, real = _images(0), quantize_8bit(_images(1))
    names, ext = ["fid", "kid", "pr"], "raw"
    plain = compute_metrics(fake, real, names, ext, "blobs")
    # a sample and its 8-bit copy give identical features, hence identical metrics
    assert plain == compute_metrics(quantize_8bit(fake), real, names, ext, "blobs")
    assert "fid_60_blobs_raw" in plain
    floats = compute_metrics(fake, real, names, ext, "blobs", quantize=False)
    # unquantised results carry their own tag, and differ
    assert set(floats) == {k + "_float" for k in plain}
    assert floats["fid_60_blobs_raw_float"] != plain["fid_60_blobs_raw"]
    assert floats["fid_60_blobs_raw_float"] == compute_metrics(
        fake, real, ["fid"], ext, "blobs", quantize=False)["fid_60_blobs_raw_float"]


def test_points_are_never_quantized():
    fake, real = _clouds(2)
    fake = fake / 10  # inside [-1, 1], where 8-bit rounding would move them
    for quantize in (True, False):
        out = compute_metrics(fake, real, ["fid"], "raw", "blobs", quantize=quantize)
        assert set(out) == {"fid_400_blobs_raw"}
        assert out["fid_400_blobs_raw"] == evaluate_features(
            {"features": fake.numpy()}, {"features": real.numpy()}, ["fid"])["fid"]


def test_non_finite_inputs_are_refused_naming_the_first():
    fake, real = _images(0), _images(1)
    fake[5, 0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"fake_x\[5, 0, 1, 2\] \(sample 5\) is nan"):
        compute_metrics(fake, real, ["fid"], "raw", "blobs")
    points = torch.zeros(10, 2)
    points[7, 1] = float("inf")
    with pytest.raises(ValueError, match=r"real_x\[7, 1\] \(row 7, column 1\) is inf"):
        compute_metrics(torch.zeros(10, 2), points, ["fid"], "raw", "blobs")
