"""The anti-collapse toolbox through the CLI: every item composes with a preset via --set,
all of them at once train with finite losses, packing and unrolling run end to end, and
resume stays bitwise exact with an unrolled critic."""

import json

import numpy as np
import pytest
import torch

from gankit.cli import main
from gankit.training.checkpoint import list_checkpoints, load_checkpoint

TINY = ["--data", "digits", "--set", "generator.width=8", "--set", "discriminator.width=8",
        "--set", "train.batch_size=16", "--set", "train.log_interval=1", "--no-progress"]
SMALL_MLP = ["--data", "ring", "--set", "generator.widths=[16,16]",
             "--set", "discriminator.widths=[16,16]", "--set", "train.batch_size=16",
             "--set", "train.log_interval=1", "--no-progress"]

TOOLBOX = [
    "loss.real_label=0.9",  # one-sided label smoothing
    "regularizers.feature_matching.weight=1.0",
    "augmentations.diffaugment.policy=color,translation,cutout",
    "augmentations.instance_noise.std=0.1", "augmentations.instance_noise.anneal_steps=3",
    "train.unrolled_steps=1",
    "g_optimizer.lr=1e-4", "d_optimizer.lr=4e-4",  # TTUR
    "hooks.ema.beta=0.9", "regularizers.r1.gamma=1.0",
]
MINIBATCH = ["discriminator.minibatch_stddev=4", "discriminator.minibatch_discrimination=8"]


def _sets(items):
    return [a for s in items for a in ("--set", s)]


