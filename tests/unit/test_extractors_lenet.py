"""The gankit-trained LeNet extractors: shipped weights, accuracy, determinism, loading."""

import json

import numpy as np
import pytest
import torch

from gankit.data import load_dataset
from gankit.evaluation import compute_metrics
from gankit.metrics import inception_score
from gankit.metrics.features import (
    build_extractor,
    load_lenet,
    stratified_split,
    train_and_save_extractor,
    train_classifier,
)
from gankit.metrics.features._download import sha256_file
from gankit.metrics.features.lenet import WEIGHTS_DIR


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist5k")


@pytest.fixture(scope="module")
def lenet():
    return build_extractor("lenet_mnist5k")


@pytest.mark.parametrize("name", ["lenet_mnist5k", "lenet_digits"])
def test_shipped_weights_match_their_json(name):
    report = json.loads((WEIGHTS_DIR / f"{name}.json").read_text())
    assert sha256_file(WEIGHTS_DIR / f"{name}.safetensors") == report["sha256"]
    assert report["dataset"] == name.removeprefix("lenet_")
    assert report["heldout_accuracy"] >= 0.97


def test_mnist5k_heldout_accuracy_and_inception_score(mnist, lenet):
    report = json.loads((WEIGHTS_DIR / "lenet_mnist5k.json").read_text())
    _, heldout = stratified_split(
        mnist.y.numpy(), report["settings"]["holdout"], report["settings"]["seed"]
    )
    assert len(heldout) == report["num_heldout"] == 500
    probs = lenet.probs(mnist.x[heldout])
    accuracy = (probs.argmax(1) == mnist.y[heldout]).double().mean().item()
    assert accuracy == pytest.approx(report["heldout_accuracy"], abs=1e-12)
    assert accuracy >= 0.97
    is_mean, _ = inception_score(probs)
    assert 8.0 < is_mean <= 10.0


def test_shapes_determinism_and_batch_size_independence(mnist, lenet):
    x = mnist.x[::25]  # 200 images
    f1, p1 = lenet.extract(x)
    f2, p2 = lenet.extract(x, batch_size=7)
    assert f1.shape == (200, 128) and p1.shape == (200, 10)
    assert f1.dtype == torch.float32 and (f1 >= 0).all()
    assert not f1.is_inference()  # ordinary tensors: callers may modify them
    torch.testing.assert_close(p1.sum(1), torch.ones(200))
    torch.testing.assert_close(f1, f2, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(p1, p2, rtol=1e-5, atol=1e-6)
    assert torch.equal(lenet.features(x), f1)


def test_metrics_independent_of_batch_size(mnist, lenet):
    fake, real = mnist.x[1::10], mnist.x[::10]
    names, options = ["fid", "kid", "is", "pr", "dc"], {"kid": {"num_subsets": 10}}
    a = compute_metrics(fake, real, names, lenet, "mnist5k", batch_size=500, options=options)
    b = compute_metrics(fake, real, names, lenet, "mnist5k", batch_size=33, options=options)
    assert set(a) >= {"fid_500_mnist5k_lenet", "is_mean_500_mnist5k_lenet"}
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-7, err_msg=key)


def test_input_conversion(mnist, lenet):
    x = mnist.x[:20]
    rgb = x.repeat(1, 3, 1, 1)  # grey as RGB: luma weights sum to 1
    torch.testing.assert_close(lenet.features(rgb), lenet.features(x), rtol=1e-5, atol=1e-5)
    big = torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear")
    assert lenet.features(big).shape == (20, 128)
    with pytest.raises(ValueError, match="uint8"):
        lenet.features(((x + 1) * 127.5).to(torch.uint8))


def test_result_key_names_training_data(lenet):
    assert lenet.result_key("mnist5k") == "lenet"
    assert lenet.result_key("digits") == "lenet_mnist5k"


def test_train_classifier_is_deterministic_and_leaves_global_rng_alone():
    digits = load_dataset("digits")
    x, y = digits.x[:200], digits.y[:200]
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = train_classifier(x, y, 10, seed=1, epochs=1, batch_size=100)
    b = train_classifier(x, y, 10, seed=1, epochs=1, batch_size=100)
    assert torch.equal(torch.get_rng_state(), state)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    c = train_classifier(x, y, 10, seed=2, epochs=1, batch_size=100)
    assert not torch.equal(a.fc2.weight, c.fc2.weight)
    assert a.meta["num_heldout"] == "20" and 0.0 <= float(a.meta["heldout_accuracy"]) <= 1.0


def test_train_and_save_round_trip(tmp_path):
    digits = load_dataset("digits")
    path = tmp_path / "lenet_small.safetensors"
    report = train_and_save_extractor(
        digits.x[:200], digits.y[:200], 10, path, seed=0, dataset_name="digits", epochs=1
    )
    assert report["sha256"] == sha256_file(path)
    assert json.loads(path.with_suffix(".json").read_text()) == report
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    ext = build_extractor(f"lenet:{path}")
    # a classifier of yours: its weights' sha256 prefix, never the shipped one's key
    assert ext.result_key("digits") == f"lenet_{ext.sha256[:8]}"
    assert ext.result_key("mnist5k") == f"lenet_{ext.sha256[:8]}_digits"
    import hashlib

    assert ext.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    model = load_lenet(path)
    x = digits.x[300:310]
    with torch.inference_mode():
        logits = model(torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear"))
    torch.testing.assert_close(ext.probs(x), torch.softmax(logits, 1))


def test_loading_errors(tmp_path):
    with pytest.raises(ValueError, match="needs a weights file: use the spec 'lenet:PATH'"):
        build_extractor("lenet")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_extractor(f"lenet:{tmp_path / 'missing.safetensors'}")
    bad = tmp_path / "lenet_mnist5k.safetensors"
    data = bytearray((WEIGHTS_DIR / "lenet_mnist5k.safetensors").read_bytes())
    data[-1] ^= 0xFF  # flip bits of the last weight
    bad.write_bytes(bytes(data))
    (tmp_path / "lenet_mnist5k.json").write_bytes((WEIGHTS_DIR / "lenet_mnist5k.json").read_bytes())
    with pytest.raises(ValueError, match="checksum mismatch"):
        load_lenet(bad)
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable safetensors"):
        load_lenet(tmp_path / "junk.safetensors")


@pytest.mark.slow
def test_shipped_digits_weights_are_reproducible(tmp_path):
    # The recipe of _make_weights on one thread gives the shipped file bit for bit (same torch
    # build); about 40 s.
    from gankit.metrics.features._make_weights import RECIPES

    report = json.loads((WEIGHTS_DIR / "lenet_digits.json").read_text())
    if report["settings"]["torch"] != torch.__version__:
        pytest.skip(f"shipped weights were trained with torch {report['settings']['torch']}")
    digits = load_dataset("digits")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = train_and_save_extractor(
            digits.x,
            digits.y,
            10,
            tmp_path / "lenet_digits.safetensors",
            dataset_name="digits",
            **RECIPES["digits"],
        )
    finally:
        torch.set_num_threads(threads)
    assert out["sha256"] == report["sha256"]
