"""train.precision=bf16: G's and D's forward passes run under bfloat16 autocast while the
weights, optimiser state and losses stay float32."""

import pytest
import torch

from gankit import api
from gankit.config import resolve
from gankit.training.loop import Trainer
from gankit.training.state import build_state


def _trainer(*overrides):
    sets = ["generator.width=8", "discriminator.width=8", "train.batch_size=16", *overrides]
    config = api.make_config("dcgan", data="digits", device="cpu", overrides=sets)
    ds = api.dataset_for(config)
    state = build_state(config, api.data_info(ds), torch.device("cpu"))
    return Trainer(state, ds, None, progress=False)


def _first_conv_dtypes(trainer):
    seen = []
    first = next(m for m in trainer.state.D.modules() if isinstance(m, torch.nn.Conv2d))
    first.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    return seen


@pytest.mark.parametrize("precision, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_d_convolutions_run_in_the_chosen_precision_and_weights_stay_float32(precision, dtype):
    t = _trainer(f"train.precision={precision}")
    seen = _first_conv_dtypes(t)
    t.run(2)
    assert set(seen) == {dtype}
    for net in (t.state.G, t.state.D):
        assert {p.dtype for p in net.parameters()} == {torch.float32}
    for opt in (t.state.g_opt, t.state.d_opt):
        assert {v.dtype for s in opt.state.values() for v in s.values() if v.is_floating_point()
                } == {torch.float32}
    assert t.last["loss/D"].dtype == torch.float32 and t.last["loss/G"].dtype == torch.float32


def test_bf16_losses_are_close_to_float32_but_not_equal():
    """The same first step in both precisions: bfloat16 has an 8-bit significand, so D's
    and G's losses agree to about 1e-2 relative, and differ (autocast is on)."""
    losses = {}
    for precision in ("fp32", "bf16"):
        t = _trainer(f"train.precision={precision}")
        t.d_step(0, log=True)
        t.g_step(log=True)
        losses[precision] = (t.last["loss/D"].item(), t.last["loss/G"].item())
    for a, b in zip(losses["fp32"], losses["bf16"]):
        assert a != b
        assert b == pytest.approx(a, rel=3e-2)


def test_other_precisions_are_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"train.precision must be fp32, bf16 or fp16, got "
                                         r"'fp8'"):
        resolve("dcgan", ["train.precision=fp8"])
    with pytest.raises(ValueError, match=r"fp16 with train.unrolled_steps.*use bf16 or fp32"):
        resolve("dcgan", ["train.precision=fp16", "train.unrolled_steps=2"])


def test_fp16_unscales_gradients_and_skips_an_overflowing_update():
    """The scaled backward leaves the true gradient (d/dw of (w.x) is x); an infinite
    gradient skips the step, halves the scale and is counted."""
    from gankit.training.updates import Updates

    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    module = torch.nn.Module()
    module.w = w
    opt = torch.optim.SGD([w], lr=0.1)
    up = Updates("fp16", torch.device("cpu"))
    x = torch.tensor([3.0, 4.0, -1.0])
    up.backward((w * x).sum(), opt, "D")
    torch.testing.assert_close(w.grad, x)
    up.step(opt, module, "D")
    torch.testing.assert_close(w.detach(), torch.tensor([0.7, -2.4, 0.6]))
    assert up.skipped == {"D": 0, "G": 0}
    opt.zero_grad()
    before = w.detach().clone()
    up.backward((w * torch.tensor([float("inf"), 1.0, 1.0])).sum(), opt, "D")
    up.step(opt, module, "D")
    torch.testing.assert_close(w.detach(), before)
    assert up.skipped == {"D": 1, "G": 0}
    assert up.scalers["D"].get_scale() == 2.0 ** 15  # 2^16 halved once
    assert up.log_values() == {"precision/skipped_D": 1.0, "precision/skipped_G": 0.0}
    fresh = Updates("fp16", torch.device("cpu"))
    fresh.load_state_dict(up.state_dict())
    assert fresh.scalers["D"].get_scale() == 2.0 ** 15 and fresh.skipped["D"] == 1
    assert Updates("fp32", torch.device("cpu")).log_values() == {}


def test_fp16_trains_with_float16_convolutions_and_checkpoints_its_scalers(tmp_path):
    t = _trainer("train.precision=fp16")
    seen = _first_conv_dtypes(t)
    t.run(2)
    assert set(seen) == {torch.float16}
    assert {p.dtype for p in t.state.D.parameters()} == {torch.float32}
    assert t.state.extra["updates"]["scalers"]["G"]["scale"] == 2.0 ** 16
    assert t.last["loss/D"].dtype == torch.float32


def test_bf16_is_refused_on_a_gpu_without_it_naming_the_option(monkeypatch):
    from gankit.utils.precision import check_bf16

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(ValueError, match=r"^train\.precision=bf16: this GPU has no bfloat16 "
                       r"support; use train\.precision=fp32$"):
        check_bf16(torch.device("cuda"), "train.precision")
    check_bf16(torch.device("cpu"), "train.precision")  # the CPU emulates it: allowed
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    check_bf16(torch.device("cuda"), "train.precision")


@pytest.mark.parametrize("bf16, dtype", [(False, torch.float32), (True, torch.bfloat16),
                                         (torch.float16, torch.float16), (None, torch.float32)])
def test_the_shared_autocast_context(bf16, dtype):
    from gankit.utils.precision import autocast

    a = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))
    with autocast(torch.device("cpu"), bf16):
        assert (a @ a).dtype == dtype
