"""CUDA: training in each precision, resume, sampling and evaluation on the GPU.

These run where a CUDA device is present (``pytest -m gpu``) and are skipped elsewhere;
the default suite deselects them. The data-parallel (NCCL) test is in
tests/gpu/test_cuda_distributed.py.
"""

import numpy as np
import pytest
import torch

from gankit.cli import main
from gankit.training.checkpoint import list_checkpoints, load_checkpoint

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

TINY = ["--data", "mnist5k", "--device", "cuda", "--no-progress",
        "--set", "generator.width=16", "--set", "discriminator.width=16",
        "--set", "train.batch_size=32", "--set", "train.sample_interval=0"]


def _train(run, steps, *extra):
    return main(["train", "dcgan", "--steps", str(steps), "--out", str(run), *TINY, *extra])


def _last(run):
    return load_checkpoint(list_checkpoints(run)[-1])


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_on_cuda_in_each_precision(tmp_path, precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    assert _train(tmp_path / "r", 20, "--set", f"train.precision={precision}") == 0
    ckpt = _last(tmp_path / "r")
    assert ckpt["step"] == 20
    assert all(torch.isfinite(v).all() for v in ckpt["G"].values())
    if precision == "fp16":  # the scalers are checkpointed; at most a few overflow skips
        scalers = ckpt["extra"]["updates"]["scalers"]
        assert set(scalers) == {"D", "G"} and scalers["G"]["scale"] > 1
        assert sum(ckpt["extra"]["updates"]["skipped"].values()) < 10


@pytest.mark.parametrize("extra", [[], ["--set", "train.deterministic=true"]])
def test_cuda_resume_continues(tmp_path, extra):
    """With train.deterministic, a resumed CUDA run equals the uninterrupted one bit for bit;
    without, it matches to float tolerance (cuDNN may pick other algorithms)."""
    assert _train(tmp_path / "a", 6, *extra) == 0
    assert _train(tmp_path / "b", 3, *extra) == 0
    assert main(["train", "--resume", str(tmp_path / "b"), "--steps", "6",
                 "--no-progress"]) == 0
    a, b = _last(tmp_path / "a"), _last(tmp_path / "b")
    for k, v in a["G"].items():
        if extra:
            assert torch.equal(v, b["G"][k]), k
        else:
            torch.testing.assert_close(v, b["G"][k], rtol=1e-3, atol=1e-4)


def test_cuda_sample_and_eval(tmp_path):
    assert _train(tmp_path / "r", 10) == 0
    out = tmp_path / "s.npz"
    assert main(["sample", str(tmp_path / "r"), "--n", "100", "--out", str(out),
                 "--device", "cuda"]) == 0
    x = np.load(out)["x"]
    assert x.shape[0] == 100 and np.isfinite(x).all()
    assert main(["eval", str(tmp_path / "r"), "--metrics", "fid", "-n", "500",
                 "--against", "mnist5k"]) == 0


def test_compile_and_channels_last_on_cuda(tmp_path):
    assert _train(tmp_path / "r", 10, "--set", "train.compile=true",
                  "--set", "train.channels_last=true") == 0
    assert _last(tmp_path / "r")["step"] == 10
