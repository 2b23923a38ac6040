"""Conditional presets end to end through the CLI: tiny runs, sampling by class, class grids,
labelled data sources, resume exactness and the error paths."""

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.training.checkpoint import list_checkpoints, load_checkpoint

TINY = ["--set", "generator.width=8", "--set", "discriminator.width=8",
        "--set", "train.batch_size=16", "--set", "train.log_interval=2",
        "--set", "train.sample_interval=0", "--set", "train.checkpoint_interval=2",
        "--data", "digits", "--no-progress"]
PRESETS = ["cgan", "acgan", "sngan_projection"]


def _train(tmp_path, preset, *extra, steps=2, name=None):
    out = tmp_path / (name or preset)
    assert main(["train", preset, "--steps", str(steps), "--out", str(out), *TINY, *extra]) == 0
    return out


@pytest.mark.parametrize("preset", PRESETS)
def test_conditional_preset_trains_and_samples_by_class(tmp_path, capsys, preset):
    run = _train(tmp_path, preset)
    ckpt = load_checkpoint(list_checkpoints(run)[-1])
    assert ckpt["data_info"]["num_classes"] == 10
    assert main(["sample", str(run), "--class", "3", "--n", "6",
                 "--out", str(tmp_path / "three.npz")]) == 0
    saved = np.load(tmp_path / "three.npz")
    assert saved["x"].shape == (6, 1, 8, 8) and saved["y"].tolist() == [3] * 6
    # one row per class, --n per row: 10 rows of 4 8x8 tiles, 2 px padding, upscaled 4x
    assert main(["sample", str(run), "--class-grid", "--n", "4",
                 "--out", str(tmp_path / "grid.png")]) == 0
    grid = np.asarray(Image.open(tmp_path / "grid.png").convert("L"))
    margin = grid.shape[1] - (4 * 10 + 2) * 4  # a column of class labels left of the rows
    assert grid.shape[0] == (10 * 10 + 2) * 4 and 6 <= margin <= 20
    rows = [grid[8 + 40 * r: 8 + 40 * (r + 1), :margin] for r in range(10)]
    assert all((row < 128).any() for row in rows)  # each row's label is drawn
    assert main(["sample", str(run), "--class-grid", "--out", str(tmp_path / "grid.npz")]) == 0
    y = np.load(tmp_path / "grid.npz")["y"]
    assert y.tolist() == [k for k in range(10) for _ in range(10)]  # default 10 per class
    assert "wrote 100 samples" in capsys.readouterr().out
    # without --class: uniform labels, stored with the samples
    assert main(["sample", str(run), "--n", "50", "--out", str(tmp_path / "u.npz")]) == 0
    assert len(set(np.load(tmp_path / "u.npz")["y"].tolist())) > 5


# acgan: class head and a class loss in both phases; sngan_projection: conditional BatchNorm,
# spectral norm on the projection embedding, 2 D steps
@pytest.mark.parametrize("preset", ["acgan", "sngan_projection"])
def test_resume_of_a_conditional_run_is_bitwise_exact(tmp_path, preset):
    straight = _train(tmp_path, preset, steps=6, name="straight")
    split = _train(tmp_path, preset, steps=3, name="split")
    assert main(["train", "--resume", str(split), "--steps", "6", "--no-progress"]) == 0
    a, b = (load_checkpoint(list_checkpoints(r)[-1]) for r in (straight, split))
    for net in ("G", "D", "G_ema"):
        assert a[net].keys() == b[net].keys()
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k}"
    torch.testing.assert_close(a["d_opt"]["state"][0]["exp_avg"],
                               b["d_opt"]["state"][0]["exp_avg"], rtol=0, atol=0)


def test_labelled_folder_npz_and_mlp_family(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 8, 8), dtype=np.uint8)
    for i, img in enumerate(images):
        folder = tmp_path / "folder" / f"class_{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i}.png")
    np.savez(tmp_path / "data.npz", x=images, y=np.arange(12) % 4)
    small = ["--steps", "1", "--no-progress", "--set", "train.batch_size=4",
             "--set", "train.sample_interval=0"]
    assert main(["train", "sngan_projection", "--data", f"folder:{tmp_path / 'folder'}",
                 "--set", "data.resolution=8", "--set", "generator.width=8",
                 "--set", "discriminator.width=8", "--out", str(tmp_path / "f"), *small]) == 0
    assert main(["train", "cgan", "--data", f"npz:{tmp_path / 'data.npz'}",
                 "--set", "generator.width=8", "--set", "discriminator.width=8",
                 "--out", str(tmp_path / "n"), *small]) == 0
    # mlp family on labelled 2D points (ring: the label is the mixture component)
    mlp = ["--set", "generator={name: mlp, widths: [8], conditioning: cbn}",
           "--set", "discriminator={name: mlp, widths: [8], conditioning: projection}"]
    assert main(["train", "acgan", "--data", "ring", "--out", str(tmp_path / "r"),
                 "--set", "discriminator={name: mlp, widths: [8], conditioning: acgan}",
                 "--set", "generator={name: mlp, widths: [8], conditioning: concat}",
                 *small]) == 0
    assert main(["train", "sngan_projection", "--data", "ring", "--out",
                 str(tmp_path / "p"), *mlp, *small]) == 0
    assert main(["sample", str(tmp_path / "p"), "--class", "5", "--n", "7",
                 "--out", str(tmp_path / "p.npz")]) == 0
    saved = np.load(tmp_path / "p.npz")
    assert saved["x"].shape == (7, 2) and saved["y"].tolist() == [5] * 7


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    _train(root, "cgan", name="cond")
    _train(root, "dcgan", name="plain")
    return root


@pytest.mark.parametrize("argv,message", [
    (["sample", "{plain}", "--class", "3", "--out", "x.png"],
     "generator is unconditional (generator.conditioning=none)"),
    (["sample", "{plain}", "--class-grid", "--out", "x.png"], "generator is unconditional"),
    (["sample", "{cond}", "--class", "10", "--out", "x.png"],
     "class 10 is out of range: this run has 10 classes, 0..9"),
    (["sample", "{cond}", "--class", "-1", "--out", "x.png"], "class -1 is out of range"),
    (["sample", "{cond}", "--class", "1", "--class-grid", "--out", "x.png"],
     "--class and --class-grid cannot be combined"),
    (["train", "cgan", "--data", "npz:{unlabelled}", "--out", "r", "--no-progress"],
     "generator.conditioning=concat needs labelled data"),
    (["train", "acgan", "--data", "digits", "--out", "r", "--no-progress",
      "--set", "discriminator.conditioning=none", "--set", "discriminator.width=8",
      "--set", "generator.width=8"], "use discriminator.conditioning=acgan"),
])
def test_conditional_user_errors_are_one_line_exit_2(tmp_path, monkeypatch, capsys, runs,
                                                     argv, message):
    monkeypatch.chdir(tmp_path)
    np.savez(tmp_path / "u.npz", x=np.zeros((4, 8, 8), dtype=np.uint8))
    paths = {"plain": runs / "plain", "cond": runs / "cond", "unlabelled": tmp_path / "u.npz"}
    argv = [a.format(**{k: str(v) for k, v in paths.items()}) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gankit: error: ") and err.count("\n") == 1
    assert message in err
    assert "Traceback" not in err
