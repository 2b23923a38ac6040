"""End to end through the CLI: train tiny -> sample -> resume -> list, and error paths."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.training.checkpoint import list_checkpoints, load_checkpoint

TINY = ["--set", "generator.width=8", "--set", "discriminator.width=8",
        "--set", "train.batch_size=16", "--set", "train.log_interval=2",
        "--set", "train.sample_interval=3", "--set", "train.checkpoint_interval=2",
        "--data", "digits", "--no-progress"]


def _train(tmp_path, *extra, steps=4, name="run"):
    out = tmp_path / name
    rc = main(["train", "dcgan", "--steps", str(steps), "--out", str(out), *TINY, *extra])
    assert rc == 0
    return out


def test_train_sample_resume_list(tmp_path, capsys):
    run = _train(tmp_path)
    printed = capsys.readouterr().out
    assert "samples:" in printed and "checkpoint:" in printed
    assert (run / "config.yaml").exists()
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]
    for key in ("loss/D", "loss/G", "scores/real", "scores/fake", "grad/D", "grad/G",
                "time/step_ms"):
        assert key in records[0] and np.isfinite(records[0][key])
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step_00000003.png", "step_00000004.png"]
    grid = Image.open(run / "samples" / "step_00000004.png")
    # 64 fixed samples of 8x8 -> 8 per row, 2 px padding, upscaled 4x
    assert grid.size == ((8 * 10 + 2) * 4, (8 * 10 + 2) * 4)
    assert [p.name for p in list_checkpoints(run)] == ["step_00000002.pt", "step_00000004.pt"]

    # sample: png grid, npz array in data space, directory of PNGs
    assert main(["sample", str(run), "--n", "10", "--out", str(tmp_path / "s.npz")]) == 0
    x = np.load(tmp_path / "s.npz")["x"]
    assert x.shape == (10, 1, 8, 8) and x.dtype == np.float32
    assert x.min() >= -1 and x.max() <= 1
    assert main(["sample", str(run), "--n", "5", "--out", str(tmp_path / "s.png")]) == 0
    assert Image.open(tmp_path / "s.png").size[0] > 8
    assert main(["sample", str(run), "--n", "3", "--out", str(tmp_path / "imgs")]) == 0
    assert sorted(p.name for p in (tmp_path / "imgs").iterdir()) == [
        "000000.png", "000001.png", "000002.png"]
    # same seed, same samples; --no-ema differs from the EMA generator
    main(["sample", str(run), "--n", "10", "--out", str(tmp_path / "t.npz")])
    np.testing.assert_array_equal(np.load(tmp_path / "t.npz")["x"], x)
    main(["sample", str(run), "--n", "10", "--no-ema", "--out", str(tmp_path / "raw.npz")])
    assert not np.array_equal(np.load(tmp_path / "raw.npz")["x"], x)

    # resume to a new total
    assert main(["train", "--resume", str(run), "--steps", "6", "--no-progress"]) == 0
    assert load_checkpoint(list_checkpoints(run)[-1])["step"] == 6
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6]

    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    for word in ("presets:", "dcgan", "wgan_gp", "sngan", "hinge", "gradient_penalty",
                 "weight_clip", "ema", "mnist5k", "folder"):
        assert word in listing


def _weights(run):
    ckpt = load_checkpoint(list_checkpoints(run)[-1])
    return {**{f"G.{k}": v for k, v in ckpt["G"].items()},
            **{f"D.{k}": v for k, v in ckpt["D"].items()},
            **{f"E.{k}": v for k, v in ckpt["G_ema"].items()}}


def _assert_bitwise_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("preset, extra", [("dcgan", []), ("wgan_gp", []),
                                           ("dcgan", ["--set", "train.precision=bf16"]),
                                           ("dcgan", ["--set", "train.d_joint_batch=true"]),
                                           ("dcgan", ["--set", "train.precision=fp16"]),
                                           ("dcgan", ["--set", "train.channels_last=true"])])
def test_resume_is_bitwise_exact(tmp_path, preset, extra):
    sets = [s for s in TINY if s != "--no-progress"] + extra
    straight = tmp_path / "straight"
    assert main(["train", preset, "--steps", "6", "--out", str(straight), *sets,
                 "--no-progress"]) == 0
    split = tmp_path / "split"
    assert main(["train", preset, "--steps", "3", "--out", str(split), *sets,
                 "--no-progress"]) == 0
    assert main(["train", "--resume", str(split), "--steps", "6", "--no-progress"]) == 0
    _assert_bitwise_equal(_weights(straight), _weights(split))
    a, b = (load_checkpoint(list_checkpoints(r)[-1]) for r in (straight, split))
    assert a["d_opt"]["state"][0]["step"] == b["d_opt"]["state"][0]["step"]
    torch.testing.assert_close(a["d_opt"]["state"][0]["exp_avg"],
                               b["d_opt"]["state"][0]["exp_avg"], rtol=0, atol=0)
    assert a["extra"]["updates"] == b["extra"]["updates"]  # fp16: the scalers' state


def test_same_seed_same_weights_other_seed_differs(tmp_path):
    a = _weights(_train(tmp_path, name="a"))
    b = _weights(_train(tmp_path, name="b"))
    c = _weights(_train(tmp_path, "--seed", "1", name="c"))
    _assert_bitwise_equal(a, b)
    assert not torch.equal(a["G.net.0.weight"], c["G.net.0.weight"])


def test_dry_run_prints_resolved_config(capsys):
    assert main(["train", "wgan", "--dry-run", "--set", "train.batch_size=32"]) == 0
    out = capsys.readouterr().out
    assert "batch_size: 32" in out and "weight_clip" in out and "clip: 0.01" in out
    assert "rmsprop" in out and "d_steps: 5" in out


@pytest.mark.parametrize("argv,message", [
    (["train", "dcgn", "--out", "x"], "unknown preset 'dcgn'. Did you mean 'dcgan'?"),
    (["train", "dcgan", "--out", "x", "--set", "train.batch_sise=3"],
     "unknown option 'train.batch_sise'. Did you mean 'batch_size'?"),
    (["train", "dcgan", "--out", "x", "--set", "loss=hinj"],
     "unknown loss 'hinj'. Did you mean 'hinge'?"),
    (["train", "dcgan", "--out", "x", "--set", "generator.widht=3"],
     "unknown option 'generator.widht'. Did you mean 'width'?"),
    (["train", "dcgan", "--out", "x", "--set", "train.steps=many"],
     "train.steps: expected an integer, got 'many'"),
    (["train", "dcgan", "--out", "x", "--set", "hooks.emma.beta=0.9"],
     "unknown hook 'emma'. Did you mean 'ema'?"),
    (["train", "dcgan", "--out", "x", "--data", "mnist"],
     "unknown dataset 'mnist'. Did you mean 'mnistm'?"),
    (["train", "dcgan", "--out", "x", "--data", "folder:/no/such/dir"], "/no/such/dir"),
    (["train", "dcgan", "--out", "x", "--set", "train.batch_size=0"],
     "train.batch_size must be >= 1"),
    (["train", "dcgan", "--out", "x", "--data", "digits", "--set", "data.resolution=10"],
     "dcgan supports image sides"),
    (["train", "dcgan"], "train needs --out RUN_DIR"),
    (["train", "--resume", "/no/such/run"], "no such run directory"),
    (["sample", "/no/such/run", "--out", "x.png"], "no checkpoint found"),
])
def test_user_errors_are_one_line_exit_2(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gankit: error: ") and err.count("\n") == 1
    assert message in err
    assert "Traceback" not in err


def test_existing_run_is_not_overwritten(tmp_path, capsys):
    run = _train(tmp_path)
    before = (run / "log.jsonl").read_text()
    assert main(["train", "dcgan", "--steps", "2", "--out", str(run), *TINY]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (run / "log.jsonl").read_text() == before


def test_resume_refuses_architecture_change_and_lists_differences(tmp_path, capsys):
    run = _train(tmp_path)
    rc = main(["train", "--resume", str(run), "--steps", "8", "--set", "generator.width=16",
               "--set", "z_dim=50", "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "generator.options.width: 8 -> 16" in err and "z_dim: 100 -> 50" in err
    # a learning-rate change is not an architecture change
    assert main(["train", "--resume", str(run), "--steps", "5", "--set",
                 "g_optimizer.lr=1e-4", "--no-progress"]) == 0


def test_resume_needs_a_larger_total(tmp_path, capsys):
    run = _train(tmp_path)
    assert main(["train", "--resume", str(run), "--steps", "4"]) == 2
    assert "already at step 4" in capsys.readouterr().err


def test_every_preset_trains_a_few_steps(tmp_path):
    from gankit.config import load_preset, preset_names
    from gankit.registry import GENERATORS

    for preset in preset_names():
        data = "ring" if preset.startswith("mixture") else "digits"
        name = load_preset(preset)["generator"]["name"]
        if getattr(GENERATORS.get(name), "takes", "latent") != "latent":
            continue  # translation, anomaly and table presets: their own CLI tests
        if name == "mlp":
            small = ["generator.widths=[16,16]", "discriminator.widths=[16,16]"]
        else:
            small = ["generator.width=8", "discriminator.width=8"]
        if data == "digits" and not GENERATORS.get(name).supports((1, 8, 8)):
            small.append("data.resolution=32")  # networks from 32x32 up (resnet)
        argv = ["train", preset, "--steps", "2", "--out", str(tmp_path / preset), "--data",
                data, "--no-progress", "--set", "train.batch_size=8"]
        for s in small:
            argv += ["--set", s]
        assert main(argv) == 0, preset


def test_resume_that_switches_ema_on_averages_from_the_loaded_g(tmp_path):
    run = _train(tmp_path, "--set", "hooks.ema=null")
    g4 = load_checkpoint(list_checkpoints(run)[-1])["G"]
    assert main(["train", "--resume", str(run), "--steps", "5", "--set", "hooks.ema.beta=0.5",
                 "--set", "hooks.ema.warmup=false", "--set", "hooks.ema.bn_stats=copy",
                 "--no-progress"]) == 0
    ck = load_checkpoint(list_checkpoints(run)[-1])
    assert ck["step"] == 5 and ck["G_ema"] is not None
    for name, ema in ck["G_ema"].items():
        expected = ck["G"][name] if "running" in name or "num_batches" in name else (
            0.5 * g4[name] + 0.5 * ck["G"][name])  # one step of beta 0.5 from G at step 4
        torch.testing.assert_close(ema.float(), expected.float(), rtol=1e-5, atol=1e-6)
