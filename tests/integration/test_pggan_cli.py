"""The pggan preset through the CLI on tiny sizes: growth through a fade-in, bitwise-exact
resume from the middle of a fade, and sampling and export at the level the run reached."""

import numpy as np
import pytest
import torch
from PIL import Image

from gankit import api
from gankit.cli import main
from gankit.training.checkpoint import list_checkpoints, load_checkpoint

# 16x16 digits (levels 0..2), phases of 2 steps: 4x4 at steps 0-1, 8x8 fading in at 2-3,
# stable at 4-5, 16x16 fading in at 6-7
TINY = ["--data", "digits", "--no-progress", "--set", "data.resolution=16",
        "--set", "generator.width=4", "--set", "generator.max_channels=8",
        "--set", "discriminator.width=4", "--set", "discriminator.max_channels=8",
        "--set", "z_dim=8", "--set", "train.batch_size=8", "--set", "train.log_interval=1",
        "--set", "train.checkpoint_interval=0", "--set", "train.sample_interval=0",
        "--set", "hooks.growth.phase_steps=2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("pggan")
    assert main(["train", "pggan", "--steps", "7", "--out", str(root / "straight"),
                 *TINY]) == 0
    assert main(["train", "pggan", "--steps", "3", "--out", str(root / "split"), *TINY]) == 0
    assert main(["train", "--resume", str(root / "split"), "--steps", "7",
                 "--no-progress"]) == 0
    return root


def test_resume_mid_fade_is_bitwise_exact(runs):
    first = load_checkpoint(list_checkpoints(runs / "split")[0])
    assert first["step"] == 3 and first["G"]["growth"].tolist() == [1.0, 0.5]  # mid-fade
    a, b = (load_checkpoint(list_checkpoints(runs / r)[-1]) for r in ("straight", "split"))
    assert a["step"] == b["step"] == 7
    for net in ("G", "D", "G_ema"):
        assert a[net].keys() == b[net].keys()
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)
        assert a[net]["growth"].tolist() == [2.0, 0.5]  # 16x16 fading in at step 7
    for opt in ("g_opt", "d_opt"):
        for i, s in a[opt]["state"].items():
            assert torch.equal(s["exp_avg_sq"], b[opt]["state"][i]["exp_avg_sq"]), (opt, i)
    assert torch.equal(a["rng"]["torch_cpu"], b["rng"]["torch_cpu"])


def test_blocks_train_only_once_their_level_is_active(runs):
    """Steps 0-6 trained (step 6 is the 16x16 fade's alpha 0, the 8x8 image): the 16x16
    block and toRGB never had a gradient, so Adam holds no state for them yet."""
    ck = load_checkpoint(list_checkpoints(runs / "straight")[-1])
    names = [n for n, _ in api.load(runs / "straight").G.named_parameters()]
    untrained = {i for i, n in enumerate(names) if n.startswith(("blocks.1.", "to_rgb.2."))}
    assert len(untrained) == 6
    assert set(ck["g_opt"]["state"]) == set(range(len(names))) - untrained


def test_sample_and_export_use_the_level_the_run_reached(runs, tmp_path):
    run = api.load(runs / "straight")
    G = run.net(ema=True)
    assert (G.level, G.alpha) == (2, 0.5)
    assert main(["sample", str(runs / "straight"), "--n", "4", "--out",
                 str(tmp_path / "s.png")]) == 0
    assert Image.open(tmp_path / "s.png").size[0] > 16
    # at 16x16 mid-fade the output is not block constant (alpha > 0 adds 16x16 detail)
    with torch.no_grad():
        x = G(torch.randn(2, 8))
    assert not torch.equal(x, x[:, :, ::2, ::2].repeat_interleave(2, 2).repeat_interleave(2, 3))
    assert main(["export", str(runs / "straight"), "--format", "torchscript", "--out",
                 str(tmp_path / "g.pt")]) == 0
    ts = torch.jit.load(str(tmp_path / "g.pt"))
    z = torch.randn(3, 8)
    with torch.no_grad():
        np.testing.assert_allclose(ts(z).numpy(), G.eval()(z).numpy(), atol=1e-5)


def test_the_sample_grid_of_an_early_step_shows_4x4_content_repeated(runs, tmp_path):
    """At step 1 the grid shows the 4x4 level, each pixel repeated 4x4 times."""
    out = tmp_path / "early"
    assert main(["train", "pggan", "--steps", "1", "--out", str(out), *TINY]) == 0
    G = api.load(out).net(ema=True)
    assert (G.level, G.alpha) == (0, 1.0)
    with torch.no_grad():
        x = G(torch.randn(2, 8))
    torch.testing.assert_close(x, x[:, :, ::4, ::4].repeat_interleave(4, 2)
                               .repeat_interleave(4, 3), rtol=0, atol=0)
