"""The residual presets through the CLI: bitwise-exact resume of sngan_resnet, sagan and
biggan (tiny widths, digits at 32x32), and ``gankit sample --truncation``."""

import re

import numpy as np
import pytest
import torch

from gankit.cli import main
from gankit.training.checkpoint import list_checkpoints, load_checkpoint

TINY = ["--set", "generator.width=2", "--set", "discriminator.width=2",
        "--set", "train.batch_size=8", "--set", "train.log_interval=2",
        "--set", "train.sample_interval=0", "--set", "train.checkpoint_interval=2",
        "--set", "hooks.ema.standing_samples=16", "--set", "data.resolution=32",
        "--data", "digits", "--no-progress"]


def _train(tmp_path, preset, steps, name, *extra):
    out = tmp_path / name
    assert main(["train", preset, "--steps", str(steps), "--out", str(out), *TINY,
                 *extra]) == 0
    return out


def _state(run):
    ckpt = load_checkpoint(list_checkpoints(run)[-1])
    return {**{f"{net}.{k}": v for net in ("G", "D", "G_ema") for k, v in ckpt[net].items()},
            "d_opt": ckpt["d_opt"]["state"][0]["exp_avg"],
            "g_opt": ckpt["g_opt"]["state"][0]["exp_avg"]}


# biggan with attention added holds every part of the family (self-attention, spectral norm
# in G and D, hierarchical latent, shared embedding, orthogonal penalty, standing
# statistics) and runs by default; the other two presets run with the slow tests
@pytest.mark.parametrize("preset, extra", [
    pytest.param("sngan_resnet", [], marks=pytest.mark.slow),
    pytest.param("sagan", [], marks=pytest.mark.slow),
    ("biggan", ["--set", "generator.attention=[16]", "--set", "discriminator.attention=[16]"]),
])
def test_resume_of_a_residual_preset_is_bitwise_exact(tmp_path, preset, extra):
    straight = _train(tmp_path, preset, 2, "straight", *extra)
    split = _train(tmp_path, preset, 1, "split", *extra)
    assert main(["train", "--resume", str(split), "--steps", "2", "--no-progress"]) == 0
    a, b = _state(straight), _state(split)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_biggan_samples_with_truncation_and_dcgan_refuses_it(tmp_path, capsys):
    run = _train(tmp_path, "biggan", 2, "biggan")
    out = tmp_path / "t0.npz"
    assert main(["sample", str(run), "--n", "4", "--class", "3", "--truncation", "0",
                 "--out", str(out)]) == 0
    x = np.load(out)["x"]
    assert x.shape == (4, 1, 32, 32)
    np.testing.assert_array_equal(x, np.broadcast_to(x[:1], x.shape))  # psi 0: one image
    assert main(["sample", str(run), "--n", "4", "--class", "3", "--truncation", "1.5",
                 "--out", str(tmp_path / "t1.npz")]) == 0
    assert not np.array_equal(np.load(tmp_path / "t1.npz")["x"][0],
                              np.load(tmp_path / "t1.npz")["x"][1])
    assert main(["sample", str(run), "--n", "2", "--truncation", "-1", "--out",
                 str(tmp_path / "bad.npz")]) == 2
    assert "--truncation must be a finite number >= 0" in capsys.readouterr().err

    dcgan = tmp_path / "dcgan"
    assert main(["train", "dcgan", "--steps", "1", "--out", str(dcgan), "--data", "digits",
                 "--set", "generator.width=4", "--set", "discriminator.width=4",
                 "--set", "train.batch_size=8", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["sample", str(dcgan), "--n", "2", "--truncation", "0.5", "--out",
                 str(tmp_path / "d.npz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gankit: error: --truncation: this generator (dcgan) has no truncation "
                   "trick; --truncation applies to biggan and stylegan2 runs"]
    assert not (tmp_path / "d.npz").exists()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:FID statistics from 40 samples")
def test_eval_scores_truncated_samples_under_keys_that_say_so(tmp_path, capsys):
    from gankit import api
    from gankit.evaluation import evaluate

    run = _train(tmp_path, "biggan", 1, "biggan")
    assert main(["eval", str(run), "--n", "40", "--metrics", "fid", "--truncation", "0.5",
                 "--no-cache"]) == 0
    assert re.search(r"^fid_40_digits_at32x1_\S+_trunc0\.5 ", capsys.readouterr().out, re.M)
    assert (run / "metrics" / "eval_n40_trunc0.5.json").exists()
    # the same number as the samples `gankit sample --truncation 0.5` draws with that seed
    loaded = api.load(run)
    x = api.sample(loaded, 40, truncation=0.5)
    direct = evaluate(x, metrics=["fid"], run_config=loaded.config, cache=None)
    via_run = evaluate(run, metrics=["fid"], n=40, truncation=0.5, cache=None)
    assert list(via_run.values()) == list(direct.values())
    with pytest.raises(ValueError, match="cannot be combined with --refine; got a samples"):
        evaluate(x, metrics=["fid"], truncation=0.5, run_config=loaded.config)
