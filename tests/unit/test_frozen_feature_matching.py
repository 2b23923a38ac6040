"""regularizers.frozen_feature_matching: feature matching in the feature space of a frozen
copy of D, against the exact mean of its features over the data; values by hand."""

import pytest
import torch
from torch import nn

from gankit import api
from gankit.regularizers.frozen_feature_matching import FrozenFeatureMatching
from gankit.training.checkpoint import load_latest
from gankit.training.context import StepContext

SD = 2.0 + 1e-3  # the sample std of the real points 0, 2, 4, plus the 1e-3 guard


class _ScaleD(nn.Module):
    """features = scale * x; scale is a parameter, so D can change after the snapshot."""

    conditional = False

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def score(self, x, c=None):
        f = self.scale * x
        return {"logits": f[:, 0], "features": f}


def _ctx(D, fake, step):
    return StepContext(None, D, None, fake, None, None, fake[:, 0], step, torch.Generator(),
                       phase="G")


def _reg(weight=0.5, from_step=3):
    reg = FrozenFeatureMatching(weight=weight, from_step=from_step)
    reg.real_x, reg.real_y = torch.tensor([[0.0], [2.0], [4.0]]), None
    return reg


def test_value_and_gradient_by_hand():
    """Real 0, 2, 4: mean 2, sample std 2. Fakes 1 and 5 standardise to -1/SD and 3/SD,
    mean 1/SD, so the value is 0.5 / SD^2; each fake's gradient is
    0.5 * 2 * (1/SD) * (1/2) * (1/SD) = 0.5 / SD^2."""
    reg = _reg()
    fake = torch.tensor([[1.0], [5.0]], requires_grad=True)
    value = reg(_ctx(_ScaleD(), fake, step=3))
    assert value.item() == pytest.approx(0.5 / SD**2, rel=1e-6)
    value.backward()
    torch.testing.assert_close(fake.grad, torch.full((2, 1), 0.5 / SD**2))
    assert reg.mu.item() == pytest.approx(2.0) and reg.sd.item() == pytest.approx(SD)


def test_zero_before_from_step_then_a_copy_that_later_changes_to_d_do_not_reach():
    reg, D = _reg(), _ScaleD()
    fake = torch.tensor([[1.0], [5.0]])
    assert reg(_ctx(D, fake, step=2)).item() == 0.0
    assert reg.frozen is None  # no snapshot yet
    first = reg(_ctx(D, fake, step=3)).item()
    with torch.no_grad():
        D.scale.fill_(10.0)  # D trains on; the frozen copy must not follow
    assert reg(_ctx(D, fake, step=4)).item() == pytest.approx(first)
    assert reg.snapshot_step == 3 and reg.frozen.scale.item() == 1.0
    assert not reg.frozen.training and not reg.frozen.scale.requires_grad


def test_state_dict_round_trip_restores_the_snapshot_from_the_run_d():
    reg, D = _reg(), _ScaleD()
    fake = torch.tensor([[1.0], [5.0]])
    with torch.no_grad():
        D.scale.fill_(2.0)
    value = reg(_ctx(D, fake, step=5)).item()  # features 2x: mu 4, sd 4 + 1e-3
    assert value == pytest.approx(0.5 * (2 / (4 + 1e-3)) ** 2, rel=1e-6)
    saved = reg.state_dict()
    fresh = _reg()
    fresh.load_state_dict(saved)
    assert fresh.state_dict()["step"] == 5  # a loaded, not yet rebuilt, snapshot is kept
    other = _ScaleD()  # the run's D at resume: other weights, same architecture
    with torch.no_grad():
        other.scale.fill_(7.0)
    assert fresh(_ctx(other, fake, step=6)).item() == pytest.approx(value)
    assert fresh.frozen.scale.item() == 2.0
    empty = _reg()
    empty.load_state_dict({})
    assert empty.state_dict() == {} and empty.frozen is None


def test_running_average_steers_by_hand():
    """average 0.5. Call 1, fakes 1 and 5: batch mean m1 = 1/SD; the raw average is
    0.5 * m1, bias corrected a = m1, so value and gradient are the plain term's.
    Call 2, fakes 2 and 2: m2 = 0 (the plain term is 0 with no gradient); the raw average
    0.25 / SD, corrected by 1 - 0.25: a = 1 / (3 SD). Value 0.5 * a^2; each fake's
    gradient 0.5 * 2 * a * (1/2) * (1/SD) = 1 / (6 SD^2)."""
    reg, D = FrozenFeatureMatching(weight=0.5, from_step=3, average=0.5), _ScaleD()
    reg.real_x, reg.real_y = torch.tensor([[0.0], [2.0], [4.0]]), None
    fake = torch.tensor([[1.0], [5.0]], requires_grad=True)
    value = reg(_ctx(D, fake, step=3))
    value.backward()
    assert value.item() == pytest.approx(0.5 / SD**2, rel=1e-6)
    torch.testing.assert_close(fake.grad, torch.full((2, 1), 0.5 / SD**2))
    saved = reg.state_dict()
    assert saved["avg_count"] == 1 and saved["avg"].item() == pytest.approx(0.5 / SD)
    resumed = FrozenFeatureMatching(weight=0.5, from_step=3, average=0.5)
    resumed.load_state_dict(saved)
    for r in (reg, resumed):  # a resumed average continues exactly
        fake = torch.tensor([[2.0], [2.0]], requires_grad=True)
        value = r(_ctx(D, fake, step=4))
        value.backward()
        assert value.item() == pytest.approx(0.5 / (3 * SD) ** 2, rel=1e-6)
        torch.testing.assert_close(fake.grad, torch.full((2, 1), 1 / (6 * SD**2)))
    plain = _reg()
    plain.snapshot(D, 3)
    fake = torch.tensor([[2.0], [2.0]], requires_grad=True)
    assert plain(_ctx(D, fake, step=4)).item() == 0.0


