"""The loop's GAN semantics (issue 33 §1), pinned at the level of the loop: which D scores
what, when penalties run, how they see packing and precision, and what extending a run means."""

import pytest
import torch
from torch.testing import assert_close

from gankit import api
from gankit.regularizers.feature_matching import FeatureMatching
from gankit.training.loop import Trainer
from gankit.training.state import build_state


def _trainer(*overrides, preset="mixture_gan", data="ring"):
    sets = ["generator.widths=[16,16]", "discriminator.widths=[16,16]",
            "train.batch_size=16", *overrides]
    config = api.make_config(preset, data=data, device="cpu", overrides=sets)
    ds = api.dataset_for(config)
    state = build_state(config, api.data_info(ds, config), torch.device("cpu"))
    return Trainer(state, ds, None, progress=False)


# -- 1. feature matching compares fakes and reals in the feature space of one D -----------------
@pytest.mark.parametrize("extra", [[], ["train.unrolled_steps=2"]])
def test_feature_matching_scores_the_real_batch_with_the_updated_d(monkeypatch, extra):
    seen = {}
    original = FeatureMatching.__call__

    def spy(self, ctx):
        seen["real"] = ctx.real_out["features"].clone()
        seen["D"] = ctx.D
        return original(self, ctx)

    batches = []
    draw = Trainer._batch
    monkeypatch.setattr(FeatureMatching, "__call__", spy)
    monkeypatch.setattr(Trainer, "_batch", lambda self, i: batches.append(draw(self, i))
                        or batches[-1])
    t = _trainer("regularizers.feature_matching.weight=1.0", "d_optimizer.lr=0.1", *extra)
    t.d_step(0, log=False)
    t.g_step(log=False)
    real, _ = batches[-1]  # the last real batch a D update saw (the unrolled copy's, if any)
    with torch.no_grad():  # the D of the G step (train mode: batch statistics) on that batch
        expected = seen["D"].score(real)["features"]
    assert_close(seen["real"], expected, rtol=0, atol=0)
