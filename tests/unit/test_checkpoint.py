"""Checkpoints and run files: atomic writes (a crash or a full disk never corrupts the last good
checkpoint), which checkpoints count, non-finite states, the records of log.jsonl."""

import errno
import json
import math
import os

import pytest
import torch
from safetensors.torch import save_file

from gankit import api
from gankit.training import checkpoint as ckpt_mod
from gankit.training.checkpoint import list_checkpoints, load_latest, save_checkpoint
from gankit.training.state import build_state
from gankit.utils import io as io_mod
from gankit.utils.io import atomic_write_bytes, truncate_log


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
    assert math.isnan(back["loss/D"]) and back["y"] == 0.25
    assert back["warning"] == "loss_nonfinite"


def test_read_jsonl_drops_a_torn_last_line_and_names_a_corrupt_one(tmp_path, capsys):
    path = tmp_path / "log.jsonl"
    path.write_text('{"step": 1}\n\n{"step": 2, "loss/D": NaN}\n{"step": 3, "lo')
    records = io_mod.read_jsonl(path)
    assert [r["step"] for r in records] == [1, 2] and math.isnan(records[1]["loss/D"])
    assert f"gankit: warning: {path}, line 4:" in capsys.readouterr().err
    path.write_text('{"step": 1}\n{"step": 2\n{"step": 3}\n')
    with pytest.raises(ValueError, match=rf"{path}, line 2: not JSON"):
        io_mod.read_jsonl(path)


def _step_optimiser(state):
    """One Adam step of D, so d_opt holds exp_avg / exp_avg_sq tensors."""
    loss = sum(p.sum() for p in state.D.parameters())
    loss.backward()
    state.d_opt.step()


@pytest.mark.parametrize("where, name", [
    ("D", "D.body.1.weight"), ("G", "G.net.0.weight"), ("G_ema", "G_ema.net.0.weight"),
    ("d_opt", "d_opt.state.0.exp_avg")])
def test_save_refuses_a_non_finite_tensor_and_writes_nothing(tmp_path, where, name):
    state = _state()
    _step_optimiser(state)
    save_checkpoint(tmp_path, state, keep=3)
    before = sorted(os.listdir(tmp_path / "checkpoints"))
    state.step = 1
    with torch.no_grad():
        if where == "d_opt":
            tensor = state.d_opt.state[next(state.D.parameters())]["exp_avg"]
        else:
            tensor = next(getattr(state, where).parameters())
        tensor.view(-1)[1] = float("nan") if where != "G" else float("inf")
    with pytest.raises(ckpt_mod.NonFiniteStateError,
                       match=rf"{name} holds non-finite .* the last checkpoint, step 0, is kept"):
        save_checkpoint(tmp_path, state, keep=3)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == before
    assert issubclass(ckpt_mod.NonFiniteStateError, ValueError)


def _saved(tmp_path, steps, keep=5):
    state = _state()
    for step in steps:
        state.step = step
        save_checkpoint(tmp_path, state, keep=keep)
    return state


def test_incomplete_mismatched_and_junk_checkpoints_are_skipped_with_a_warning(
        tmp_path, capsys):
    _saved(tmp_path, [1, 2])
    folder = tmp_path / "checkpoints"
    (folder / "step_99999999.pt").write_bytes(b"junk")  # no partner, not a checkpoint
    (folder / "step_00000005.pt").write_bytes((folder / "step_00000002.pt").read_bytes())
    for suffix in (".pt", ".safetensors"):  # a copy whose content is step 1, named step 7
        (folder / f"step_00000007{suffix}").write_bytes(
            (folder / f"step_00000001{suffix}").read_bytes())
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000001.pt",
                                                           "step_00000002.pt"]
    err = capsys.readouterr().err
    for name in ("step_99999999.pt", "step_00000005.pt", "step_00000007.pt"):
        assert f"gankit: warning: {folder / name}" in err
    assert "no step_00000005.safetensors" in err and "holds step 1" in err
    ckpt, path = load_latest(tmp_path)
    assert (ckpt["step"], path.name) == (2, "step_00000002.pt")
    assert api.load(tmp_path).step == 2