def test_refresh_takes_a_new_snapshot_and_restarts_the_average():
    reg, D = FrozenFeatureMatching(weight=0.5, from_step=3, average=0.5, refresh=2), _ScaleD()
    reg.real_x, reg.real_y = torch.tensor([[0.0], [2.0], [4.0]]), None
    fake = torch.tensor([[1.0], [5.0]])
    reg(_ctx(D, fake, step=3))
    with torch.no_grad():
        D.scale.fill_(2.0)
    reg(_ctx(D, fake, step=4))  # within the refresh period: the old copy
    assert reg.snapshot_step == 3 and reg.frozen.scale.item() == 1.0 and reg.avg_count == 2
    value = reg(_ctx(D, fake, step=5)).item()  # step 3 + 2: a new copy, features 2x
    assert reg.snapshot_step == 5 and reg.frozen.scale.item() == 2.0 and reg.avg_count == 1
    assert reg.mu.item() == pytest.approx(4.0)
    assert value == pytest.approx(0.5 * (2 / (4 + 1e-3)) ** 2, rel=1e-6)  # no old average


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="frozen_feature_matching needs weight >= 0, from_step"):
        FrozenFeatureMatching(weight=-1.0)
    with pytest.raises(ValueError, match="from_step >= 0"):
        FrozenFeatureMatching(from_step=-5)
    with pytest.raises(ValueError, match="0 <= average < 1.*average=1.0"):
        FrozenFeatureMatching(average=1.0)
    with pytest.raises(ValueError, match="refresh >= 0.*refresh=-1"):
        FrozenFeatureMatching(refresh=-1)


def test_without_setup_the_snapshot_says_why():
    reg = FrozenFeatureMatching()
    with pytest.raises(RuntimeError, match="setup\\(trainer\\) was not called"):
        reg(_ctx(_ScaleD(), torch.ones(2, 1), step=0))


SETS = ["generator.width=8", "discriminator.width=8", "train.batch_size=16",
        "train.log_interval=5", "regularizers.frozen_feature_matching.weight=0.05",
        "regularizers.frozen_feature_matching.from_step=3"]


@pytest.mark.parametrize("extra", [[], ["regularizers.frozen_feature_matching.average=0.9",
                                         "regularizers.frozen_feature_matching.refresh=4"]])
def test_training_resume_is_exact_and_the_snapshot_is_checkpointed(tmp_path, extra):
    """With ``extra``: the resume at step 5 carries the running average (snapshot 3, new
    snapshot at step 7, so the resumed run must also refresh on time)."""
    full, part = tmp_path / "full", tmp_path / "part"
    sets = [*SETS, *extra]
    api.train("dcgan", data="digits", out=full, steps=8, overrides=sets, progress=False)
    api.train("dcgan", data="digits", out=part, steps=5, overrides=sets, progress=False)
    api.resume(part, steps=8, progress=False)
    a, _ = load_latest(full)
    b, _ = load_latest(part)
    snap = a["regularizers"]["frozen_feature_matching"]
    assert snap["step"] == (7 if extra else 3) and snap["mu"].shape == snap["sd"].shape
    if extra:  # only the last G step (step 7) is averaged since the refresh
        assert snap["avg_count"] == 1 and torch.equal(
            snap["avg"], b["regularizers"]["frozen_feature_matching"]["avg"])
    for name, value in snap["D"].items():
        assert torch.equal(value, b["regularizers"]["frozen_feature_matching"]["D"][name])
    for key in ("G", "D"):
        for name, value in a[key].items():
            assert torch.equal(value, b[key][name]), f"{key}.{name}"
    # the term changes training: the same run without it ends elsewhere
    plain = tmp_path / "plain"
    api.train("dcgan", data="digits", out=plain, steps=8, overrides=SETS[:4], progress=False)
    c, _ = load_latest(plain)
    assert not torch.equal(a["G"][next(iter(a["G"]))], c["G"][next(iter(c["G"]))])
    assert c["regularizers"] == {}


@pytest.mark.parametrize("extra", [["pack=2"], []])
def test_packed_and_conditional_d_train(tmp_path, extra):
    preset = "dcgan" if extra else "cgan"
    api.train(preset, data="digits", out=tmp_path / "run", steps=4, progress=False,
              overrides=[*SETS[:4], "regularizers.frozen_feature_matching.weight=0.05",
                         "regularizers.frozen_feature_matching.from_step=1", *extra])
    snap, _ = load_latest(tmp_path / "run")
    assert snap["regularizers"]["frozen_feature_matching"]["step"] == 1


def test_before_from_step_training_is_bitwise_the_run_without_it(tmp_path):
    """So a recipe that switches the term on at step S shares its first S steps with the
    recipe without it (the Stacked MNIST branches rely on this)."""
    api.train("dcgan", data="digits", out=tmp_path / "a", steps=6, progress=False,
              overrides=[*SETS[:4], "regularizers.frozen_feature_matching.weight=0.05",
                         "regularizers.frozen_feature_matching.from_step=100"])
    api.train("dcgan", data="digits", out=tmp_path / "b", steps=6, progress=False,
              overrides=SETS[:4])
    a, _ = load_latest(tmp_path / "a")
    b, _ = load_latest(tmp_path / "b")
    assert a["regularizers"] == {"frozen_feature_matching": {}}
    for key in ("G", "D"):
        for name, value in a[key].items():
            assert torch.equal(value, b[key][name]), f"{key}.{name}"
