"""Self-conditioned GAN: k-means, prior-proportional labels, and the loop's clustering,
re-clustering, label drawing, checkpointing and exact resume."""

import json

import pytest
import torch

from gankit import api
from gankit.layers.conditioning import stratified_labels
from gankit.training.checkpoint import load_latest
from gankit.training.loop import Trainer
from gankit.training.self_condition import SelfConditioner, kmeans
from gankit.training.state import build_state

SELF_COND = ["data.name=digits", "generator.width=8", "discriminator.width=8",
             "generator.conditioning=concat", "discriminator.conditioning=projection",
             "self_condition.clusters=4", "self_condition.interval=10",
             "train.batch_size=16", "train.sample_interval=0", "train.checkpoint_interval=12",
             "train.keep_checkpoints=5", "hooks.ema.beta=0.9"]


# -- k-means ------------------------------------------------------------------------------
def test_kmeans_hand_computed():
    # 0, 1, 10, 11 from centres 0 and 1: 10 and 11 join 1's cluster, its mean 22/3 then
    # gives 1 back to the first cluster; centres settle at 0.5 and 10.5
    f = torch.tensor([[0.0], [1.0], [10.0], [11.0]])
    labels, centres = kmeans(f, 2, init=torch.tensor([[0.0], [1.0]]))
    assert labels.tolist() == [0, 0, 1, 1]
    assert torch.allclose(centres, torch.tensor([[0.5], [10.5]]))


def test_kmeans_moves_an_empty_cluster_to_the_farthest_point():
    # every point is nearer the centre 0 than 100: cluster 1 empties and restarts at 3, the
    # point farthest from its centre; then 0, 1, 2 (mean 1) and 3 (2 is tied, goes to 0)
    f = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    labels, centres = kmeans(f, 2, init=torch.tensor([[0.0], [100.0]]))
    assert labels.tolist() == [0, 0, 0, 1]
    assert torch.allclose(centres, torch.tensor([[1.0], [3.0]]))


def test_kmeans_plus_plus_recovers_separated_blobs():
    g = torch.Generator().manual_seed(0)
    means = torch.tensor([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]])
    truth = torch.arange(3).repeat_interleave(50)
    f = means[truth] + torch.randn(150, 2, generator=g)
    labels, centres = kmeans(f, 3, seed=1)
    for k in range(3):  # each found cluster is exactly one blob, with that blob's mean
        members = truth[labels == k]
        assert len(members) == 50 and (members == members[0]).all()
        assert torch.allclose(centres[k], f[truth == members[0]].mean(0))
    again, _ = kmeans(f, 3, seed=1)
    assert torch.equal(labels, again)
    with pytest.raises(ValueError, match="k=200 for N=150"):
        kmeans(f, 200)


def test_warm_start_keeps_cluster_indices():
    # the same blobs re-clustered from the previous labels keep their indices, even when
    # k-means++ from scratch would number them differently
    g = torch.Generator().manual_seed(0)
    means = torch.tensor([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0], [20.0, 20.0]])
    truth = torch.arange(4).repeat_interleave(30)
    x = (means[truth] + torch.randn(120, 2, generator=g))[:, :, None, None]

    class Identity(torch.nn.Module):
        def body(self, x):
            return x

    sc = SelfConditioner(clusters=4, dim=0)
    previous = torch.tensor([2, 0, 3, 1]).repeat_interleave(30)  # blob b is cluster prev[b]
    assert torch.equal(sc.cluster(Identity(), x, step=5, previous=previous), previous)


def test_stratified_labels_follow_the_prior():
    # cumulative shares 0.25, 0.75, 1 against (i + 0.5) / 8
    assert stratified_labels(torch.tensor([1.0, 2.0, 1.0]), 8).tolist() == [0, 0, 1, 1, 1, 1,
                                                                             2, 2]
    counts = torch.bincount(stratified_labels(torch.tensor([5.0, 0.0, 3.0, 2.0]), 1000))
    assert counts.tolist() == [500, 0, 300, 200]


