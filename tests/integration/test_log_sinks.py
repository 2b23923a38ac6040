"""log.sinks: TensorBoard event files and a W&B run mirror log.jsonl (numbers, sample grids,
evaluations) through a CLI training run; a resume appends; a missing package is one line."""

import io
import json
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.config import resolve
from gankit.training.sinks import TensorBoardSink, scalar_values

TINY = ["--set", "generator.width=8", "--set", "discriminator.width=8",
        "--set", "train.batch_size=16", "--set", "train.log_interval=1",
        "--set", "train.sample_interval=3", "--set", "train.checkpoint_interval=2",
        "--data", "digits", "--no-progress"]


def _jsonl_scalars(run) -> dict[str, list[tuple[int, float]]]:
    """{key: [(step, value), ...]} of every number in log.jsonl, in file order."""
    out: dict[str, list] = {}
    for line in (run / "log.jsonl").read_text().splitlines():
        record = json.loads(line)
        for key, value in scalar_values(record).items():
            out.setdefault(key, []).append((record["step"], value))
    return out


def _events(run):
    ea_mod = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="the tensorboard sink needs pip install 'gankit[tensorboard]'")
    ea = ea_mod.EventAccumulator(str(run / "tensorboard"),
                                 size_guidance={"scalars": 0, "images": 0})
    ea.Reload()
    return ea


def _tb_scalars(ea) -> dict[str, list[tuple[int, float]]]:
    tags = {t: [(e.step, e.value) for e in ea.Scalars(t)] for t in ea.Tags()["scalars"]}
    return {t: v for t, v in tags.items() if v}  # a purged tag may remain without events


def _as_float32(scalars):
    # event files store scalars as float32
    return {k: [(s, float(np.float32(v))) for s, v in pairs] for k, pairs in scalars.items()}


def test_tensorboard_mirrors_the_log_grids_and_evaluations_and_resume_appends(
        tmp_path, monkeypatch):
    pytest.importorskip("torch.utils.tensorboard",
                        reason="the tensorboard sink needs pip install 'gankit[tensorboard]'")
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    assert main(["train", "dcgan", "--steps", "5", "--out", str(run), *TINY,
                 "--set", "log.sinks=[tensorboard]", "--set", "eval.interval=4",
                 "--set", "eval.n=128", "--set", "eval.metrics=[fid]"]) == 0
    jsonl = _jsonl_scalars(run)
    assert [s for s, _ in jsonl["loss/D"]] == [1, 2, 3, 4, 5]
    assert [s for s, _ in jsonl["fid_128_digits_lenet"]] == [4]
    ea = _events(run)
    assert _tb_scalars(ea) == _as_float32(jsonl)  # keys, steps and values, nothing else
    # the grids: one per saved step, the PNG's own pixels
    grids = ea.Images("samples")
    assert [e.step for e in grids] == [3, 5]
    for event in grids:
        png = np.asarray(Image.open(run / "samples" / f"step_{event.step:08d}.png")
                         .convert("RGB"))
        shown = np.asarray(Image.open(io.BytesIO(event.encoded_image_string)).convert("RGB"))
        assert (event.height, event.width) == png.shape[:2] == (328, 328)
        np.testing.assert_array_equal(shown, png)

    # resume from step 4 after a run that logged up to 5: what it logged after 4 (here a
    # planted wrong value and a stale key) is hidden, as log.jsonl drops it
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(run / "tensorboard")) as w:
        w.add_scalar("loss/D", 999.0, 5)
        w.add_scalar("stale/x", 1.0, 5)
    for path in (run / "checkpoints").glob("step_00000005.*"):
        path.unlink()
    first_files = sorted((run / "tensorboard").iterdir())
    assert main(["train", "--resume", str(run), "--steps", "7", "--no-progress"]) == 0
    files = sorted((run / "tensorboard").iterdir())
    assert len(files) == len(first_files) + 1 and set(first_files) < set(files)  # appended
    jsonl = _jsonl_scalars(run)
    assert [s for s, _ in jsonl["loss/D"]] == [1, 2, 3, 4, 5, 6, 7]
    ea = _events(run)
    tb = _tb_scalars(ea)
    assert "stale/x" not in tb and 999.0 not in [v for _, v in tb["loss/D"]]
    assert tb == _as_float32(jsonl)
    assert [e.step for e in ea.Images("samples")] == [3, 6, 7]


class _FakeRun:
    def __init__(self, kwargs):
        self.kwargs, self.logged, self.finished = kwargs, [], False

    def log(self, values, step):
        self.logged.append((step, dict(values)))

    def finish(self):
        self.finished = True


def _fake_wandb(runs):
    module = types.ModuleType("wandb")
    module.init = lambda **kwargs: runs.append(_FakeRun(kwargs)) or runs[-1]
    module.Image = lambda array: ("image", np.asarray(array).shape)
    return module


