"""Streamed folder/npz datasets: the same bits as the in-memory reader, batches that do not
depend on the decode workers, the decoded cache and its key, shards, resume."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from gankit import api
from gankit.data import _folder_index, load_dataset
from gankit.data._sampler import BatchSampler
from gankit.data._store import ArrayStore, FileStore
from gankit.data.folder import build_cache
from gankit.training.batches import BatchSource


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def images(tmp_path) -> Path:
    """40 RGB PNGs of varied sizes in two class folders, and one corrupt file."""
    root = tmp_path / "imgs"
    rng = np.random.default_rng(0)
    for i in range(40):
        folder = root / ("cat" if i % 2 else "dog")
        folder.mkdir(parents=True, exist_ok=True)
        h, w = rng.integers(9, 20, size=2)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    (root / "dog" / "broken.png").write_bytes(b"not a png")
    return root


def _train(batch_size=8, d_steps=1, schedule=(), seed=3):
    return SimpleNamespace(batch_size=batch_size, d_steps=d_steps, batch_schedule=schedule,
                           seed=seed)


def _load(root, **kw):
    return load_dataset(f"folder:{root}", resolution=8, **kw)


def test_streamed_folder_is_the_in_memory_one(images):
    memory = _load(images, stream=False, workers=0)
    streamed = _load(images, stream=True, workers=0)
    assert isinstance(memory.x, torch.Tensor) and isinstance(streamed.x, FileStore)
    assert len(streamed) == len(memory) == 40  # the corrupt file skipped in both
    assert streamed.x.shape == memory.x.shape == (40, 3, 8, 8)
    assert torch.equal(streamed.x[:], memory.x)
    assert torch.equal(streamed.y, memory.y) and streamed.class_names == ["cat", "dog"]
    idx = torch.tensor([5, 0, 39, 5])
    assert torch.equal(streamed.x[idx], memory.x[idx])
    assert torch.equal(streamed.x[7], memory.x[7])
    grey = _load(images, stream=True, channels=1, workers=0)
    assert torch.equal(grey.x[:], _load(images, stream=False, channels=1, workers=0).x)


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_batches_equal_in_memory_batches(images, workers):
    memory = _load(images, stream=False, workers=0)
    streamed = _load(images, stream=True, workers=workers)
    train = _train(d_steps=2, schedule=((3, 4),))
    a = BatchSource(memory, train, torch.device("cpu"), conditional=True)
    b = BatchSource(streamed, train, torch.device("cpu"), conditional=True)
    assert b.prefetch == (workers > 0)
    for data_step in range(12):  # the main stream, across the schedule's switch and epochs
        step = data_step // 2
        (xa, ya), (xb, yb) = a.batch(data_step, step), b.batch(data_step, step)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert b._next == (12 if workers else -1)  # with workers, 1..11 came from the prefetch
    # another stream (the unrolled critic's) and a jump back (a rollback) read directly
    for data_step, step in ((1 << 40, 5), (1 << 40 | 1, 5), (4, 2), (5, 2), (6, 3)):
        assert torch.equal(a.batch(data_step, step)[0], b.batch(data_step, step)[0])
    b.close()


def test_cache_equals_decoded_images_and_follows_the_files(images, monkeypatch):
    memory = _load(images, stream=False, workers=0)
    path, n, built = build_cache(str(images), 8, 0)
    assert (n, built) == (40, True)
    cached = np.load(path)
    assert cached.shape == (40, 8, 8, 3) and cached.dtype == np.uint8
    assert torch.equal(torch.from_numpy(cached).permute(0, 3, 1, 2).float() / 127.5 - 1,
                       memory.x)
    streamed = _load(images, stream=True, workers=2)
    assert isinstance(streamed.x, ArrayStore) and torch.equal(streamed.x[:], memory.x)

    decodes = []
    real_read = _folder_index.read_image
    monkeypatch.setattr(_folder_index, "read_image",
                        lambda p, r: decodes.append(p) or real_read(p, r))
    assert build_cache(str(images), 8, 0) == (path, 40, False)  # reused: nothing decoded
    _load(images, stream=True, workers=0)
    assert decodes == []
    # a rewritten file (new size and mtime) gives a new key: rebuilt, the old one deleted
    target = images / "cat" / "1.png"
    Image.fromarray(np.full((12, 12, 3), 200, dtype=np.uint8)).save(target)
    os.utime(target, ns=(1, 1))
    new, n, built = build_cache(str(images), 8, 0)
    assert built and new != path and not path.exists() and len(decodes) == 41
    row = [p.name for p in sorted(images.rglob("*.png"), key=lambda p: p.relative_to(images)
                                  .parts) if p.name != "broken.png"].index("1.png")
    assert (np.load(new)[row] == 200).all()
    # only the mtime changes: rebuilt too
    os.utime(target, ns=(2, 2))
    assert build_cache(str(images), 8, 0)[2]


def test_killed_cache_build_leaves_nothing_used(images, monkeypatch):
    calls = []

    def dying(path, resolution):
        calls.append(path)
        if len(calls) == 10:
            raise KeyboardInterrupt
        return np.zeros((resolution, resolution, 3), dtype=np.uint8)

    monkeypatch.setattr(_folder_index, "read_image", dying)
    with pytest.raises(KeyboardInterrupt):
        build_cache(str(images), 8, 0)
    folder = _folder_index.data_cache_dir()
    assert list(folder.iterdir()) == []  # no cache, no index, no temp file
    monkeypatch.undo()
    os.environ["GANKIT_CACHE"] = str(folder.parent)
    streamed = _load(images, stream=True, workers=0)
    assert isinstance(streamed.x, FileStore)


def test_streamed_corrupt_image_policy(images, capsys):
    _load(images, stream=True, workers=0)
    assert "skipped 1 unreadable image" in capsys.readouterr().err
    _load(images, stream=True, workers=0)  # from the stored index: warned again
    assert "skipped 1 unreadable image" in capsys.readouterr().err
    with pytest.raises(ValueError, match="cannot read image .*broken.png"):
        _load(images, stream=True, strict_images=True, workers=0)


def test_shards_are_slices_of_the_global_batch(images):
    data = _load(images, stream=True, workers=0)
    train = _train(batch_size=12)
    whole = BatchSource(data, train, torch.device("cpu"))
    parts = [BatchSource(data, train, torch.device("cpu"), shard=(r, 3)) for r in range(3)]
    expected = data.x[BatchSampler(40, 12, 3).indices(4)]
    assert torch.equal(whole.batch(4, 4)[0], expected)
    for rank, part in enumerate(parts):
        assert part.size(0) == 12  # the global batch; local() takes the rows
        assert torch.equal(part.batch(4, 4)[0], expected[4 * rank:4 * rank + 4])
    with pytest.raises(ValueError, match="batch size 12 .* does not divide by the 5"):
        BatchSource(data, train, torch.device("cpu"), shard=(0, 5))
    with pytest.raises(ValueError, match="shard must be"):
        BatchSource(data, train, torch.device("cpu"), shard=(2, 2))


def test_streamed_npz_equals_in_memory(tmp_path):
    rng = np.random.default_rng(1)
    cases = {"u8": rng.integers(0, 256, (30, 3, 12, 10), dtype=np.uint8),
             "unit": rng.random((30, 9, 9, 1)).astype(np.float32),
             "nhw": rng.uniform(-1, 1, (30, 7, 7)).astype(np.float64)}
    for name, x in cases.items():
        path = tmp_path / f"{name}.npz"
        np.savez(path, x=x, y=np.arange(30) % 4)
        for kw in ({}, {"resolution": 6, "channels": 3}, {"resolution": 5, "channels": 1}):
            a = load_dataset(f"npz:{path}", stream=False, **kw)
            b = load_dataset(f"npz:{path}", stream=True, **kw)
            assert isinstance(b.x, ArrayStore), name
            assert b.x.shape == a.x.shape and torch.equal(b.x[:], a.x), (name, kw)
            assert torch.equal(b.y, a.y) and b.num_classes == 4
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.full((3, 4, 4), 2.5, dtype=np.float32))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\] or \[-1, 1\]"):
        load_dataset(f"npz:{bad}", stream=True)



def test_compressed_npz_is_decompressed_once_into_the_cache(tmp_path, capsys):
    from gankit import cli

    x = np.random.default_rng(2).integers(0, 256, (20, 6, 6, 3), dtype=np.uint8)
    packed = tmp_path / "packed.npz"
    np.savez_compressed(packed, x=x)
    memory = load_dataset(f"npz:{packed}", stream=False).x
    first = load_dataset(f"npz:{packed}", stream=True).x
    assert isinstance(first, ArrayStore) and torch.equal(first[:], memory)
    extracted = Path(first.path)
    assert extracted.parent == _folder_index.data_cache_dir()
    assert np.array_equal(np.load(extracted), x)
    stamp = extracted.stat().st_mtime_ns
    assert load_dataset(f"npz:{packed}", stream=True).x.path == str(extracted)
    assert extracted.stat().st_mtime_ns == stamp  # reused, not written again
    os.utime(packed, ns=(5, 5))  # the archive changed: extracted again, the old one deleted
    assert cli.main(["data", "cache", f"npz:{packed}"]) == 0
    assert capsys.readouterr().out.startswith("built: ")
    assert not extracted.exists()
    plain = tmp_path / "plain.npz"
    np.savez(plain, x=x)
    assert cli.main(["data", "cache", f"npz:{plain}"]) == 0  # mapped in place
    assert capsys.readouterr().out.startswith(f"up to date: {plain}")


def test_resume_with_workers_equals_uninterrupted(images, tmp_path):
    sets = ["data.resolution=16", "data.stream=true", "data.workers=2", "train.batch_size=8",
            "train.sample_interval=0", "train.checkpoint_interval=1", "train.log_interval=1",
            "train.num_samples=4", "generator.width=8", "discriminator.width=8", "z_dim=8",
            "hooks.ema=null"]
    data = f"folder:{images}"
    full = api.train("dcgan", out=tmp_path / "full", data=data, steps=3, overrides=sets,
                     progress=False)
    api.train("dcgan", out=tmp_path / "half", data=data, steps=1, overrides=sets,
              progress=False)
    half = api.resume(tmp_path / "half", steps=3, overrides=["data.workers=0"],
                      progress=False)
    for a, b in zip(full.state.G.state_dict().values(), half.state.G.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(full.state.D.state_dict().values(), half.state.D.state_dict().values()):
        assert torch.equal(a, b)


def test_evaluation_reads_at_most_n_streamed_images(images, monkeypatch):
    from gankit import evaluation

    taken = []
    real_take = FileStore.take
    monkeypatch.setattr(FileStore, "take",
                        lambda self, idx: taken.append(len(idx)) or real_take(self, idx))
    monkeypatch.setattr(evaluation, "load_dataset",
                        lambda spec, **kw: load_dataset(spec, stream=True, workers=0, **kw))
    fake = torch.rand(10, 3, 8, 8) * 2 - 1
    _, rows, _ = evaluation._reference(f"folder:{images}", fake, None, True, False)
    assert taken == [10] and rows.shape == (10, 3, 8, 8)
    memory = _load(images, stream=False, workers=0).x
    assert any(torch.equal(rows[0], row) for row in memory)


def test_self_conditioning_features_of_a_store_equal_the_tensors(images):
    from gankit.training.self_condition import SelfConditioner

    streamed = _load(images, stream=True, workers=0)
    D = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten())
    D.body = D.forward
    sc = SelfConditioner(clusters=2, dim=0, batch_size=7)  # blocks that straddle the rows
    assert torch.equal(sc.features(D, streamed.x), sc.features(D, streamed.x[:]))


def test_data_cache_command(images, capsys):
    from gankit import cli

    assert cli.main(["data", "cache", f"folder:{images}", "--resolution", "8",
                     "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("built: ") and "(40 images at 8x8, " in out
    assert cli.main(["data", "cache", f"folder:{images}", "--resolution", "8"]) == 0
    assert capsys.readouterr().out.startswith("up to date: ")
    assert cli.main(["data", "cache", "npz:x.npz"]) == 2
    assert "npz:x.npz: no such file" in capsys.readouterr().err
    assert cli.main(["data", "cache", "mnist5k"]) == 2
    assert "takes folder:PATH or npz:PATH, got 'mnist5k'" in capsys.readouterr().err
    assert cli.main(["data", "cache", f"folder:{images}", "--resolution", "0"]) == 2


def test_reading_options_are_checked_and_may_change_on_resume():
    from gankit import config as C

    with pytest.raises(ValueError, match="data.workers must be >= 0"):
        api.make_config("dcgan", overrides=["data.workers=-1"])
    with pytest.raises(TypeError, match="data.stream"):
        api.make_config("dcgan", overrides=["data.stream=maybe"])
    assert not C.is_architecture_key("data.workers") and not C.is_architecture_key("data.stream")
    assert C.is_architecture_key("data.resolution")


def test_an_unwritable_cache_is_a_clear_error_or_a_warning(images, tmp_path, monkeypatch,
                                                            capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("GANKIT_CACHE", str(blocker))  # data/ cannot be created under a file
    with pytest.raises(ValueError, match="cannot create the data cache .*set GANKIT_CACHE"):
        build_cache(str(images), 8, 0)
    streamed = _load(images, stream=True, workers=0)  # still loads, without keeping its scan
    assert len(streamed) == 40
    assert "the folder's scan is not kept" in capsys.readouterr().err
