"""NCCL on one GPU: the collectives data-parallel training uses, and a torchrun launch of a
CUDA training run. Several GPUs are needed for a multi-process NCCL run (two processes
cannot share one GPU under NCCL); the CPU suite covers the maths with gloo
(tests/integration/test_distributed.py)."""

import os
import subprocess
import sys

import pytest
import torch

from gankit.training.checkpoint import list_checkpoints, load_checkpoint

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_gradient_averaging_through_nccl_with_one_process():
    import torch.distributed as dist

    from gankit.utils.distributed import World

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    dist.init_process_group("cpu:gloo,cuda:nccl", rank=0, world_size=1)
    try:
        net = torch.nn.Linear(4, 3).cuda()
        net(torch.ones(2, 4, device="cuda")).sum().backward()
        expected = net.weight.grad.clone()
        World(0, 1, 0, torch.device("cuda")).average_gradients(net)  # all-reduce over NCCL
        torch.testing.assert_close(net.weight.grad, expected)
        assert dist.get_backend() in ("nccl", "cpu:gloo,cuda:nccl")
    finally:
        dist.destroy_process_group()


def test_torchrun_launch_trains_on_cuda(tmp_path):
    run = tmp_path / "r"
    cmd = [sys.executable, "-m", "gankit", "train", "dcgan", "--data", "digits", "--steps",
           "4", "--out", str(run), "--device", "cuda", "--nproc", "1", "--no-progress",
           "--set", "generator.width=8", "--set", "discriminator.width=8",
           "--set", "train.batch_size=16"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert load_checkpoint(list_checkpoints(run)[-1])["step"] == 4