def test_wandb_receives_the_same_scalars_offline_by_default(tmp_path, monkeypatch):
    runs: list[_FakeRun] = []
    monkeypatch.setitem(sys.modules, "wandb", _fake_wandb(runs))
    monkeypatch.delenv("WANDB_MODE", raising=False)
    run = tmp_path / "run"
    assert main(["train", "dcgan", "--steps", "4", "--out", str(run), *TINY,
                 "--set", "log.sinks=[wandb]"]) == 0
    (w,) = runs
    assert w.finished and w.kwargs["mode"] == "offline" and w.kwargs["resume"] == "allow"
    assert w.kwargs["dir"] == str(run) and w.kwargs["config"]["log"]["sinks"] == ["wandb"]
    got: dict[str, list] = {}
    for step, values in w.logged:
        for key, value in values.items():
            if key != "samples":
                got.setdefault(key, []).append((step, value))
    assert got == _jsonl_scalars(run)  # float64, unrounded
    assert [(s, v["samples"]) for s, v in w.logged if "samples" in v] == [
        (3, ("image", (328, 328, 3))), (4, ("image", (328, 328, 3)))]
    # a resume continues the same W&B run; WANDB_MODE set by the user is kept
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert main(["train", "--resume", str(run), "--steps", "5", "--no-progress"]) == 0
    assert runs[1].kwargs["id"] == w.kwargs["id"] and runs[1].kwargs["mode"] == "disabled"
    assert [s for s, v in runs[1].logged if "loss/D" in v] == [5]


@pytest.mark.parametrize("sink, package", [("wandb", "wandb"), ("tensorboard", "tensorboard")])
def test_a_missing_sink_package_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch,
                                                              sink, package):
    monkeypatch.setitem(sys.modules, package, None)  # import fails as if not installed
    run = tmp_path / "run"
    assert main(["train", "dcgan", "--steps", "2", "--out", str(run), *TINY,
                 "--set", f"log.sinks=[{sink}]"]) == 2
    err = capsys.readouterr().err
    assert err == (f"gankit: error: log.sinks={sink} needs {package} (not installed): "
                   f"pip install 'gankit[{sink}]'\n")
    assert not run.exists()  # nothing was started


def test_sink_names_are_validated():
    assert resolve("dcgan", ["log.sinks=[tensorboard, wandb]"]).log.sinks == (
        "tensorboard", "wandb")
    assert resolve("dcgan").log.sinks == ()
    with pytest.raises(ValueError, match=r"log.sinks: unknown log sink 'tensorbord'. Did you "
                       r"mean 'tensorboard'\? Valid log sink names: tensorboard, wandb"):
        resolve("dcgan", ["log.sinks=[tensorbord]"])
    with pytest.raises(ValueError, match="names a sink twice"):
        resolve("dcgan", ["log.sinks=[wandb, wandb]"])


SETS = ["generator.width=8", "discriminator.width=8", "train.batch_size=16",
        "train.log_interval=1", "train.checkpoint_interval=2", "log.sinks=[tensorboard]"]


def test_tensorboard_is_flushed_on_interrupt_and_follows_a_rollback(tmp_path, monkeypatch):
    import os
    import signal

    from gankit import api
    from gankit.losses.non_saturating import NonSaturating
    from gankit.training.faults import TrainingInterrupted

    pytest.importorskip("torch.utils.tensorboard",
                        reason="the tensorboard sink needs pip install 'gankit[tensorboard]'")

    def stop_at_3(trainer):
        if trainer.state.step == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    closed = []
    close = TensorBoardSink.close
    monkeypatch.setattr(TensorBoardSink, "close", lambda self: closed.append(close(self)))
    stopped = tmp_path / "stopped"
    with pytest.raises(TrainingInterrupted):
        api.train("dcgan", out=stopped, data="digits", steps=6, overrides=SETS,
                  progress=False, callbacks=[stop_at_3])
    assert len(closed) == 1  # closed (so flushed) on the way out
    tb = _tb_scalars(_events(stopped))
    assert [s for s, _ in tb["loss/D"]] == [1, 2, 3] and tb == _as_float32(
        _jsonl_scalars(stopped))

    calls = []
    g_loss = NonSaturating.g_loss

    def once_nan(self, fake_logits, real_logits=None):
        calls.append(1)
        value = g_loss(self, fake_logits)
        return value * float("nan") if len(calls) == 6 else value  # the 6th update's

    monkeypatch.setattr(NonSaturating, "g_loss", once_nan)
    run = tmp_path / "run"
    api.train("dcgan", out=run, data="digits", steps=7, overrides=SETS, progress=False)
    jsonl = _jsonl_scalars(run)
    assert jsonl["lr_scale"] == [(4, 0.5)]  # the rollback's record: back to step 4
    assert [s for s, _ in jsonl["loss/D"]] == [1, 2, 3, 4, 5, 6, 7]
    assert _tb_scalars(_events(run)) == _as_float32(jsonl)  # the failed step 5's hidden


def test_a_trainer_run_again_after_close_reopens_tensorboard_without_hiding(tmp_path):
    from gankit import api
    from gankit.training.loop import Trainer
    from gankit.training.state import build_state

    pytest.importorskip("torch.utils.tensorboard",
                        reason="the tensorboard sink needs pip install 'gankit[tensorboard]'")
    config = api.make_config("dcgan", data="digits", overrides=SETS)
    ds = api.dataset_for(config)
    state = build_state(config, api.data_info(ds, config), torch.device("cpu"))
    trainer = Trainer(state, ds, tmp_path, progress=False)
    trainer.run(2)
    trainer.out.close()
    trainer.run(3)
    trainer.out.close()
    jsonl = _jsonl_scalars(tmp_path)
    assert [s for s, _ in jsonl["loss/D"]] == [1, 2, 3]
    assert _tb_scalars(_events(tmp_path)) == _as_float32(jsonl)
