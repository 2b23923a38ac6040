"""Faults around a run directory, through the CLI: kills, stray files, a second run on the
same directory, a full disk, a torn log. Each run is a few steps of a tiny DCGAN."""

import errno
import json
import math
import os
import socket
import subprocess
import sys
import textwrap

from gankit.cli import main
from gankit.training.checkpoint import list_checkpoints, load_checkpoint
from gankit.utils import io as io_mod
from gankit.utils.io import json_record

TINY = ["--set", "generator.width=8", "--set", "discriminator.width=8",
        "--set", "train.batch_size=8", "--set", "train.log_interval=2",
        "--set", "train.sample_interval=0", "--set", "train.checkpoint_interval=2",
        "--data", "digits", "--no-progress"]


def _train(run, steps=4, *extra):
    return main(["train", "dcgan", "--steps", str(steps), "--out", str(run), *TINY, *extra])


def _steps(run):
    return [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]


def _one_line_error(capsys, *parts):
    err = capsys.readouterr().err
    line = [ln for ln in err.splitlines() if ln.startswith("gankit: error: ")]
    assert len(line) == 1 and "Traceback" not in err, err
    for part in parts:
        assert part in line[0], line[0]
    return line[0]


def test_a_run_killed_before_its_first_checkpoint_is_replaced(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("killed: true\n")
    (run / "log.jsonl").write_text('{"step": 2, "loss/D": 1.0}\n{"step": 4, "lo')
    (run / ".lock").write_text(json.dumps({"pid": 2 ** 22 + 12345, "host":
                                           socket.gethostname(), "started": "earlier"}))
    assert _train(run) == 0
    err = capsys.readouterr().err
    assert f"gankit: note: {run} holds an unfinished run with no checkpoint" in err
    assert _steps(run) == [2, 4] and "killed" not in (run / "config.yaml").read_text()
    assert not (run / ".lock").exists()
    assert _train(run) == 2  # a run with a checkpoint is still refused
    _one_line_error(capsys, "already holds a run", f"--resume {run}")


def test_out_naming_a_file_or_an_unwritable_directory_is_one_line(tmp_path, capsys,
                                                                  monkeypatch):
    (tmp_path / "file").write_text("mine")
    assert _train(tmp_path / "file") == 2
    _one_line_error(capsys, f"--out {tmp_path / 'file'}", "not a directory")
    assert (tmp_path / "file").read_text() == "mine"
    assert _train(tmp_path / "file" / "run") == 2
    _one_line_error(capsys, f"--out {tmp_path / 'file' / 'run'}")

    from gankit.training import lock as lock_mod

    real_open = os.open

    def denied(path, flags, *args):
        if str(path).endswith(".lock"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(lock_mod.os, "open", denied)
    assert _train(tmp_path / "ro") == 2
    _one_line_error(capsys, f"{tmp_path / 'ro'}", "Permission denied")
    assert not (tmp_path / "ro" / "log.jsonl").exists()


_HOLD = textwrap.dedent("""
    import sys, time
    from gankit.training.lock import run_lock
    with run_lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(60)
""")


def test_a_second_run_on_a_locked_directory_is_refused_and_a_stale_lock_taken_over(
        tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(run)], env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert _train(run) == 2
        _one_line_error(capsys, f"{run} is in use by process {holder.pid} on "
                        f"{socket.gethostname()}")
        assert not (run / "log.jsonl").exists()
    finally:
        holder.kill()  # SIGKILL: its lock stays behind, naming a dead process
        holder.wait()
    assert json.loads((run / ".lock").read_text())["pid"] == holder.pid
    assert _train(run) == 0
    err = capsys.readouterr().err
    assert f"gankit: warning: {run / '.lock'}: taking over the lock of process " \
           f"{holder.pid}" in err
    assert not (run / ".lock").exists()
    # resume takes the lock too: here held by a live process, this one
    (run / ".lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    assert main(["train", "--resume", str(run), "--steps", "6", "--no-progress"]) == 2
    _one_line_error(capsys, f"{run} is in use by process {os.getpid()}")
    assert _steps(run) == [2, 4]


def test_a_lock_of_another_host_is_not_taken_over(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").write_text(json.dumps({"pid": 1, "host": "elsewhere.example",
                                           "started": "2024-01-01T00:00:00+00:00"}))
    assert _train(run) == 2
    _one_line_error(capsys, "process 1 on elsewhere.example", f"rm {run / '.lock'}")
    assert (run / ".lock").exists()


def test_the_lock_is_released_when_training_fails(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run, 4, "--data", "folder:/no/such/dir") == 2
    _one_line_error(capsys, "/no/such/dir")
    assert not (run / ".lock").exists()


def test_resume_after_a_kill_mid_log_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run) == 0
    for f in (run / "checkpoints").glob("step_00000004.*"):
        f.unlink()
    with open(run / "log.jsonl", "a") as f:
        f.write('{"step": 5, "loss/D": 0.')
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--steps", "6", "--no-progress"]) == 0
    assert f"gankit: warning: {run / 'log.jsonl'}, line 3:" in capsys.readouterr().err
    assert _steps(run) == [2, 4, 6]


def test_doctor_reads_a_logged_non_finite_loss(tmp_path, capsys):
    records = [{"step": s, "loss/D": 0.7, "loss/G": 0.7} for s in (100, 200, 300)]
    records[1]["loss/D"] = math.nan
    (tmp_path / "log.jsonl").write_text("".join(json_record(r) + "\n" for r in records))
    assert main(["doctor", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert ("1. non-finite loss (loss_nonfinite): from step 200, still present at the last "
            "record (step 300)") in out
    assert "evidence at step 200: loss/D = nan, loss/G = 0.7" in out


def test_disk_full_while_checkpointing_is_one_line_and_keeps_the_last_checkpoint(
        tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    real_fsync = os.fsync

    def full_at_step_4(fd):
        if "/checkpoints/.step_00000004" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(io_mod.os, "fsync", full_at_step_4)
    assert _train(run) == 2
    line = _one_line_error(capsys)
    assert line.startswith(f"gankit: error: disk full writing {run / 'checkpoints'}"
                           "/step_00000004.")
    assert line.endswith(f"; free space and resume with --resume {run}")
    assert [p.name for p in list_checkpoints(run)] == ["step_00000002.pt"]
    assert sorted(os.listdir(run / "checkpoints")) == ["step_00000002.pt",
                                                       "step_00000002.safetensors"]
    assert not (run / ".lock").exists()
    monkeypatch.undo()
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert load_checkpoint(list_checkpoints(run)[-1])["step"] == 4
    assert _steps(run) == [2, 4]


def test_disk_full_message_for_other_commands(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert _train(run, 2) == 0
    out = tmp_path / "s.png"

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io_mod.os, "fsync", full)
    assert main(["sample", str(run), "--n", "4", "--out", str(out)]) == 2
    _one_line_error(capsys, f"disk full writing {out}; free space and run the command again")
    assert not out.exists() and sorted(os.listdir(tmp_path)) == ["run"]
