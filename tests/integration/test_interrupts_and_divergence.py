"""Signals and divergence (issue 33 §1.10, §2.1, §2.2): SIGINT and SIGTERM checkpoint the
step reached and resume continues bit for bit; a NaN loss never reaches a checkpoint, rolls
back to the last good state with lower rates, or stops with a clear error."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from gankit import api
from gankit.cli import main
from gankit.losses.non_saturating import NonSaturating
from gankit.training.checkpoint import list_checkpoints, load_checkpoint
from gankit.training.faults import TrainingInterrupted

SETS = ["generator.width=8", "discriminator.width=8", "train.batch_size=16",
        "train.log_interval=1", "train.checkpoint_interval=2", "train.keep_checkpoints=10"]
CLI_SETS = [a for s in SETS for a in ("--set", s)]


def _signal_at(step, signum):
    def callback(trainer):
        if trainer.state.step == step:
            os.kill(os.getpid(), signum)
    return callback


def _nets(ckpt):
    return {f"{n}.{k}": v for n in ("G", "D", "G_ema") for k, v in ckpt[n].items()}


def test_sigterm_saves_the_step_reached_and_resume_is_bitwise_exact(tmp_path):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    api.train("dcgan", out=straight, data="digits", steps=6, overrides=SETS, progress=False)
    with pytest.raises(TrainingInterrupted) as info:
        api.train("dcgan", out=stopped, data="digits", steps=6, overrides=SETS,
                  progress=False, callbacks=[_signal_at(3, signal.SIGTERM)])
    assert info.value.step == 3 and info.value.checkpoint.name == "step_00000003.pt"
    assert load_checkpoint(list_checkpoints(stopped)[-1])["step"] == 3  # an odd step
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored
    api.resume(stopped, progress=False)
    a, b = (_nets(load_checkpoint(list_checkpoints(r)[-1])) for r in (straight, stopped))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_time_limit_stops_at_a_step_boundary_and_resume_is_bitwise_exact(
        tmp_path, monkeypatch, capsys):
    from gankit.training import loop

    class Clock:  # loop's time module with a wall clock that moves when the test says
        now = 0.0
        perf_counter = staticmethod(time.perf_counter)

        def monotonic(self):
            return self.now

    clock = Clock()

    def jump(trainer):  # after step 3 a minute and a second have passed
        if trainer.state.step == 3:
            clock.now += 61.0

    straight, limited = tmp_path / "straight", tmp_path / "limited"
    api.train("dcgan", out=straight, data="digits", steps=6, overrides=SETS, progress=False)
    monkeypatch.setattr(loop, "time", clock)
    api.train("dcgan", out=limited, data="digits", steps=6, progress=False, callbacks=[jump],
              overrides=[*SETS, "train.time_limit=1"])
    assert "train.time_limit: 1 minutes reached at step 3 of 6; --resume continues" in \
        capsys.readouterr().err
    assert load_checkpoint(list_checkpoints(limited)[-1])["step"] == 3
    assert sorted(p.name for p in (limited / "samples").iterdir())[-1] == "step_00000003.png"
    monkeypatch.undo()
    api.resume(limited, progress=False, overrides=["train.time_limit=0"])
    a, b = (_nets(load_checkpoint(list_checkpoints(r)[-1])) for r in (straight, limited))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_ctrl_c_through_the_cli_says_where_it_saved(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    real_train = api.train
    monkeypatch.setattr(api, "train", lambda **kw: real_train(
        **kw, callbacks=[_signal_at(2, signal.SIGINT)]))
    argv = ["train", "dcgan", "--data", "digits", "--steps", "5", "--out", str(run),
            "--no-progress", *CLI_SETS]
    assert main(argv) == 128 + signal.SIGINT
    err = capsys.readouterr().err
    assert (f"gankit: interrupted by SIGINT at step 2; saved "
            f"{run / 'checkpoints' / 'step_00000002.pt'}; continue with: gankit train "
            f"--resume {run}") in err
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert load_checkpoint(list_checkpoints(run)[-1])["step"] == 5


def test_sigterm_to_a_real_training_process(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gankit", "train", "dcgan", "--data", "digits", "--steps",
         "100000", "--out", str(run), "--no-progress", *CLI_SETS],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = run / "log.jsonl"
    deadline = time.monotonic() + 60
    while not (log.exists() and log.read_text().count("\n") >= 2):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "interrupted by SIGTERM at step" in err and f"--resume {run}" in err
    step = load_checkpoint(list_checkpoints(run)[-1])["step"]
    assert step >= 2 and f"step_{step:08d}.pt" in err


def _records(run):
    log = run / "log.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_a_transient_nan_rolls_back_to_the_last_good_state(tmp_path, monkeypatch, capsys):
    calls = []
    g_loss = NonSaturating.g_loss

    def once_nan(self, fake_logits, real_logits=None):
        calls.append(1)
        value = g_loss(self, fake_logits)
        return value * float("nan") if len(calls) == 6 else value  # the 6th update's

    monkeypatch.setattr(NonSaturating, "g_loss", once_nan)
    run = tmp_path / "run"
    api.train("dcgan", out=run, data="digits", steps=8, overrides=SETS, progress=False)
    events = [r for r in _records(run) if r.get("event") == "rollback"]
    # steps count updates done, as everywhere in the log: update 6 failed, back to step 4
    assert events == [{"step": 4, "event": "rollback", "failed_step": 6,
                       "reason": "loss/G = nan", "lr_scale": 0.5}]
    assert "non-finite values at step 6 (loss/G = nan); rolled back to step 4" in \
        capsys.readouterr().err
    last = load_checkpoint(list_checkpoints(run)[-1])
    assert last["step"] == 8 and last["extra"]["lr_scale"] == 0.5
    assert last["g_opt"]["param_groups"][0]["lr"] == 2e-4 * 0.5
    assert all(torch.isfinite(v).all() for v in _nets(last).values())
    steps = [r["step"] for r in _records(run) if "loss/G" in r]
    assert steps == sorted(set(steps))  # the failed attempt's records were dropped


@pytest.mark.parametrize("policy, rollbacks", [("stop", 0), ("rollback", 2)])
def test_a_diverging_run_stops_with_an_error_and_keeps_its_good_checkpoint(
        tmp_path, capsys, policy, rollbacks):
    run = tmp_path / "run"
    argv = ["train", "dcgan", "--data", "digits", "--steps", "20", "--out", str(run),
            "--no-progress", *CLI_SETS, "--set", "g_optimizer.lr=1e20", "--set",
            "d_optimizer.lr=1e20", "--set", f"train.on_nonfinite={policy}", "--set",
            "train.nonfinite_retries=2"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("gankit: error: training diverged at step ")
    text = (run / "log.jsonl").read_text() if (run / "log.jsonl").exists() else ""
    assert "NaN" not in text and "Infinity" not in text
    assert sum(r.get("event") == "rollback" for r in _records(run)) == rollbacks
    for path in list_checkpoints(run):  # whatever was saved is finite
        assert all(torch.isfinite(v).all() for v in _nets(load_checkpoint(path)).values())


def test_a_non_finite_optimiser_state_at_a_checkpoint_rolls_back(tmp_path):
    fired = []

    def poison(trainer):  # once, at step 4: D's Adam moment goes NaN, the losses stay finite
        if trainer.state.step == 4 and not fired:
            fired.append(1)
            first = next(iter(trainer.state.d_opt.state.values()))
            first["exp_avg"].view(-1)[0] = float("nan")

    run = tmp_path / "run"
    api.train("dcgan", out=run, data="digits", steps=6, overrides=SETS, progress=False,
              callbacks=[poison])
    events = [r for r in _records(run) if r.get("event") == "rollback"]
    assert events == [{"step": 2, "event": "rollback", "failed_step": 4,
                       "reason": "d_opt.state.0.exp_avg is not finite", "lr_scale": 0.5}]
    assert [int(p.stem[5:]) for p in list_checkpoints(run)] == [2, 4, 6]


def test_two_rollbacks_restore_the_same_state():
    """The snapshot is not changed by the training that follows a rollback (optimisers keep
    the tensors they load): a second rollback restores exactly what the first did."""
    from gankit.training.faults import DivergenceGuard
    from gankit.training.loop import Trainer
    from gankit.training.state import build_state

    config = api.make_config("dcgan", data="digits", overrides=SETS)
    ds = api.dataset_for(config)
    t = Trainer(build_state(config, api.data_info(ds, config), torch.device("cpu")), ds, None,
                progress=False)

    def train(steps):
        for _ in range(steps):  # Adam's moments and step counters move in place
            t.d_step(t.state.step, log=False)
            t.g_step(log=False)

    train(2)
    guard = DivergenceGuard(config.train)
    guard.snapshot(t.state)
    seen = []
    for _ in range(2):
        guard.rollback(t.state, "test")
        moments = {k: v.clone() for k, v in t.state.d_opt.state_dict()["state"][0].items()}
        seen.append((moments, [p.clone() for p in t.state.D.parameters()]))
        train(3)
    (m1, w1), (m2, w2) = seen
    assert m1.keys() == m2.keys() and all(torch.equal(m1[k], m2[k]) for k in m1)
    assert float(m1["step"]) == 2 and all(torch.equal(a, b) for a, b in zip(w1, w2))
