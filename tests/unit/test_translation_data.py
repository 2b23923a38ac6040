"""Translation data: paired folders and npz, unpaired domains, edges2mnist, photos, MNIST-M
and super-resolution pairs."""

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.data import load_dataset
from gankit.data.mnist5k import mnist5k_split
from gankit.data.paired import sobel_edges, with_sr_source


def _png(path, value, size=(8, 8)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), value, dtype=np.uint8)).save(path)


def test_paired_folders_match_by_relative_name(tmp_path):
    for i, name in enumerate(["a/1", "a/2", "b/3"]):
        _png(tmp_path / "A" / f"{name}.png", 10 * i)
        _png(tmp_path / "B" / f"{name}.png", 200 + 10 * i)
    ds = load_dataset(f"paired:{tmp_path / 'A'},{tmp_path / 'B'}", resolution=8)
    assert ds.x.shape == ds.source.shape == (3, 3, 8, 8)
    levels = lambda t: ((t[:, 0, 0, 0] + 1) * 127.5).round().tolist()  # noqa: E731
    assert levels(ds.source) == [0, 10, 20] and levels(ds.x) == [200, 210, 220]


def test_bad_pairs_name_the_first_mismatch(tmp_path):
    _png(tmp_path / "A" / "1.png", 0)
    _png(tmp_path / "A" / "2.png", 0)
    _png(tmp_path / "B" / "1.jpg", 0)
    spec = f"paired:{tmp_path / 'A'},{tmp_path / 'B'}"
    with pytest.raises(ValueError, match=r"2\.png has no partner in .*B"):
        load_dataset(spec)
    (tmp_path / "C").mkdir()
    with pytest.raises(ValueError, match=r"side B \(.*C\) holds no images"):
        load_dataset(f"paired:{tmp_path / 'A'},{tmp_path / 'C'}")
    np.savez(tmp_path / "p.npz", x=np.zeros((3, 8, 8), np.uint8),
             target=np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="x has 3 images but target has 2"):
        load_dataset(f"paired:{tmp_path / 'p.npz'}")
    np.savez(tmp_path / "q.npz", x=np.zeros((2, 8, 8), np.uint8),
             target=np.zeros((2, 16, 16), np.uint8))
    with pytest.raises(ValueError, match=r"x is \(8, 8\) and target \(16, 16\)"):
        load_dataset(f"paired:{tmp_path / 'q.npz'}")
    assert load_dataset(f"paired:{tmp_path / 'q.npz'}", resolution=8).source.shape == \
        (2, 1, 8, 8)


def test_unpaired_stacks_both_domains_and_swaps_them_for_the_source():
    ds = load_dataset("unpaired:digits,mnist5k", resolution=16)
    assert ds.domains == 2 and ds.x.shape == (5000, 2, 16, 16)
    assert torch.equal(ds.source, ds.x.flip(1))  # [a | b] against [b | a]
    digits = load_dataset("digits", resolution=16).x
    assert torch.equal(ds.source[:len(digits), :1], digits)  # every digit once, first
    mnist = load_dataset("mnist5k", resolution=16).x
    assert torch.equal(ds.x[:, :1], mnist)


def test_sobel_edges_of_a_vertical_step():
    x = -torch.ones(1, 1, 6, 6)
    x[..., 3:] = 1.0  # dark left half, bright right half
    e = sobel_edges(x)
    # the gradient is 4 (= 1 + 2 + 1) on columns 2 and 3, the maximum: mapped to 1; none
    # elsewhere, the frame included
    assert torch.equal(e[0, 0, :, 2:4], torch.ones(6, 2))
    assert torch.equal(e[0, 0, :, [0, 1, 4, 5]], -torch.ones(6, 4))


def test_the_mnist5k_split_is_stratified_disjoint_and_fixed():
    train, test = mnist5k_split()
    y = load_dataset("mnist5k").y
    assert len(train) == 4000 and len(test) == 1000
    assert set(train.tolist()).isdisjoint(test.tolist())
    assert torch.bincount(y[test]).tolist() == [100] * 10
    assert torch.equal(mnist5k_split()[1], test)


def test_edges2mnist_and_mnistm_are_deterministic_splits():
    pytest.importorskip("skimage")
    train, test = mnist5k_split()
    y = load_dataset("mnist5k").y
    e = load_dataset("edges2mnist:test")
    assert torch.equal(e.y, y[test]) and e.source.shape == e.x.shape == (1000, 1, 28, 28)
    a, b = load_dataset("mnistm:test"), load_dataset("mnistm:test")
    assert torch.equal(a.x, b.x) and torch.equal(a.y, y[test]) and a.x.shape[1] == 3
    with pytest.raises(ValueError, match="the split must be train"):
        load_dataset("mnistm:val")
    with pytest.raises(ValueError, match="expected an edge detector"):
        load_dataset("edges2mnist:sobel,canny")


