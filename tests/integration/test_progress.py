"""Progress bars: train, sample, eval, refine and bench show one with a rate on a terminal,
and stay quiet with --no-progress or when stderr is not a terminal."""

import re
import sys

import pytest
import torch

from gankit.cli import main

TINY = ["--set", "generator.width=8", "--set", "discriminator.width=8",
        "--set", "train.batch_size=16", "--set", "train.log_interval=2",
        "--set", "train.checkpoint_interval=0", "--data", "digits"]
BAR = re.compile(r"\d+/\d+ \[[0-9:]+<[0-9:?]+, +[0-9.?]+ ?\w+/s\]")  # count, ETA, rate


def _fake_tty(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("progress") / "run"
    assert main(["train", "dcgan", "--steps", "2", "--out", str(out), *TINY,
                 "--no-progress"]) == 0
    return out


def test_train_bar_only_on_a_terminal_and_without_no_progress(tmp_path, capsys, monkeypatch):
    # capsys' stderr is not a terminal: quiet although progress is on
    assert main(["train", "dcgan", "--steps", "1", "--out", str(tmp_path / "a"), *TINY]) == 0
    assert capsys.readouterr().err == ""
    _fake_tty(monkeypatch)
    assert main(["train", "dcgan", "--steps", "1", "--out", str(tmp_path / "b"), *TINY,
                 "--no-progress"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["train", "dcgan", "--steps", "2", "--out", str(tmp_path / "c"), *TINY]) == 0
    err = capsys.readouterr().err
    assert "2/2 [" in err and "step/s" in err and BAR.search(err), err


def test_sample_bar_for_more_than_one_batch(run, tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "s.npz")
    assert main(["sample", str(run), "--n", "1200", "--out", out]) == 0
    assert capsys.readouterr().err == ""  # not a terminal
    _fake_tty(monkeypatch)
    assert main(["sample", str(run), "--n", "1200", "--out", out, "--no-progress"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["sample", str(run), "--n", "100", "--out", out]) == 0
    assert capsys.readouterr().err == ""  # one batch: nothing to wait for
    assert main(["sample", str(run), "--n", "1200", "--out", out]) == 0
    err = capsys.readouterr().err
    assert "sampling: 100%" in err and "1200/1200" in err and "sample/s" in err
    assert BAR.search(err), err


def test_eval_bars_of_sampling_and_features(run, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    args = ["eval", str(run), "-n", "600", "--metrics", "fid",
            "--out", str(tmp_path / "e.json")]
    with monkeypatch.context() as m:
        _fake_tty(m)
        assert main(args) == 0
        err = capsys.readouterr().err
        for label, total in (("sampling", 600), ("features", 600), ("real features", 1797)):
            assert re.search(rf"\r{label}: 100%\|.*\| {total}/{total} \[.*sample/s\]",
                             err), err
        assert main([*args, "--no-progress"]) == 0
        assert "|" not in capsys.readouterr().err
    assert main(args) == 0  # not a terminal
    assert "|" not in capsys.readouterr().err


def test_refine_critic_bar(monkeypatch, capsys):
    from gankit.refine import RefineOptions, fit_critic

    g = torch.Generator().manual_seed(0)
    real, fake = torch.rand(64, 1, 8, 8, generator=g) * 2 - 1, torch.rand(64, 1, 8, 8) * 2 - 1
    options = RefineOptions(epochs=2, ensemble=2, batch_size=16, pool=2)
    fit_critic(real, fake, options, progress=True)
    assert capsys.readouterr().err == ""
    _fake_tty(monkeypatch)
    fit_critic(real, fake, options, progress=False)
    assert capsys.readouterr().err == ""
    fit_critic(real, fake, options, progress=True)
    err = capsys.readouterr().err
    # 58 training rows of each side (10 % held out): 4 batches x 2 epochs x 2 critics
    assert "refine critics: 100%" in err and "16/16" in err and "batch/s" in err, err


def test_bench_bar_of_runs(monkeypatch, capsys):
    from gankit.benchmarks._common import run_recipes

    recipes = {"a": {"preset": "p", "set": []}, "b": {"preset": "q", "set": []}}
    _fake_tty(monkeypatch)
    rows = run_recipes(recipes, 2, 0, lambda r, s, n: {"x": float(s)}, lambda m: None,
                       progress=True)
    assert [r["seed"] for r in rows["a"]] == [0, 1]
    err = capsys.readouterr().err
    assert "bench: 100%" in err and "4/4" in err and "run/s" in err, err
    run_recipes(recipes, 1, 0, lambda r, s, n: {"x": 0.0}, lambda m: None, progress=False)
    assert capsys.readouterr().err == ""