def _records(run):
    """The step records of the log (other records, e.g. health warnings, are skipped)."""
    lines = (run / "log.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "loss/D" in r]


@pytest.mark.parametrize("extra", [MINIBATCH, ["pack=2"]], ids=["minibatch", "pack"])
def test_every_toolbox_item_at_once(tmp_path, capsys, extra):
    argv = ["train", "dcgan", *TINY, *_sets(TOOLBOX + extra)]
    assert main([*argv, "--dry-run"]) == 0
    shown = capsys.readouterr().out
    for text in ("real_label: 0.9", "feature_matching:", "weight: 1.0", "diffaugment:",
                 "policy: color,translation,cutout", "instance_noise:", "anneal_steps: 3",
                 "unrolled_steps: 1", "lr: 0.0001", "lr: 0.0004", "ema:", "beta: 0.9",
                 "r1:", "gamma: 1.0"):
        assert text in shown, text
    if extra == MINIBATCH:
        assert "minibatch_stddev: 4" in shown and "minibatch_discrimination: 8" in shown
    else:
        assert "pack: 2" in shown
    run = tmp_path / "run"
    assert main([*argv, "--steps", "4", "--out", str(run)]) == 0
    records = _records(run)
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    for r in records:
        for key in ("loss/D", "loss/G", "grad/D", "grad/G"):
            assert np.isfinite(r[key]), (key, r)
    config = load_checkpoint(list_checkpoints(run)[-1])["config"]
    assert config["augmentations"]["instance_noise"] == {"std": 0.1, "anneal_steps": 3}


def test_pacgan_runs_end_to_end(tmp_path):
    run = tmp_path / "mix"
    assert main(["train", "mixture_gan", "--steps", "3", "--out", str(run), *SMALL_MLP,
                 "--set", "pack=2"]) == 0
    ckpt = load_checkpoint(list_checkpoints(run)[-1])
    assert ckpt["D"]["inner.body.1.linear.weight"].shape[1] == 4  # 2 points x 2 coordinates
    assert json.loads((run / "metrics.json").read_text())["modes"] >= 0
    run = tmp_path / "img"
    assert main(["train", "dcgan", "--steps", "3", "--out", str(run), *TINY,
                 "--set", "pack=4"]) == 0
    ckpt = load_checkpoint(list_checkpoints(run)[-1])
    assert ckpt["D"]["inner.body.0.weight"].shape[1] == 4  # 4 packed grey images
    assert all(np.isfinite(r["loss/D"]) for r in _records(run))


@pytest.mark.parametrize("argv,message", [
    (["train", "dcgan", *TINY, "--set", "pack=3"],
     "pack must be >= 1 and divide train.batch_size (16), got 3"),
    (["train", "mixture_gan", *SMALL_MLP, "--set", "augmentations.diffaugment.policy=color"],
     "augmentation 'diffaugment' needs images [N, C, H, W], got a batch of shape [16, 2]"),
    (["train", "dcgan", *TINY, "--set", "augmentations.diffaugment.policy=flip"],
     "diffaugment.policy must be a comma-separated subset of color,translation,cutout"),
    (["train", "dcgan", *TINY, "--set", "loss.real_label=0.3"],
     "loss.real_label must be in (0.5, 1]"),
])
def test_toolbox_user_errors_are_one_line(tmp_path, capsys, argv, message):
    assert main([*argv, "--steps", "2", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gankit: error: ") and err.count("\n") == 1
    assert message in err and "Traceback" not in err


def test_resume_is_bitwise_exact_with_unrolling_and_augmentation(tmp_path):
    sets = [*TINY, *_sets(["train.unrolled_steps=2", "train.checkpoint_interval=2",
                           "augmentations.diffaugment.policy=color,translation,cutout",
                           "augmentations.instance_noise.std=0.1"])]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(["train", "dcgan", "--steps", "4", "--out", str(straight), *sets]) == 0
    assert main(["train", "dcgan", "--steps", "2", "--out", str(split), *sets]) == 0
    assert main(["train", "--resume", str(split), "--steps", "4", "--no-progress"]) == 0
    a, b = (load_checkpoint(list_checkpoints(r)[-1]) for r in (straight, split))
    for net in ("G", "D", "G_ema"):
        assert a[net].keys() == b[net].keys()
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)
    for i, state in a["d_opt"]["state"].items():
        for k, v in state.items():
            assert torch.equal(v, b["d_opt"]["state"][i][k]), (i, k)


def test_linear_lr_decay_sets_rates_and_resumes_exactly(tmp_path):
    """lr_decay=linear: the update at step s runs at lr * (steps - s) / (steps - start); a
    crash after a checkpoint resumes onto the same schedule, bit for bit."""
    sets = [*TINY, *_sets(["train.lr_decay=linear", "train.lr_decay_start=0.5",
                           "train.checkpoint_interval=2", "train.keep_checkpoints=5",
                           "g_optimizer.lr=1e-3", "d_optimizer.lr=4e-3"])]
    straight, crashed = tmp_path / "straight", tmp_path / "crashed"
    for run in (straight, crashed):
        assert main(["train", "dcgan", "--steps", "4", "--out", str(run), *sets]) == 0
    last = load_checkpoint(list_checkpoints(straight)[-1])
    # the last update (step 3 of 4, decay from step 2) ran at half the rate
    assert [g["lr"] for g in last["g_opt"]["param_groups"]] == [1e-3 * 0.5]
    assert [g["lr"] for g in last["d_opt"]["param_groups"]] == [4e-3 * 0.5]
    for path in list_checkpoints(crashed)[-1:]:  # lose the step-4 checkpoint
        for f in path.parent.glob(path.stem + ".*"):
            f.unlink()
    assert load_checkpoint(list_checkpoints(crashed)[-1])["step"] == 2
    assert main(["train", "--resume", str(crashed), "--no-progress"]) == 0
    again = load_checkpoint(list_checkpoints(crashed)[-1])
    assert again["step"] == 4
    for net in ("G", "D", "G_ema"):
        for k in last[net]:
            assert torch.equal(last[net][k], again[net][k]), (net, k)
    # without decay the rate stays as configured
    flat = tmp_path / "flat"
    assert main(["train", "dcgan", "--steps", "2", "--out", str(flat), *TINY]) == 0
    assert load_checkpoint(list_checkpoints(flat)[-1])["g_opt"]["param_groups"][0]["lr"] == 2e-4


@pytest.mark.parametrize("split_at", [2, 3])
def test_resume_is_bitwise_exact_across_a_batch_schedule(tmp_path, split_at):
    """A run whose batch grows at step 2, stopped at the switch or after it and resumed,
    ends bit for bit where the uninterrupted run does."""
    sets = [*TINY, *_sets(["train.batch_schedule=[[2, 32]]", "train.checkpoint_interval=1"])]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(["train", "dcgan", "--steps", "4", "--out", str(straight), *sets]) == 0
    assert main(["train", "dcgan", "--steps", str(split_at), "--out", str(split), *sets]) == 0
    assert main(["train", "--resume", str(split), "--steps", "4", "--no-progress"]) == 0
    a, b = (load_checkpoint(list_checkpoints(r)[-1]) for r in (straight, split))
    for net in ("G", "D"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)
