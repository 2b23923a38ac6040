"""The health monitor inside real training runs, and ``gankit doctor`` through the CLI.

A generator forced to a constant must be flagged as collapsed (and, with the minimax loss
and no R1, D saturates and G's gradient vanishes); the ``mixture_stable`` preset on the ring
must train without a single warning; the monitor must not change training.
"""

import json
import re

import pytest
import torch

import gankit.training.state as state_module
from gankit import api
from gankit.cli import main

FAST = ["--no-progress", "--device", "cpu"]


def _log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.fixture
def constant_generator(monkeypatch):
    """G's output is a fixed point, whatever z: a total mode collapse (G still has weights,
    so the loop, its optimiser and checkpoints run unchanged)."""
    build = state_module.build_networks

    def build_networks(config, info):
        G, D = build(config, info)
        forward, point = G.forward, torch.tensor([0.3, -0.2])
        G.forward = lambda z, c=None: forward(z, c) * 0 + point.to(z.device)
        return G, D

    monkeypatch.setattr(state_module, "build_networks", build_networks)


def test_constant_generator_is_flagged_and_diagnosed(tmp_path, capsys, constant_generator):
    run = tmp_path / "collapsed"
    sets = ["loss=minimax", "regularizers.r1=null", "train.log_interval=25",
            "health.warmup_steps=100", "train.checkpoint_interval=250"]
    api.train("mixture_stable", out=run, steps=300, device="cpu", progress=False,
              overrides=sets)
    err = capsys.readouterr().err
    records = _log(run)
    warnings = [(r["step"], r["warning"]) for r in records if "warning" in r]
    assert warnings == [(150, "d_saturated"), (150, "diversity_collapsed"),
                        (225, "g_grad_vanished")]
    for line in ("gankit: warning: sample diversity collapsed since step 100: "
                 "diversity_ratio 0.000 (< 0.2), modes 0, hq 0.00; remedies: gankit doctor",
                 "gankit: warning: D saturated since step 100",
                 "gankit: warning: G's gradients vanished since step 175"):
        assert line in err
    last = [r for r in records if "loss/D" in r][-1]
    assert last["health/diversity_ratio"] == 0.0 and last["health/modes"] == 0.0

    # resuming replays the log: the ongoing problems are not reported a second time
    api.resume(run, steps=350, progress=False)
    assert [(r["step"], r["warning"]) for r in _log(run) if "warning" in r] == warnings
    assert "gankit: warning" not in capsys.readouterr().err

    assert main(["doctor", str(run)]) == 0
    out = capsys.readouterr().out
    assert "steps 25-350 (finished)" in out and "3 problems found:" in out
    for title, begin, remedy in (
            ("D saturated (d_saturated)", 100, "--set loss.real_label=0.9"),
            ("sample diversity collapsed (diversity_collapsed)", 100, "--set pack=2"),
            ("G's gradients vanished (g_grad_vanished)", 175, "--set loss=non_saturating")):
        assert f"{title}: from step {begin}, still present at the last record" in out
        assert re.search(rf"^     {re.escape(remedy)} +# ", out, re.MULTILINE), remedy
    assert "--set train.unrolled_steps=5" in out
    assert "--set discriminator.minibatch_discrimination=16" in out


@pytest.mark.slow  # a quality check (~10-20 s): run with -m slow
def test_mixture_stable_ring_is_healthy(tmp_path, capsys):
    run = tmp_path / "healthy"
    assert main(["train", "mixture_stable", "--steps", "1500", "--out", str(run), *FAST]) == 0
    assert "gankit: warning" not in capsys.readouterr().err
    records = _log(run)
    assert not [r for r in records if "warning" in r]
    last = records[-1]
    assert last["step"] == 1500 and last["health/diversity_ratio"] > 0.8
    assert last["health/modes"] == 8.0 and 0.5 < last["health/hq"] <= 1.0
    assert main(["doctor", str(run)]) == 0
    out = capsys.readouterr().out
    assert "15 log records, steps 100-1500 (finished)" in out
    assert "no problems found" in out and "try:" not in out
    assert "  health/modes             8" in out


def test_the_monitor_does_not_change_training(tmp_path):
    def run(name, enabled):
        result = api.train("mixture_stable", out=tmp_path / name, steps=60, device="cpu",
                           progress=False, overrides=["train.log_interval=10",
                                                      f"health.enabled={enabled}"])
        return result.state

    on, off = run("on", "true"), run("off", "false")
    for net in ("G", "D", "G_ema"):
        a, b = getattr(on, net).state_dict(), getattr(off, net).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), net
    assert torch.equal(on.generator.get_state(), off.generator.get_state())
    assert "health/diversity_ratio" in _log(tmp_path / "on")[0]
    assert "health/diversity_ratio" not in _log(tmp_path / "off")[0]


def test_doctor_user_errors_are_one_line_exit_2(tmp_path, capsys):
    assert main(["doctor", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err == f"gankit: error: doctor {tmp_path / 'nope'}: no such run directory\n"
    assert main(["doctor", str(tmp_path)]) == 2
    assert "no log.jsonl: train first" in capsys.readouterr().err
    (tmp_path / "log.jsonl").write_text(json.dumps({"step": 10, "fid_2k_ring_raw": 1.0}) + "\n")
    assert main(["doctor", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "holds no training record yet" in err and err.count("\n") == 1
