"""train.d_joint_batch: D scores the real and the fake batch in one call, so BatchNorm
normalises both with shared statistics."""

import math

import pytest
import torch
from torch import nn

from gankit import api
from gankit.training.loop import Trainer
from gankit.training.state import build_state


def _trainer(*overrides, preset="dcgan", data="digits"):
    sets = ["generator.width=8", "discriminator.width=8", "train.batch_size=16", *overrides]
    config = api.make_config(preset, data=data, device="cpu", overrides=sets)
    ds = api.dataset_for(config)
    state = build_state(config, api.data_info(ds), torch.device("cpu"))
    return Trainer(state, ds, None, progress=False)


class _BatchNormOnly(nn.Module):
    """features = BatchNorm (no affine) of 1-d points; logits = the feature."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(1, affine=False)

    def score(self, x, c=None):
        f = self.bn(x)
        return {"logits": f[:, 0], "features": f}


@pytest.mark.parametrize("joint", [False, True])
def test_shared_statistics_show_a_shift_that_separate_batches_hide(joint):
    """Real points 0, 2 and fake points 10, 12. Apart, each batch is normalised by its own
    mean and variance, so both become -1, +1 and D sees no difference; together (mean 6,
    variance 26) real becomes (-6, -4)/sqrt(26) and fake (4, 6)/sqrt(26)."""
    t = _trainer(f"train.d_joint_batch={str(joint).lower()}")
    real = torch.tensor([[0.0], [2.0]])
    fake = torch.tensor([[10.0], [12.0]])
    r, f = t.pair.score(_BatchNormOnly().train(), real, None, fake, None, step=0)
    eps = 1e-5  # BatchNorm's
    if joint:
        s = math.sqrt(26 + eps)
        torch.testing.assert_close(r["features"][:, 0], torch.tensor([-6 / s, -4 / s]))
        torch.testing.assert_close(f["features"][:, 0], torch.tensor([4 / s, 6 / s]))
    else:
        s = math.sqrt(1 + eps)
        for out in (r, f):
            torch.testing.assert_close(out["features"][:, 0], torch.tensor([-1 / s, 1 / s]))


def test_d_sees_one_batch_of_both_in_d_and_g_steps():
    t = _trainer("train.d_joint_batch=true")
    seen = []
    score = t.state.D.score
    t.state.D.score = lambda x, c=None: seen.append(x.shape[0]) or score(x, c)
    t.d_step(0, log=False)
    t.g_step(log=False)
    assert seen == [32, 32]  # D step: 16 real + 16 fake; G step: the same real batch + 16 fake
    plain = _trainer()
    seen.clear()
    score_plain = plain.state.D.score
    plain.state.D.score = lambda x, c=None: seen.append(x.shape[0]) or score_plain(x, c)
    plain.d_step(0, log=False)
    plain.g_step(log=False)
    assert seen == [16, 16, 16]


def test_joint_outputs_are_d_on_the_concatenated_batch_and_change_training():
    t = _trainer("train.d_joint_batch=true")
    real, fake = t.batches.x[:16], t.batches.x[16:32] * 0.5
    r, f = t.pair.score(t.state.D, real, None, fake, None, step=0)
    both = t.state.D.score(torch.cat([real, fake]))
    torch.testing.assert_close(torch.cat([r["logits"], f["logits"]]), both["logits"])
    apart = _trainer()
    t.run(2)
    apart.run(2)
    assert not torch.equal(next(t.state.G.parameters()), next(apart.state.G.parameters()))


def test_packed_d_splits_on_packed_rows():
    t = _trainer("train.d_joint_batch=true", "pack=2")
    real, fake = t.batches.x[:16], t.batches.x[16:32]
    r, f = t.pair.score(t.state.D, real, None, fake, None, step=0)
    assert r["logits"].shape == (8,) and f["logits"].shape == (8,)


def test_minibatch_layers_are_refused():
    with pytest.raises(ValueError, match="d_joint_batch=true cannot be combined with D's "
                                         "minibatch stddev"):
        _trainer("train.d_joint_batch=true", "discriminator.minibatch_stddev=4")


def test_joint_batch_starts_at_the_given_step():
    t = _trainer("train.d_joint_batch=true", "train.d_joint_batch_from=2",
                 "health.enabled=false", "train.log_interval=100")
    seen = []
    score = t.state.D.score
    t.state.D.score = lambda x, c=None: seen.append((t.state.step, x.shape[0])) or score(x, c)
    t.run(4)
    assert [n for step, n in seen if step < 4] == [16, 16, 16, 16, 16, 16, 32, 32, 32, 32]


def test_negative_start_is_refused():
    with pytest.raises(ValueError, match=r"d_joint_batch_from must be >= 0 \(0 = throughout"):
        _trainer("train.d_joint_batch=true", "train.d_joint_batch_from=-1")