def test_prune_keeps_the_last_k_complete_checkpoints_whatever_else_is_there(tmp_path):
    _saved(tmp_path, [1, 2])
    folder = tmp_path / "checkpoints"
    (folder / "step_99999999.pt").write_bytes(b"junk")
    _saved(tmp_path, [3], keep=1)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000003.pt"]
    assert sorted(os.listdir(folder)) == ["step_00000003.pt", "step_00000003.safetensors",
                                          "step_99999999.pt"]  # not ours to delete


def test_prune_removes_orphaned_safetensors(tmp_path):
    _saved(tmp_path, [1, 2])
    (tmp_path / "checkpoints" / "step_00000001.pt").unlink()  # a prune killed half-way
    _saved(tmp_path, [3], keep=2)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == [
        "step_00000002.pt", "step_00000002.safetensors",
        "step_00000003.pt", "step_00000003.safetensors"]


@pytest.mark.parametrize("half", [".pt", ".safetensors"])
def test_a_corrupt_half_of_the_newest_checkpoint_is_skipped_by_resume_and_load(
        tmp_path, capsys, half):
    _saved(tmp_path, [1, 2])
    torn = tmp_path / "checkpoints" / f"step_00000002{half}"
    torn.write_bytes(torn.read_bytes()[:200])
    assert api.load(tmp_path).step == 1
    assert f"gankit: warning: {torn.with_suffix('.pt')}" in capsys.readouterr().err
    ckpt, path = load_latest(tmp_path)
    assert (ckpt["step"], path.name) == (1, "step_00000001.pt")
    assert f"{torn.with_suffix('.pt')}" in capsys.readouterr().err


def test_stale_temp_files_are_removed_on_save_and_nothing_else(tmp_path):
    _saved(tmp_path, [1])
    folder = tmp_path / "checkpoints"
    stale = [".step_00000002.pt.k2_9xq0a.tmp", ".step_00000002.safetensors.abcdefgh.tmp"]
    others = ["notes.tmp", ".step_00000002.pt.tmp", "step_00000002.pt.abcdefgh.tmp", "x.txt"]
    for name in stale + others:
        (folder / name).write_bytes(b"partial")
    _saved(tmp_path, [2])
    assert sorted(os.listdir(folder)) == sorted(
        others + [f"step_0000000{s}{x}" for s in (1, 2) for x in (".pt", ".safetensors")])


def test_resume_refuses_a_non_finite_checkpoint_written_before_the_check(tmp_path):
    _saved(tmp_path, [2, 4])
    path = tmp_path / "checkpoints" / "step_00000004.pt"
    ckpt = torch.load(path, weights_only=True)
    ckpt["d_opt"]["state"] = {0: {"exp_avg": torch.tensor([0.0, math.inf])}}
    torch.save(ckpt, path)
    with pytest.raises(ckpt_mod.NonFiniteStateError,
                       match=r"step_00000004.pt: d_opt.state.0.exp_avg holds non-finite .*"
                             r"kept steps: 2, 4\), move step_00000004.pt and "
                             r"step_00000004.safetensors out of"):
        load_latest(tmp_path)


def test_load_refuses_non_finite_weights_naming_the_file_and_the_kept_steps(tmp_path):
    _saved(tmp_path, [2, 4])
    path = tmp_path / "checkpoints" / "step_00000004.safetensors"
    tensors, meta = ckpt_mod.load_weights(path)
    tensors["G_ema.net.0.weight"][0, 0] = float("nan")
    save_file(tensors, path, metadata=meta)
    with pytest.raises(ValueError) as err:
        api.load(tmp_path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    assert "G_ema.net.0.weight" in message and "kept steps: 2, 4" in message
    assert "step=2" in message
    assert api.load(tmp_path, step=2).step == 2


def test_write_log_writes_strict_json(tmp_path):
    from gankit.training.outputs import RunOutputs

    RunOutputs(tmp_path).log({"step": 2, "loss/D": float("nan")})
    assert (tmp_path / "log.jsonl").read_text() == '{"step": 2, "loss/D": "nan"}\n'


def test_truncate_log_drops_a_torn_line_and_later_records(tmp_path, capsys):
    path = tmp_path / "log.jsonl"
    path.write_text('{"step": 2, "loss/D": NaN}\n{"step": 4}\n{"step": 6}\n{"step": 8, "l')
    truncate_log(path, 4)
    assert path.read_text() == '{"step": 2, "loss/D": "nan"}\n{"step": 4}\n'
    assert f"{path}, line 4" in capsys.readouterr().err
