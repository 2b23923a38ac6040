"""FID Inception-v3: reference key layout, loading, checksums and the download path, with
synthetic weights (the real 95 MB file is not needed)."""

import functools
import hashlib
import http.server
import threading

import pytest
import torch

from gankit.metrics.features import FIDInceptionV3, build_extractor, resolve_inception_weights
from gankit.metrics.features import inception as inception_module
from gankit.metrics.features._download import download

# A sample of pytorch-fid's pt_inception-2015-12-05-6726825d.pth keys and shapes.
REFERENCE_KEYS = {
    "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
    "Conv2d_1a_3x3.bn.running_var": (32,),
    "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3),
    "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
    "Mixed_5d.branch3x3dbl_3.bn.weight": (96,),
    "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
    "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
    "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
    "Mixed_7b.branch3x3_2b.conv.weight": (384, 384, 3, 1),
    "Mixed_7c.branch3x3dbl_3a.conv.weight": (384, 384, 1, 3),
    "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
    "fc.weight": (1008, 2048),
    "fc.bias": (1008,),
}


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """Random weights in the reference layout, without num_batches_tracked (as old files)."""
    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, value in FIDInceptionV3().state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        if key.endswith("conv.weight"):
            fan_in = value[0].numel()
            value = torch.randn(value.shape, generator=gen) * (2 / fan_in) ** 0.5
        elif key.endswith("bn.bias"):
            value = torch.randn(value.shape, generator=gen) * 0.1
        elif key.startswith("fc."):
            value = torch.randn(value.shape, generator=gen) * 0.02
        state[key] = value
    path = tmp_path_factory.mktemp("inception") / "random_inception.pth"
    torch.save(state, path)
    return path


def test_state_dict_layout_matches_reference():
    state = FIDInceptionV3().state_dict()
    for key, shape in REFERENCE_KEYS.items():
        assert tuple(state[key].shape) == shape, key
    convs = [k for k in state if k.endswith(".conv.weight")]
    assert len(convs) == 94  # Inception-v3's 94 conv layers, no auxiliary head
    assert not any(k.startswith("AuxLogits") for k in state)


def test_features_shapes_determinism_and_batching(weights_file):
    ext = build_extractor("inception_v3_fid", weights=weights_file, expected_sha256=None)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    f1, p1 = ext.extract(x)
    assert f1.shape == (2, 2048) and p1.shape == (2, 1008)
    assert torch.isfinite(f1).all() and (f1 >= 0).all() and f1.abs().sum() > 0
    torch.testing.assert_close(p1.sum(1), torch.ones(2))
    f2 = ext.features(x, batch_size=1)
    torch.testing.assert_close(f1, f2, rtol=1e-4, atol=1e-5)  # batch-size independent
    assert torch.equal(ext.features(x[1:], batch_size=1), f2[1:])  # deterministic
    grey = x[:1, :1]  # 1 channel is repeated to RGB
    torch.testing.assert_close(ext.features(grey), ext.features(grey.repeat(1, 3, 1, 1)))
    assert "bilinear299" in ext.preprocessing and ext.result_key("cifar10") == "inception"


def test_tf_pooling_variants():
    x = torch.ones(1, 1, 3, 3)
    # count_include_pad=False: the corner average of a constant map stays 1.
    assert torch.equal(inception_module._tf_avg_pool(x), x)
    block = FIDInceptionV3().Mixed_7c
    assert block.max_pool and not FIDInceptionV3().Mixed_7b.max_pool


def test_missing_or_wrong_keys_are_clear_errors(weights_file, tmp_path):
    state = torch.load(weights_file, weights_only=True)
    missing = dict(state)
    del missing["Mixed_6b.branch1x1.conv.weight"]
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match=r"missing keys \['Mixed_6b.branch1x1.conv.weight'\]"):
        inception_module.load_inception_v3_fid(tmp_path / "missing.pth", expected_sha256=None)
    wrong = dict(state, **{"fc.weight": torch.zeros(1000, 2048)})
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match=r"wrong shapes \['fc.weight'\]"):
        inception_module.load_inception_v3_fid(tmp_path / "wrong.pth", expected_sha256=None)


def test_checksum_mismatch_is_an_error(weights_file):
    with pytest.raises(ValueError, match="checksum mismatch.*does not start with 6726825d"):
        build_extractor("inception_v3_fid", weights=weights_file)
    with pytest.raises(ValueError, match="checksum mismatch"):
        build_extractor(f"inception_v3_fid:{weights_file}")


def test_missing_file_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.delenv("GANKIT_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        resolve_inception_weights()
    message = str(info.value)
    assert str(tmp_path / inception_module.WEIGHTS_NAME) in message
    assert inception_module.WEIGHTS_URL in message and "GANKIT_INCEPTION_WEIGHTS" in message
    monkeypatch.setenv("GANKIT_INCEPTION_WEIGHTS", str(tmp_path / "nope.pth"))
    with pytest.raises(FileNotFoundError, match="GANKIT_INCEPTION_WEIGHTS"):
        resolve_inception_weights()


def test_env_var_and_cache_are_found(weights_file, tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_INCEPTION_WEIGHTS", str(weights_file))
    assert resolve_inception_weights() == weights_file
    monkeypatch.delenv("GANKIT_INCEPTION_WEIGHTS")
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path))
    cached = tmp_path / inception_module.WEIGHTS_NAME
    cached.write_bytes(b"x")
    assert resolve_inception_weights() == cached


@pytest.fixture
def http_root(tmp_path):
    """A local http.server on 127.0.0.1 serving a folder; yields (folder, base URL)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_download_verifies_and_writes_atomically(http_root, tmp_path):
    root, url = http_root
    payload = bytes(range(256)) * 4000
    (root / "fake.pth").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    dest = tmp_path / "cache" / "fake.pth"
    assert download(f"{url}/fake.pth", dest, digest[:8]) == dest
    assert dest.read_bytes() == payload
    dest.unlink()
    with pytest.raises(ValueError, match="checksum mismatch"):
        download(f"{url}/fake.pth", dest, "00000000")
    assert list(dest.parent.iterdir()) == []  # nothing left behind, not even a temp file
    with pytest.raises(OSError, match="could not download"):
        download(f"{url}/absent.pth", dest, None)


def test_resolve_with_download_rejects_a_wrong_file(http_root, tmp_path, monkeypatch):
    root, url = http_root
    (root / "fake.pth").write_bytes(b"definitely not the inception weights")
    monkeypatch.delenv("GANKIT_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="checksum mismatch"):
        resolve_inception_weights(download=True, url=f"{url}/fake.pth")
    assert not (tmp_path / "cache" / inception_module.WEIGHTS_NAME).exists()