# -- the loop -----------------------------------------------------------------------------
def _records(run_dir):
    lines = (run_dir / "log.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "self_condition/seconds" in r]


def test_self_conditioned_training_clusters_reclusters_and_samples(tmp_path):
    api.train("dcgan", out=tmp_path, steps=25, overrides=SELF_COND, progress=False)
    records = _records(tmp_path)
    assert [r["step"] for r in records] == [0, 10, 20]  # at the start, then every 10 steps
    assert "self_condition/relabelled" not in records[0]
    assert all(0 <= r["self_condition/relabelled"] <= 1 for r in records[1:])
    ckpt, _ = load_latest(tmp_path)
    labels = ckpt["self_condition"]["labels"]
    assert ckpt["self_condition"]["step"] == 20 and labels.shape == (1797,)
    assert ckpt["data_info"]["num_classes"] == 4  # the clusters, not the 10 digits
    sizes = torch.bincount(labels, minlength=4).float()
    assert sizes.min() > 0
    assert records[-1]["self_condition/smallest"] == sizes.min()
    run = api.load(tmp_path)
    for net in (run.G, run.G_ema):  # G's prior is the cluster sizes, saved with its weights
        assert torch.equal(net.cond.label_prior, sizes)
    # unconditional-style sampling draws clusters in proportion to their sizes
    _, c = api.sample(run, 4000, return_labels=True)
    share = torch.bincount(c, minlength=4) / 4000
    assert torch.allclose(share, sizes / sizes.sum(), atol=0.03)
    assert torch.equal(run.G.cond.labels(None, torch.zeros(100, 1)),
                       stratified_labels(sizes, 100))


def test_self_conditioned_resume_is_exact(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    api.train("dcgan", out=full, steps=25, overrides=SELF_COND, progress=False)
    api.train("dcgan", out=part, steps=12, overrides=SELF_COND, progress=False)
    api.resume(part, steps=25, progress=False)  # crosses the re-clustering at step 20
    a, _ = load_latest(full)
    b, _ = load_latest(part)
    assert torch.equal(a["self_condition"]["labels"], b["self_condition"]["labels"])
    for key in ("G", "D", "G_ema"):
        for name, value in a[key].items():
            assert torch.equal(value, b[key][name]), f"{key}.{name}"
    assert [r["step"] for r in _records(part)] == [0, 10, 20]
    # the re-clustering interval may change on resume, the number of clusters may not
    api.resume(part, steps=32, overrides=["self_condition.interval=5"], progress=False)
    assert [r["step"] for r in _records(part)] == [0, 10, 20, 25, 30]
    with pytest.raises(ValueError, match="self_condition.clusters: 4 -> 6"):
        api.resume(part, steps=40, overrides=["self_condition.clusters=6"], progress=False)


def test_the_fake_labels_follow_the_prior():
    config = api.make_config("dcgan", device="cpu", overrides=SELF_COND)
    ds = api.dataset_for(config)
    state = build_state(config, api.data_info(ds, config), torch.device("cpu"))
    trainer = Trainer(state, ds, None, progress=False)
    sizes = torch.bincount(state.cluster_labels, minlength=4).float()
    assert torch.equal(state.G.cond.label_prior, sizes)
    assert torch.equal(trainer.batches.y, state.cluster_labels)
    state.G.cond.label_prior.copy_(torch.tensor([0.0, 0.0, 1.0, 0.0]))
    assert trainer.task.labels(64).tolist() == [2] * 64


def test_self_condition_needs_conditional_networks_and_valid_options():
    plain = [s for s in SELF_COND if "conditioning" not in s]
    with pytest.raises(ValueError, match="generator.conditioning=concat"):
        api.train("dcgan", steps=1, overrides=plain, progress=False)
    with pytest.raises(ValueError, match="clusters must be 0"):
        api.make_config("dcgan", overrides=["self_condition.clusters=1"])
    with pytest.raises(ValueError, match="clusters=2000 is more than the 1797 training"):
        api.train("dcgan", steps=1, overrides=[*SELF_COND, "self_condition.clusters=2000"],
                  progress=False)


def test_resume_accepts_a_checkpoint_from_before_self_condition_existed(tmp_path):
    # a config saved before a field existed lacks it; resume fills in the default
    sets = ["data.name=digits", "generator.width=8", "discriminator.width=8",
            "train.sample_interval=0"]
    api.train("dcgan", out=tmp_path, steps=3, overrides=sets, progress=False)
    ckpt_path = sorted((tmp_path / "checkpoints").glob("*.pt"))[-1]
    ckpt = torch.load(ckpt_path, weights_only=True)
    del ckpt["config"]["self_condition"]
    torch.save(ckpt, ckpt_path)
    assert api.resume(tmp_path, steps=5, progress=False).state.step == 5
