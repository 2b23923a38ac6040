"""Data parallelism without processes: shards of the global batch, draws for the global
batch, the settings several processes refuse, World from torchrun's variables."""

from __future__ import annotations

import pytest
import torch

from gankit import api
from gankit.config import TrainConfig
from gankit.data._common import Dataset
from gankit.training.batches import BatchSource
from gankit.training.context import StepContext
from gankit.training.parallel import check_config
from gankit.utils.distributed import World


def _data(n: int = 40) -> Dataset:
    x = torch.arange(n, dtype=torch.float32).unsqueeze(1)  # row i holds the value i
    return Dataset(x, None, 0, "points", "toy")


def test_shards_are_the_global_batch_split_in_rank_order():
    train = TrainConfig(batch_size=12, seed=3)
    whole = BatchSource(_data(), train, torch.device("cpu"))
    parts = [BatchSource(_data(), train, torch.device("cpu"), shard=(r, 3)) for r in range(3)]
    for step in (0, 1, 7):
        rows = [p.batch(step, 0)[0] for p in parts]
        assert [len(r) for r in rows] == [4, 4, 4]
        assert torch.equal(torch.cat(rows), whole.batch(step, 0)[0])
    assert parts[2].size(0) == 12  # the global size, which latents are drawn for


def test_a_global_batch_that_does_not_split_is_refused():
    with pytest.raises(ValueError, match=r"the batch size 10 \(from step 0\) does not divide "
                                         "by the 3 processes of data parallelism; use a "
                                         "multiple of 3"):
        BatchSource(_data(), TrainConfig(batch_size=10), torch.device("cpu"), shard=(0, 3))


def test_per_sample_draws_cover_the_global_batch():
    def noise(x, gen):  # one draw per row, as an augmentation makes
        return x + torch.rand(len(x), 1, generator=gen)

    x = torch.arange(6, dtype=torch.float32).unsqueeze(1)
    expected = noise(x, torch.Generator().manual_seed(0))
    for rank in (0, 1, 2):
        src = BatchSource(_data(), TrainConfig(batch_size=6), torch.device("cpu"),
                          shard=(rank, 3))
        got = src.per_sample(noise, x[2 * rank:2 * rank + 2], torch.Generator().manual_seed(0))
        torch.testing.assert_close(got, expected[2 * rank:2 * rank + 2], rtol=0, atol=0)


def test_step_context_local_draw_takes_this_rank_rows():
    ctx = StepContext(None, None, None, torch.zeros(2), None, None, torch.zeros(2), 0,
                      torch.Generator(), shard=(1, 2))
    assert torch.equal(ctx.local_draw(torch.arange, 2), torch.tensor([2, 3]))


def test_world_from_torchrun_variables():
    w = World.from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (w.rank, w.size, w.local_rank, w.is_main, w.shard) == (3, 4, 1, False, (3, 4))
    one = World.from_env({})
    assert (one.size, one.is_main, one.sync) == (1, True, None)
    values = {"loss/D": torch.tensor(1.5)}
    assert one.mean(values) is values


@pytest.mark.parametrize("overrides, message", [
    (["train.batch_size=30"], "batch_size .* 30 is the global batch, split evenly over 4 "
                              "processes; use a multiple of 4"),
    (["train.batch_size=32", "pack=16"], "in packs of 16; use a multiple of 64"),
    (["train.sync_batchnorm=true"], "train.sync_batchnorm=true needs CUDA"),
    (["train.unrolled_steps=2"], "train.unrolled_order=2 is not supported with several"),
])
def test_settings_several_processes_cannot_run_are_refused(overrides, message):
    config = api.make_config("gan", data="ring", overrides=["train.batch_size=32", *overrides])
    with pytest.raises(ValueError, match=message):
        check_config(config, 4, torch.device("cpu"))
    check_config(config, 1, torch.device("cpu"))  # one process runs them all


class _NeedsKeyword(ValueError):
    def __init__(self, message: str, *, where: str) -> None:
        super().__init__(message)
        self.where = where


def test_an_error_that_cannot_be_pickled_is_sent_as_its_builtin_base():
    from gankit.utils.distributed import _picklable

    sent = _picklable(_NeedsKeyword("bad value", where="x"))
    assert type(sent) is ValueError and str(sent) == "bad value"
    error = FileNotFoundError("no run")
    assert _picklable(error) is error
