"""Atomic checkpoint writes: a crash mid-save never corrupts the last good checkpoint."""

import os

import pytest
import torch

from gankit import api
from gankit.training import checkpoint as ckpt_mod
from gankit.training.checkpoint import list_checkpoints, load_latest, save_checkpoint
from gankit.training.state import build_state
from gankit.utils import io as io_mod
from gankit.utils.io import atomic_write_bytes


def _state():
    cfg = api.make_config("gan", data="ring", overrides=[
        "generator.widths=[8]", "discriminator.widths=[8]", "z_dim=2"])
    return build_state(cfg, api.DataInfo((2,), "points", 8), torch.device("cpu"))


def test_atomic_write_keeps_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"good")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(io_mod.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(path, b"partial")
    assert path.read_bytes() == b"good"
    assert os.listdir(tmp_path) == ["f.bin"]  # no temp file left behind


def test_crash_during_checkpoint_save_keeps_previous(tmp_path, monkeypatch):
    state = _state()
    save_checkpoint(tmp_path, state, keep=3)
    state.step = 7
    with torch.no_grad():
        next(state.G.parameters()).add_(1.0)

    real_save = torch.save

    def crash(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        raise KeyboardInterrupt  # killed after writing part of the new file

    monkeypatch.setattr(ckpt_mod.torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, state, keep=3)
    monkeypatch.undo()
    ckpt, path = load_latest(tmp_path)
    assert path.name == "step_00000000.pt" and ckpt["step"] == 0
    assert not [p for p in os.listdir(tmp_path / "checkpoints") if p.endswith(".tmp")]


def test_corrupt_newest_checkpoint_falls_back_and_prune_keeps_k(tmp_path):
    state = _state()
    for step in range(5):
        state.step = step
        save_checkpoint(tmp_path, state, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000003.pt",
                                                           "step_00000004.pt"]
    list_checkpoints(tmp_path)[-1].write_bytes(b"torn")
    ckpt, path = load_latest(tmp_path)
    assert ckpt["step"] == 3


def test_checkpoint_loads_with_weights_only_and_holds_everything(tmp_path):
    state = _state()
    path = save_checkpoint(tmp_path, state, keep=1)
    ckpt = torch.load(path, weights_only=True)
    for key in ("format_version", "config", "data_info", "step", "G", "D", "G_ema", "g_opt",
                "d_opt", "hooks", "rng", "z_fixed"):
        assert key in ckpt
    assert set(ckpt["rng"]) >= {"torch_cpu", "generator"}
    tensors, meta = ckpt_mod.load_weights(path.with_suffix(".safetensors"))
    assert any(k.startswith("G.") for k in tensors) and any(k.startswith("G_ema.")
                                                            for k in tensors)
    assert '"z_dim": 2' in meta["config"]


def test_disk_full_leaves_the_old_files_and_names_the_path(tmp_path, monkeypatch):
    import errno

    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"good")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io_mod.os, "fsync", full)
    with pytest.raises(OSError) as err:
        atomic_write_bytes(path, b"new")
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(path)
    assert path.read_bytes() == b"good" and os.listdir(tmp_path) == ["f.bin"]


def test_a_pair_of_files_is_replaced_only_when_both_are_written(tmp_path, monkeypatch):
    import errno

    a, b = tmp_path / "a", tmp_path / "b"
    io_mod.atomic_write_all([(a, b"old a"), (b, b"old b")])
    real_fsync, calls = os.fsync, []

    def second_fails(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(io_mod.os, "fsync", second_fails)
    with pytest.raises(OSError, match="No space left"):
        io_mod.atomic_write_all([(a, b"new a"), (b, b"new b")])
    assert (a.read_bytes(), b.read_bytes()) == (b"old a", b"old b")
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]


def test_json_record_is_strict_json_and_reads_back_non_finite_floats(tmp_path):
    import json

    record = {"step": 3, "loss/D": float("nan"), "loss/G": float("inf"), "x": -float("inf"),
              "y": 0.25, "warning": "loss_nonfinite"}
    line = io_mod.json_record(record)
    assert line == ('{"step": 3, "loss/D": "nan", "loss/G": "inf", "x": "-inf", "y": 0.25, '
                    '"warning": "loss_nonfinite"}')

    def no_constants(token):
        raise AssertionError(f"bare {token} is not JSON")

    json.loads(line, parse_constant=no_constants)
    (tmp_path / "log.jsonl").write_text(line + "\n")
    back = io_mod.read_jsonl(tmp_path / "log.jsonl")[0]
    assert back["loss/G"] == float("inf") and back["x"] == -float("inf")
    assert back["loss/D"] != back["loss/D"] and back["y"] == 0.25  # NaN
    assert back["warning"] == "loss_nonfinite"


def test_read_jsonl_drops_a_torn_last_line_and_names_a_corrupt_one(tmp_path, capsys):
    path = tmp_path / "log.jsonl"
    path.write_text('{"step": 1}\n\n{"step": 2, "loss/D": NaN}\n{"step": 3, "lo')
    records = io_mod.read_jsonl(path)
    assert [r["step"] for r in records] == [1, 2] and records[1]["loss/D"] != 0
    assert f"gankit: warning: {path}, line 4:" in capsys.readouterr().err
    path.write_text('{"step": 1}\n{"step": 2\n{"step": 3}\n')
    with pytest.raises(ValueError, match=rf"{path}, line 2: not JSON"):
        io_mod.read_jsonl(path)
