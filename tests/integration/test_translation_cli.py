"""Image-to-image presets through the CLI on tiny sizes: pix2pix, CycleGAN and SRResNet
train, resume bit for bit, write translation grids, and refuse mismatched data and
generators in one line."""

import pytest
import torch

from gankit.cli import main
from gankit.training.checkpoint import list_checkpoints, load_checkpoint

COMMON = ["--no-progress", "--set", "train.batch_size=4", "--set", "train.log_interval=1",
          "--set", "train.checkpoint_interval=2", "--set", "train.sample_interval=0"]
TINY = {
    "pix2pix": ["--set", "generator.width=4", "--set", "discriminator.width=4"],
    "cyclegan": ["--set", "generator.width=4", "--set", "discriminator.width=4",
                 "--set", "data.name=unpaired:digits,digits", "--set", "data.resolution=16"],
    "esrgan": ["--set", "generator.width=4", "--set", "generator.blocks=1",
               "--set", "generator.growth=2", "--set", "discriminator.width=4",
               "--set", "discriminator.dense=4", "--set", "data.name=digits",
               "--set", "data.resolution=16", "--set", "regularizers.perceptual.features=d"],
    "pixelda": ["--set", "generator.width=4", "--set", "discriminator.width=4"],
    "srresnet": ["--set", "generator.width=4", "--set", "generator.blocks=1",
                 "--set", "discriminator.width=4", "--set", "discriminator.dense=4",
                 "--set", "data.name=digits", "--set", "data.resolution=16"],
}


def _nets(run):
    ckpt = load_checkpoint(list_checkpoints(run)[-1])
    return ckpt, {f"{n}.{k}": v for n in ("G", "D") for k, v in ckpt[n].items()}


@pytest.mark.parametrize("preset", sorted(TINY))
def test_translation_presets_train_and_resume_bit_for_bit(tmp_path, preset):
    torch.set_num_threads(1)
    straight, split = tmp_path / "straight", tmp_path / "split"
    args = [*COMMON, *TINY[preset]]
    assert main(["train", preset, "--steps", "4", "--out", str(straight), *args]) == 0
    assert main(["train", preset, "--steps", "2", "--out", str(split), *args]) == 0
    assert main(["train", "--resume", str(split), "--steps", "4", "--no-progress"]) == 0
    (ca, a), (cb, b) = _nets(straight), _nets(split)
    assert ca["step"] == cb["step"] == 4
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (straight / "samples" / "step_00000004.png").is_file()


def test_without_a_discriminator_only_g_learns(tmp_path):
    run = tmp_path / "sr"
    assert main(["train", "srresnet", "--steps", "2", "--out", str(run), *COMMON,
                 *TINY["srresnet"]]) == 0
    first = load_checkpoint(list_checkpoints(run)[0])
    assert main(["train", "--resume", str(run), "--steps", "4", "--no-progress"]) == 0
    last = load_checkpoint(list_checkpoints(run)[-1])
    assert all(torch.equal(first["D"][k], v) for k, v in last["D"].items())  # D untouched
    assert any(not torch.equal(first["G"][k], v) for k, v in last["G"].items())


@pytest.mark.parametrize("args,message", [
    (["pix2pix", "--data", "mnist5k"], "generator unet translates images: it needs data "
                                       "with sources"),
    (["dcgan", "--data", "edges2mnist"], "data.name=edges2mnist pairs sources with targets, "
                                         "but generator dcgan maps latents"),
    (["srresnet", "--set", "data.lr_scale=3"], "data.lr_scale must be 0 (none), 2, 4 or 8"),
])
def test_mismatched_data_and_generators_are_one_line_errors(tmp_path, capsys, args, message):
    assert main(["train", *args, "--steps", "1", "--out", str(tmp_path / "r"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_srgan_starts_from_an_srresnet_run_and_resumes_bit_for_bit(tmp_path):
    torch.set_num_threads(1)
    sr = tmp_path / "srresnet"
    assert main(["train", "srresnet", "--steps", "2", "--out", str(sr), *COMMON,
                 *TINY["srresnet"]]) == 0
    args = [*COMMON, *TINY["srresnet"], "--set", f"train.init_from={sr}"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(["train", "srgan", "--steps", "4", "--out", str(straight), *args]) == 0
    assert main(["train", "srgan", "--steps", "2", "--out", str(split), *args]) == 0
    assert main(["train", "--resume", str(split), "--steps", "4", "--no-progress"]) == 0
    (_, a), (_, b) = _nets(straight), _nets(split)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the run started from srresnet's G: its first checkpoint is 2 steps from those weights
    init = load_checkpoint(list_checkpoints(sr)[-1])["G"]
    first = load_checkpoint(list_checkpoints(split)[0])["G"]
    assert any(not torch.equal(init[k], first[k]) for k in init)
    # two Adam steps of 1e-4 move each weight by at most about 2e-4 (BatchNorm's running
    # statistics aside)
    assert max(float((init[k] - first[k]).abs().max()) for k in init
               if "running_" not in k and init[k].is_floating_point()) < 3e-4


def test_latent_commands_refuse_a_translation_run(tmp_path, capsys):
    torch.set_num_threads(1)
    run = tmp_path / "p2p"
    assert main(["train", "pix2pix", "--steps", "1", "--out", str(run), *COMMON,
                 *TINY["pix2pix"]]) == 0
    for argv in (["sample", str(run), "--out", str(tmp_path / "x.png")],
                 ["show", str(run), "--interpolate"],
                 ["export", str(run), "--format", "torchscript"]):
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "draws from latents" in err and "use gankit translate" in err
