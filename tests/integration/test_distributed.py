"""Data-parallel training with 2 processes on the CPU (gloo): equal to one process with the
same global batch, exact resume, rank 0 alone writes, a crashed rank ends the job.

The 2-process runs are forked from the test process (torch is imported once) with
torchrun's environment variables; the crash test runs the real torchrun.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gankit import api
from gankit.training.faults import TrainingInterrupted

# BatchNorm-free MLPs on the ring: per-sample outputs do not depend on the batch, so 2 x 16
# is the global batch of 32 exactly (up to float summation order)
BASE = ["data.name=ring", "train.device=cpu", "train.batch_size=32", "generator.batch_norm=false",
        "generator.widths=[32,32]", "discriminator.widths=[32,32]", "train.log_interval=1",
        "train.sample_interval=0"]
CRASH_WORKER = Path(__file__).with_name("_crashing_worker.py")
pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or not torch.distributed.is_available(),
    reason="forks gloo processes: Linux with torch.distributed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, size: int, port: int, call: str, dump: Path | None,
            kwargs: dict) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(size), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    try:
        s = getattr(api, call)(progress=False, **kwargs).state
    except TrainingInterrupted as exc:  # the step each rank stopped at
        (dump / f"stopped{rank}").write_text(str(exc.step))
        os._exit(0)
    if dump is not None:  # every rank's networks, to compare them
        torch.save({n: getattr(s, n).state_dict() for n in ("G", "D", "G_ema")},
                   dump / f"rank{rank}.pt")
    os._exit(0)  # skip the forked test process's exit handlers


def _parallel(call: str, size: int = 2, timeout: float = 90.0, dump: Path | None = None,
              started=None, **kwargs) -> None:
    """``api.<call>(**kwargs)`` in ``size`` forked processes, as torchrun would start them;
    ``started(processes)`` is called once they run."""
    ctx = multiprocessing.get_context("fork")
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, size, port, call, dump, kwargs))
             for r in range(size)]
    for p in procs:
        p.start()
    if started is not None:
        started(procs)
    deadline = time.monotonic() + timeout
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    alive = [p for p in procs if p.is_alive()]
    for p in alive:
        p.kill()
    assert not alive, f"{call} with {size} processes did not finish in {timeout} s"
    assert [p.exitcode for p in procs] == [0] * size


def _weights(run: Path, step: int) -> dict:
    return load_file(run / "checkpoints" / f"step_{step:08d}.safetensors")


def _files(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def plain_runs(tmp_path_factory):
    """One step of the BN-free net with 1 process (batch 32) and with 2 (2 x 16)."""
    root = tmp_path_factory.mktemp("ddp")
    over = [*BASE, "train.steps=1"]
    api.train("gan", out=root / "one", overrides=over, progress=False)
    (root / "dump").mkdir()
    _parallel("train", preset="gan", out=root / "two", overrides=over, dump=root / "dump")
    return root / "one", root / "two"


def test_two_processes_equal_one_process_with_the_global_batch(plain_runs):
    one, two = (_weights(r, 1) for r in plain_runs)
    assert one.keys() == two.keys()
    init = api.build_state(api.make_config("gan", overrides=BASE),
                           api.DataInfo((2,), "points", 0), torch.device("cpu"))
    moved = 0.0
    for k, v in one.items():
        torch.testing.assert_close(two[k], v, rtol=0, atol=1e-6, msg=k)
        if k.startswith("G."):  # the step changed the weights: the comparison is not vacuous
            moved = max(moved, float((v - init.G.state_dict()[k[2:]]).abs().max()))
    assert moved > 1e-5


def test_every_rank_holds_the_same_networks_ema_included(plain_runs):
    ranks = [torch.load(plain_runs[1].parent / "dump" / f"rank{r}.pt", weights_only=True)
             for r in (0, 1)]
    saved = _weights(plain_runs[1], 1)
    for net in ("G", "D", "G_ema"):
        for k, v in ranks[0][net].items():
            assert torch.equal(ranks[1][net][k], v), f"{net}.{k}"
            if net != "D":  # the weights file holds G and G_ema
                assert torch.equal(saved[f"{net}.{k}"], v), f"{net}.{k}"


def test_only_rank_0_writes(plain_runs):
    one, two = plain_runs
    assert _files(two) == _files(one)
    assert (two / "log.jsonl").read_text().count("\n") == 1  # one record, not one per rank


@pytest.mark.parametrize("extra, name", [
    ("regularizers={r1: {}}", "r1:"), ("regularizers={gradient_penalty: {}}", "gradient_penalty:"),
    ("augmentations={instance_noise: {std: 0.5}}", "instance_noise:"),
    ("generator.conditioning=concat", "conditioning: concat"),
    ("train.d_steps=3", "d_steps: 3"), ("train.unrolled_steps=2", "unrolled_steps: 2"),
    ("self_condition.clusters=3", "clusters: 3")])
def test_loop_features_under_two_processes_equal_one_process(tmp_path, extra, name):
    """Double backward (R1, GP) through averaged gradients; GP's interpolation weights,
    the noise and the fake labels of a conditional run drawn for the global batch; several
    D updates per step; the unrolled (first-order) critic copy's updates averaged too;
    self-conditioning's clusters (rank 0's, sent to the others)."""
    over = [*BASE, "train.steps=1", extra, "train.unrolled_order=1"]
    if extra.startswith(("generator", "self_condition")):  # the ring's modes, or clusters
        over += ["generator.conditioning=concat", "discriminator.conditioning=projection"]
    api.train("gan", out=tmp_path / "one", overrides=over, progress=False)
    _parallel("train", preset="gan", out=tmp_path / "two", overrides=over)
    one, two = _weights(tmp_path / "one", 1), _weights(tmp_path / "two", 1)
    assert name in (tmp_path / "two" / "config.yaml").read_text()
    for k, v in one.items():
        torch.testing.assert_close(two[k], v, rtol=0, atol=1e-6, msg=k)


def test_two_process_resume_is_bitwise_exact(tmp_path):
    over = [*BASE, "train.steps=4", "train.checkpoint_interval=2"]
    _parallel("train", preset="gan", out=tmp_path / "full", overrides=over)
    shutil.copytree(tmp_path / "full", tmp_path / "cut")
    for p in (tmp_path / "cut" / "checkpoints").glob("step_00000004.*"):
        p.unlink()
    _parallel("resume", run_dir=tmp_path / "cut", steps=4)
    full, resumed = _weights(tmp_path / "full", 4), _weights(tmp_path / "cut", 4)
    assert full.keys() == resumed.keys()
    for k, v in full.items():
        assert torch.equal(resumed[k], v), k


def test_resume_with_another_number_of_processes_says_what_changes(tmp_path, capsys):
    over = [*BASE, "train.steps=4", "train.checkpoint_interval=2"]
    _parallel("train", preset="gan", out=tmp_path / "full", overrides=over)
    for p in (tmp_path / "full" / "checkpoints").glob("step_00000004.*"):
        p.rename(p.with_name(p.name.replace("step_", "two_")))
    api.resume(tmp_path / "full", steps=4, progress=False)
    assert "the checkpoint was trained by 2 process(es), this run has 1: the global batch " \
        "(32), its data order and the latents stay the same" in capsys.readouterr().err
    ckpt = tmp_path / "full" / "checkpoints"
    two, one = load_file(ckpt / "two_00000004.safetensors"), _weights(tmp_path / "full", 4)
    for k, v in two.items():  # BN-free: the same run up to float rounding
        torch.testing.assert_close(one[k], v, rtol=0, atol=1e-6, msg=k)


def test_a_signal_to_one_rank_stops_all_after_the_same_step(tmp_path):
    run = tmp_path / "run"

    def signal_rank_1(procs):
        deadline = time.monotonic() + 60
        while not (run / "log.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # training has started: a step was logged
        os.kill(procs[1].pid, signal.SIGTERM)

    _parallel("train", preset="gan", out=run, dump=tmp_path, started=signal_rank_1,
              overrides=[*BASE, "train.steps=100000"])
    steps = {(tmp_path / f"stopped{r}").read_text() for r in (0, 1)}
    assert len(steps) == 1  # both ranks stopped after the same step
    step = int(steps.pop())
    assert 1 <= step < 100000
    assert (run / "checkpoints" / f"step_{step:08d}.safetensors").is_file()


def test_a_crashed_rank_ends_the_job_with_a_message(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GANKIT_DIST_TIMEOUT": "30",
           "GANKIT_TEST_CRASH_RANK": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", str(CRASH_WORKER), "train", "gan", "--out", str(tmp_path / "run"), "--steps",
           "6", "--no-progress", *[a for kv in BASE for a in ("--set", kv)]]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert time.monotonic() - start < 60
    assert proc.returncode != 0
    assert "the process of rank 1 of 2 failed: RuntimeError: injected failure" in proc.stderr
    assert "the process of rank 0 of 2 stopped: another process failed" in proc.stderr
    assert not list((tmp_path / "run").glob("checkpoints/*"))


def test_nproc_checks_the_config_before_starting_processes(tmp_path, capsys):
    from gankit.cli import main

    code = main(["train", "gan", "--out", str(tmp_path / "r"), "--nproc", "3",
                 *[a for kv in BASE for a in ("--set", kv)]])
    assert code == 2
    assert "train.batch_size (and batch_schedule) 32 is the global batch, split evenly over " \
        "3 processes; use a multiple of 3" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_nproc_is_removed_from_the_workers_arguments():
    from gankit.utils.launch import torchrun_command, without_nproc

    assert without_nproc(["train", "gan", "--nproc", "2", "--out", "r"]) == \
        ["train", "gan", "--out", "r"]
    assert without_nproc(["train", "--npr=4", "gan"]) == ["train", "gan"]
    cmd = torchrun_command(["train", "gan", "--nproc", "2"], 2)
    assert cmd[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                       "-m", "gankit", "train", "gan"]


@pytest.mark.slow
def test_gankit_train_nproc_runs_torchrun_end_to_end(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["--steps", "2", "--no-progress", *[a for kv in BASE for a in ("--set", kv)]]
    runs = {}
    for n in (1, 2):
        out = tmp_path / f"n{n}"
        proc = subprocess.run([sys.executable, "-m", "gankit", "train", "gan", "--out", str(out),
                               "--nproc", str(n), *args], capture_output=True, text=True,
                              env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert f"checkpoint: {out}/checkpoints/step_00000002.pt" in proc.stdout
        runs[n] = out
    assert _files(runs[2]) == _files(runs[1])
    one, two = _weights(runs[1], 2), _weights(runs[2], 2)
    for k, v in one.items():
        torch.testing.assert_close(two[k], v, rtol=0, atol=1e-6, msg=k)
