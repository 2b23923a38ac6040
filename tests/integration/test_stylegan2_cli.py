"""The stylegan2 preset through the CLI on tiny sizes: training with every regulariser due,
bitwise-exact resume (noise, style mixing, w_avg and the path-length mean included), the
rescaled optimiser settings, the style-mixing grid and interpolation in W."""

import numpy as np
import pytest
import torch
from PIL import Image

from gankit import api
from gankit.cli import main
from gankit.training.checkpoint import list_checkpoints, load_checkpoint
from gankit.viz import style_mix_images

# 8x8 digits, 16 channels at most, both lazy regularisers due within 6 steps
TINY = ["--data", "digits", "--no-progress",
        "--set", "generator.width=8", "--set", "generator.max_channels=16",
        "--set", "generator.w_dim=16", "--set", "generator.mapping_layers=2", "--set", "z_dim=16",
        "--set", "discriminator.width=8", "--set", "discriminator.max_channels=16",
        "--set", "train.batch_size=8", "--set", "train.log_interval=2",
        "--set", "train.checkpoint_interval=3", "--set", "train.sample_interval=0",
        "--set", "regularizers.r1.interval=2", "--set", "regularizers.path_length.interval=2",
        "--set", "generator.noise=true", "--set", "data.resolution=8"]


def _train(out, steps, *extra):
    assert main(["train", "stylegan2", "--steps", str(steps), "--out", str(out), *TINY,
                 *extra]) == 0


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("sg2")
    _train(root / "straight", 6)
    _train(root / "split", 3)
    assert main(["train", "--resume", str(root / "split"), "--steps", "6",
                 "--no-progress"]) == 0
    return root


def test_resume_is_bitwise_exact_with_noise_mixing_and_lazy_regularisers(runs):
    a, b = (load_checkpoint(list_checkpoints(runs / r)[-1]) for r in ("straight", "split"))
    assert a["step"] == b["step"] == 6
    for net in ("G", "D", "G_ema"):
        assert a[net].keys() == b[net].keys()
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)
    assert a["G"]["w_avg"].abs().sum() > 0  # tracked during training, saved as a buffer
    mean = a["regularizers"]["path_length"]["mean"]
    assert mean > 0 and torch.equal(mean, b["regularizers"]["path_length"]["mean"])
    assert torch.equal(a["rng"]["torch_cpu"], b["rng"]["torch_cpu"])


def test_optimisers_carry_the_lazy_rescaled_rates_and_betas(runs):
    ck = load_checkpoint(list_checkpoints(runs / "straight")[-1])
    g, d = ck["g_opt"]["param_groups"][0], ck["d_opt"]["param_groups"][0]
    assert g["lr"] == pytest.approx(0.0025 * 4 / 5) and d["lr"] == pytest.approx(0.0025 * 16 / 17)
    assert g["betas"] == pytest.approx((0.0, 0.99 ** 0.8))
    assert d["betas"] == pytest.approx((0.0, 0.99 ** (16 / 17)))


def test_style_mix_grid_and_w_interpolation(runs, capsys):
    run = runs / "straight"
    assert main(["show", str(run), "--style-mix", "--interpolate"]) == 0
    printed = capsys.readouterr().out
    assert "style_mix.png" in printed
    assert "interpolate_w_lerp.png (linear interpolation in W)" in printed
    grid = np.asarray(Image.open(run / "show" / "style_mix.png"))
    # 6 columns + sources, 5 rows + sources, 8x8 digits, 2 px padding, upscaled 4x
    assert grid.shape[:2] == ((6 * 10 + 2) * 4, (7 * 10 + 2) * 4)


def test_style_mix_cells_take_coarse_styles_from_rows_and_fine_from_columns(runs):
    G = api.load(runs / "straight").net(ema=True)
    z = torch.randn(5, 16, generator=torch.Generator().manual_seed(0))
    k = G.crossover(4)
    assert k == 1  # 8x8 images: only the 4x4 layer is coarse at side 4
    images = style_mix_images(G, z[:2], z[2:], k)  # [(2 + 1) * (3 + 1), ...]
    assert images.shape[0] == 12
    w = G.mapping(z)
    ws = torch.cat([w[0:1, None].expand(-1, k, -1), w[3:4, None].expand(-1, G.num_ws - k, -1)],
                   dim=1)  # row 0's coarse styles, column 1's fine ones
    torch.testing.assert_close(images[4 + 2], G.synthesis(ws)[0])
    torch.testing.assert_close(images[1:4], G(z[2:]))  # the top row: column sources
    torch.testing.assert_close(images[4], G(z[:1])[0])  # left column: row sources


def test_style_mix_is_refused_for_other_generators(tmp_path, capsys):
    run = tmp_path / "dc"
    assert main(["train", "dcgan", "--steps", "1", "--out", str(run), "--data", "digits",
                 "--no-progress", "--set", "generator.width=8", "--set",
                 "discriminator.width=8", "--set", "train.batch_size=8"]) == 0
    capsys.readouterr()
    assert main(["show", str(run), "--style-mix"]) == 2
    err = capsys.readouterr().err
    assert "needs a style-based generator (generator: stylegan2)" in err and "dcgan" in err