def test_super_resolution_sources_are_bicubic_downscales():
    ds = with_sr_source(load_dataset("digits", resolution=16), 4)
    assert ds.source.shape == (1797, 1, 4, 4)
    import dataclasses
    flat = with_sr_source(dataclasses.replace(ds, x=torch.full((2, 1, 16, 16), 0.5),
                                              y=None, num_classes=0, class_names=None,
                                              source=None), 4)
    assert torch.allclose(flat.source, torch.full((2, 1, 4, 4), 0.5))  # a flat image stays
    with pytest.raises(ValueError, match="data.lr_scale=3 does not divide the 16x16"):
        with_sr_source(load_dataset("digits", resolution=16), 3)


def test_adapt_pairs_every_source_with_a_target_image_and_keeps_source_labels():
    ds = load_dataset("adapt:mnist5k:train,digits", resolution=16)
    src = load_dataset("mnist5k:train", resolution=16)
    assert torch.equal(ds.source, src.x) and torch.equal(ds.y, src.y)
    assert ds.x.shape == (4000, 1, 16, 16) and ds.domains == 1
    digits = load_dataset("digits", resolution=16).x
    # the 1,797 digits repeated (seeded) to 4,000: each at least twice
    flat = {tuple(r.flatten().tolist()) for r in ds.x[:200]}
    assert flat <= {tuple(r.flatten().tolist()) for r in digits}
    with pytest.raises(ValueError, match="the split must be train or test"):
        load_dataset("mnist5k:val")


def test_the_semantic_term_is_the_classifiers_cross_entropy_on_its_own_labels():
    from gankit.metrics.features import build_extractor
    from gankit.regularizers.translation import Semantic
    from gankit.training.context import StepContext

    digits = load_dataset("mnist5k:test").x[:8]
    reg = Semantic(weight=2.0)
    lenet = build_extractor("lenet_mnist5k")
    fake = digits.clone().requires_grad_(True)
    ctx = StepContext(None, None, None, fake, None, None, None, 0, torch.Generator(),
                      phase="G", source=digits)
    value = reg(ctx)
    labels = lenet.logits(digits).argmax(1)
    expected = 2.0 * torch.nn.functional.cross_entropy(lenet.logits(digits), labels)
    torch.testing.assert_close(value, expected)
    assert value < 2.0 * 0.1  # real digits: the classifier is sure of its own labels
    value.backward()
    assert fake.grad.abs().sum() > 0
    noise = torch.rand(8, 1, 28, 28) * 2 - 1  # a translation that destroys the digit costs more
    assert reg(StepContext(None, None, None, noise, None, None, None, 0, torch.Generator(),
                           phase="G", source=digits)) > value


def _semantic_ctx(fake, source):
    from gankit.training.context import StepContext

    return StepContext(None, None, None, fake, None, None, None, 0, torch.Generator(),
                       phase="G", source=source)


def test_a_trained_task_classifier_learns_translations_that_fool_the_frozen_one():
    from gankit.regularizers.translation import Semantic

    torch.manual_seed(0)
    test = load_dataset("mnist5k:test")
    digits = torch.cat([test.x[test.y == k][:2] for k in range(10)])  # two of each class
    fake = -digits  # a "translation" to inverted colours, which f was never shown
    frozen, trained = Semantic(weight=1.0), Semantic(weight=1.0, train_lr=1e-3)
    first = trained(_semantic_ctx(fake, digits))
    # the first call takes one Adam step before scoring: below the frozen value already
    assert 2.0 < first < frozen(_semantic_ctx(fake, digits))
    for _ in range(40):
        last = trained(_semantic_ctx(fake, digits))
    assert frozen(_semantic_ctx(fake, digits)) > 2.0  # f still misreads inverted digits
    assert last < 0.2  # T learnt that these translations carry their sources' labels
    with pytest.raises(ValueError, match="train_lr must be >= 0"):
        Semantic(train_lr=-1.0)


def test_the_trained_task_classifier_resumes_exactly():
    from gankit.regularizers.translation import Semantic

    test = load_dataset("mnist5k:test")
    digits = torch.cat([test.x[test.y == k][:1] for k in range(8)])
    fake = digits.roll(1, 0)
    a = Semantic(train_lr=1e-3)
    for _ in range(3):
        a(_semantic_ctx(fake, digits))
    saved = a.state_dict()
    b = Semantic(train_lr=1e-3)
    b.load_state_dict(saved)
    assert b.state_dict() is not None and set(b.state_dict()) == {"classifier", "optimizer"}
    assert torch.equal(a(_semantic_ctx(fake, digits)), b(_semantic_ctx(fake, digits)))
    assert Semantic().state_dict() == {}  # frozen: nothing to save
