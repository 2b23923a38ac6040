"""Benchmark protocols: mode counting on Stacked MNIST, tables, recipe validation."""

import math

import pytest
import torch

from gankit.benchmarks import _common, mixture, stacked_mnist
from gankit.data import load_dataset


@pytest.fixture(scope="module")
def stacks():
    return load_dataset("stacked_mnist")


def test_stacked_mnist_data(stacks):
    assert stacks.x.shape == (50_000, 3, 28, 28) and stacks.num_classes == 1000
    assert stacks.y.unique().numel() == 1000
    digits = load_dataset("mnist5k")
    # channel 0 of every stack is one of the 5,000 real digits, and y names its class
    first = stacks.x[0, 0]
    matches = (digits.x[:, 0] == first).flatten(1).all(1).nonzero().flatten()
    assert len(matches) >= 1 and int(digits.y[matches[0]]) == int(stacks.y[0]) // 100


def test_real_stacks_cover_all_modes_at_the_kl_floor(stacks):
    res = stacked_mnist.count_modes(stacks.x[:26_000])
    assert res["modes"] == 1000
    # floor ~ (K - 1) / (2N) = 0.019 for a perfect sampler; classifier errors add a little
    assert 0.010 < res["kl"] < 0.03


def test_a_one_mode_generator_scores_one_mode(stacks):
    x = stacks.x[:1].expand(500, -1, -1, -1)
    res = stacked_mnist.count_modes(x)
    assert res["modes"] == 1
    assert res["kl"] == pytest.approx(math.log(1000))


def test_count_modes_rejects_grey_images():
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        stacked_mnist.count_modes(torch.zeros(4, 1, 28, 28))


def test_mean_and_standard_error():
    mean, se = _common.mean_se([1.0, 2.0, 3.0, 6.0])  # mean 3, sample std sqrt(14/3)
    assert mean == 3.0 and se == pytest.approx(math.sqrt(14 / 3) / 2)
    assert _common.mean_se([5.0]) == (5.0, 0.0)


def test_unknown_recipe_and_dataset():
    with pytest.raises(ValueError, match="Did you mean 'pacgan2'"):
        mixture.run("ring", ["pacgan22"], seeds=1, steps=1)
    with pytest.raises(ValueError, match="ring or grid"):
        mixture.run("moons", ["gan"], seeds=1, steps=1)


def test_mixture_bench_runs_and_prints_paper_rows(tmp_path):
    report = mixture.run("ring", ["stable"], seeds=2, steps=20, out=tmp_path, log=lambda s: None)
    rows = report["runs"]["stable"]
    assert len(rows) == 2 and all(0 <= r["modes"] <= 8 for r in rows)
    text = mixture.table(report)
    assert "gankit stable" in text and "paper PacGAN4" in text and "7.8 ± 0.1" in text
    assert (tmp_path / "results.json").exists()


def test_bench_cli_prints_table_and_rejects_unknown_recipe(tmp_path, capsys):
    from gankit.cli import main

    assert main(["bench", "mixture", "--recipes", "stable", "--seeds", "1", "--steps", "10",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "gankit stable" in out and "paper GAN" in out
    assert main(["bench", "stacked-mnist", "--recipes", "dcgn"]) == 2
    assert "Did you mean 'dcgan'?" in capsys.readouterr().err
