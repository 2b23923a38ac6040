"""gankit.viz on a tiny trained run: nearest-neighbour sheets, latent walks, training curves."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from gankit import api
from gankit.utils.images import HEADER_BAND, make_grid, to_uint8
from gankit.viz import (
    angle,
    curves_png,
    interpolation_grids,
    interpolation_images,
    latent_endpoints,
    latent_paths,
    lerp,
    nearest_neighbours,
    nearest_sheet,
    read_distances,
    slerp,
)
from gankit.viz import curves as curves_module
from gankit.viz import nearest as nearest_module

TINY = ["generator.width=8", "discriminator.width=8", "train.batch_size=16",
        "train.log_interval=1"]
SCALE = 4  # digits are 8x8: upscaled 4x like the sample grids


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("viz") / "run"
    api.train("dcgan", data="digits", steps=4, out=out, overrides=TINY, progress=False)
    torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="module")
def train_x(run_dir):
    return api.dataset_for(api.load(run_dir).config).x  # [1797, 1, 8, 8]


def _png(path, skip: int = 0) -> np.ndarray:
    """A PNG as uint8 [H, W, C] without its first ``skip`` rows, downscaled back by SCALE
    (nearest-neighbour upscaling)."""
    arr = np.asarray(Image.open(path))
    arr = arr[..., None] if arr.ndim == 2 else arr
    return arr[skip:][::SCALE, ::SCALE]


def _tile(sheet: np.ndarray, row: int, col: int, size: int = 8) -> np.ndarray:
    """Column 0 is the generated image; neighbour j (0-based) is column j + 1."""
    pad, gap = nearest_module.PADDING, nearest_module.GAP
    top = pad + row * (size + pad)
    left = pad + col * (size + pad) + (gap if col > 0 else 0)
    return sheet[top:top + size, left:left + size]


def _brute_force(fake, train, k):
    dist = (fake[:, None].double() - train[None].double()).flatten(2).pow(2).sum(-1).sqrt()
    order = dist.argsort(dim=1, stable=True)[:, :k]
    return dist.gather(1, order), order


# -- nearest-neighbour sheet -----------------------------------------------------------------
def test_nearest_sheet_layout_and_true_neighbours(run_dir, train_x, tmp_path):
    n, k = 3, 4
    out = nearest_sheet(run_dir, tmp_path / "near.png", n=n, k=k, seed=1)
    pad, gap = nearest_module.PADDING, nearest_module.GAP
    width = ((k + 1) * (8 + pad) + pad + gap) * SCALE
    height = (n * (8 + pad) + pad) * SCALE
    assert Image.open(out).size == (width, height + HEADER_BAND)  # the legend above it

    fake = api.sample(api.load(run_dir), n, seed=1)  # what the sheet shows
    want_d, want_i = _brute_force(fake, train_x, k)
    record = read_distances(out)
    assert record["indices"] == want_i.tolist()
    assert_close(torch.tensor(record["distances"], dtype=torch.float64), want_d)
    assert record["step"] == 4 and record["seed"] == 1 and record["dataset"] == "digits"

    sheet = _png(out, skip=HEADER_BAND)  # below the legend
    expected = to_uint8(torch.cat([fake[:, None], train_x[want_i]], 1).flatten(0, 1))
    for r in range(n):
        for col in range(k + 1):
            tile = _tile(sheet, r, col)
            assert (tile == expected[r * (k + 1) + col]).all(), (r, col)  # grey -> RGB
    assert (sheet[0, 0] == nearest_module.HIGHLIGHT).all()  # the generated column's frame


def test_a_copied_training_image_is_its_own_nearest_neighbour(run_dir, train_x, tmp_path,
                                                              monkeypatch):
    picks = torch.tensor([17, 400, 1000])
    monkeypatch.setattr(nearest_module, "_samples", lambda run, n, seed, ema: train_x[picks])
    out = nearest_sheet(run_dir, tmp_path / "copies.png", n=3, k=2)
    record = read_distances(out)
    assert [d[0] for d in record["distances"]] == [0.0, 0.0, 0.0]
    assert all(d[1] > 0 for d in record["distances"])
    first = torch.tensor([i[0] for i in record["indices"]])
    assert torch.equal(train_x[first], train_x[picks])  # itself (or an exact duplicate)
    sheet = _png(out, skip=HEADER_BAND)  # below the legend
    for r in range(3):
        assert (_tile(sheet, r, 0) == _tile(sheet, r, 1)).all()


def test_nearest_neighbours_blocks_and_ties():
    gen = torch.Generator().manual_seed(0)
    train = torch.randn(103, 3, 4, 4, generator=gen)
    fake = torch.randn(6, 3, 4, 4, generator=gen)
    want_d, want_i = _brute_force(fake, train, 5)
    d, i = nearest_neighbours(fake, train, 5, max_elements=48 * 7)  # 7 rows per block
    assert torch.equal(i, want_i)
    assert_close(d, want_d)
    # Exact duplicates tie at distance 0: the lower training index comes first.
    dup = torch.cat([train[:10], train[3:4], train[10:]])  # row 3 repeated at index 10
    d, i = nearest_neighbours(train[3:4], dup, 3, max_elements=48 * 4)
    assert i[0, :2].tolist() == [3, 10] and d[0, :2].tolist() == [0.0, 0.0]
    # Exact: far from the origin a copy is still at 0 (no ||a||² + ||b||² - 2ab cancellation).
    far = torch.randn(103, 48, generator=gen, dtype=torch.float64) + 1e4
    d, i = nearest_neighbours(far, far, 1)
    assert torch.equal(d, torch.zeros(103, 1, dtype=torch.float64))
    assert torch.equal(i.flatten(), torch.arange(103))


def test_nearest_errors(run_dir, train_x, tmp_path):
    with pytest.raises(ValueError, match=r"k must lie in 1\.\.1797"):
        nearest_sheet(run_dir, tmp_path / "x.png", k=5000)
    with pytest.raises(ValueError, match="n must be at least 1"):
        nearest_sheet(run_dir, tmp_path / "x.png", n=0)
    with pytest.raises(ValueError, match="differ in shape"):
        nearest_neighbours(torch.zeros(2, 1, 4, 4), train_x, 1)


# -- latent walks ----------------------------------------------------------------------------
def test_interpolation_grids_sizes_endpoints_and_pixels(run_dir, tmp_path):
    rows, steps, seed = 3, 5, 2
    paths = interpolation_grids(run_dir, tmp_path / "walks", rows=rows, steps=steps, seed=seed)
    assert [p.name for p in paths] == ["interpolate_lerp.png", "interpolate_slerp.png",
                                       "traverse.png"]
    size = ((steps * (8 + 2) + 2) * SCALE, (rows * (8 + 2) + 2) * SCALE)
    assert [Image.open(p).size for p in paths] == [size] * 3

    run = api.load(run_dir)
    images = interpolation_images(run, rows, steps, seed)
    z0, z1, _ = latent_endpoints(run.config.z_dim, rows, seed)
    with torch.no_grad():
        g0, g1 = run.net(True)(z0), run.net(True)(z1)
    for key in ("lerp", "slerp"):  # the same endpoints in both grids
        assert images[key].shape == (rows, steps, 1, 8, 8)
        assert_close(images[key][:, 0], g0)
        assert_close(images[key][:, -1], g1)
    assert not torch.allclose(images["lerp"][:, 2], images["slerp"][:, 2])
    for path, key in zip(paths, ("lerp", "slerp", "traverse"), strict=True):
        grid = make_grid(images[key].flatten(0, 1), nrow=steps)
        assert np.array_equal(_png(path), grid)


def test_latent_paths_traverse_one_dimension():
    paths = latent_paths(z_dim=6, rows=4, steps=7, seed=3)
    z0, z1, base = latent_endpoints(6, 4, 3)
    assert_close(paths["lerp"][:, 0], z0, rtol=0, atol=0)
    assert_close(paths["slerp"][:, -1], z1, rtol=0, atol=0)
    trav = paths["traverse"]
    assert trav.shape == (4, 7, 6)
    for d in range(4):
        assert_close(trav[d, :, d], torch.linspace(-3, 3, 7))
        others = [j for j in range(6) if j != d]
        assert_close(trav[d][:, others], base[others].expand(7, -1))
    assert latent_paths(z_dim=2, rows=4, steps=3)["traverse"].shape == (2, 3, 2)
    with pytest.raises(ValueError, match="steps >= 2"):
        latent_paths(z_dim=2, rows=4, steps=1)


def test_slerp_properties():
    gen = torch.Generator().manual_seed(0)
    z0 = torch.randn(4, 64, generator=gen, dtype=torch.float64)
    z1 = torch.randn(4, 64, generator=gen, dtype=torch.float64)
    z1 = z1 * (z0.norm(dim=1, keepdim=True) / z1.norm(dim=1, keepdim=True))  # equal norms
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    path = slerp(z0[:, None], z1[:, None], t[None])  # [4, 11, 64]
    assert path.shape == (4, 11, 64)
    assert torch.equal(path[:, 0], z0) and torch.equal(path[:, -1], z1)
    assert_close(path.norm(dim=-1), z0.norm(dim=-1, keepdim=True).expand(4, 11))
    omega = angle(z0, z1)  # [4]
    assert_close(angle(z0[:, None], path), t[None] * omega[:, None])
    assert_close(angle(path, z1[:, None]), (1 - t[None]) * omega[:, None])
    # Closed form: a third of the way from e1 to e2 is (cos 30°, sin 30°).
    e1, e2 = torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 1.0],
                                                                        dtype=torch.float64)
    assert_close(slerp(e1, e2, 1 / 3), torch.tensor([math.sqrt(3) / 2, 0.5],
                                                    dtype=torch.float64))
    # Unequal norms: endpoints still exact; lerp stays the straight line.
    assert_close(slerp(e1, 3 * e2, 1.0), 3 * e2, rtol=0, atol=0)
    assert_close(lerp(e1, 3 * e2, 0.5), torch.tensor([0.5, 1.5], dtype=torch.float64))


def test_slerp_parallel_falls_back_to_lerp():
    z = torch.tensor([[1.0, 2.0, 3.0]])
    for other in (2 * z, -z, z):  # parallel, antiparallel, identical
        for t in (0.0, 0.3, 1.0):
            out = slerp(z, other, t)
            assert torch.isfinite(out).all()
            assert_close(out, lerp(z, other, t))


# -- training curves -------------------------------------------------------------------------
def test_curves_png_of_a_run(run_dir, tmp_path):
    pytest.importorskip("matplotlib")
    out = curves_png(run_dir, tmp_path / "curves.png")
    image = Image.open(out)
    image.verify()
    # losses, D scores, gradient norms, training health: 2 per row, 500 x 320 px each
    assert Image.open(out).size == (1000, 640) == curves_module.figure_size_px(4)


def test_curves_panels_with_metrics_and_a_truncated_line(tmp_path):
    pytest.importorskip("matplotlib")
    records = [{"step": s, "loss/D": 1.0 / s, "loss/G": 0.5 * s, "time/step_ms": 3.0}
               for s in (1, 2, 3, 4)]
    records[1]["fid_2k_mnist5k_lenet_mnist5k"] = 80.0
    records[3]["fid_2k_mnist5k_lenet_mnist5k"] = 40.0
    text = "".join(json.dumps(r) + "\n" for r in records) + '{"step": 5, "loss/'
    (tmp_path / "log.jsonl").write_text(text)
    groups = curves_module.panels(curves_module.read_log(tmp_path))
    assert [title for title, _ in groups] == ["losses", "fid_2k_mnist5k_lenet_mnist5k"]
    assert groups[0][1]["loss/G"] == ([1, 2, 3, 4], [0.5, 1.0, 1.5, 2.0])
    assert groups[1][1]["fid_2k_mnist5k_lenet_mnist5k"] == ([2, 4], [80.0, 40.0])
    out = curves_png(tmp_path, tmp_path / "c.png")
    assert Image.open(out).size == (1000, 320)


def test_curves_missing_or_empty_log(tmp_path):
    with pytest.raises(ValueError, match="no log.jsonl: train first"):
        curves_png(tmp_path, tmp_path / "c.png")
    (tmp_path / "log.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="no records yet: train first"):
        curves_png(tmp_path, tmp_path / "c.png")
    (tmp_path / "log.jsonl").write_text('{"step": 1\n{"step": 2}\n')
    with pytest.raises(ValueError, match="line 1: not JSON"):
        curves_png(tmp_path, tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()


# -- points runs -----------------------------------------------------------------------------
def test_points_runs_are_refused_with_a_pointer(tmp_path):
    out = tmp_path / "ring"
    api.train("mixture_gan", steps=1, out=out, progress=False,
              overrides=["generator.widths=[8]", "discriminator.widths=[8]",
                         "train.batch_size=16"])
    with pytest.raises(ValueError, match="nearest-neighbour sheet is for image data"):
        nearest_sheet(out, tmp_path / "n.png")
    with pytest.raises(ValueError, match="latent interpolation is for image data.*gankit sample"):
        interpolation_grids(out, tmp_path / "walks")


def test_conditional_interpolation_rows_hold_one_class(tmp_path):
    """Each row of a conditional run's walk is drawn with one class (row r -> class r mod K)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path / "cgan"
    api.train("cgan", data="digits", steps=2, out=out, overrides=TINY, progress=False)
    torch.set_num_threads(threads)
    run = api.load(out)
    rows, steps = 12, 3  # more rows than the 10 classes: row 10 wraps to class 0
    images = interpolation_images(run, rows, steps, seed=1)
    z = latent_paths(run.config.z_dim, rows, steps, seed=1)["lerp"]
    net = run.net(True)
    with torch.no_grad():
        for r in (0, 3, 10, 11):
            want = net(z[r], torch.full((steps,), r % 10, dtype=torch.long))
            assert_close(images["lerp"][r], want)
        # and not what the same z gives under another class
        other = net(z[3], torch.full((steps,), 4, dtype=torch.long))
    assert not torch.allclose(images["lerp"][3], other)


def test_load_a_given_checkpoint_step(tmp_path):
    out = tmp_path / "steps"
    api.train("dcgan", data="digits", steps=4, out=out, progress=False,
              overrides=[*TINY, "train.checkpoint_interval=2"])
    first, last = api.load(out, step=2), api.load(out)
    assert (first.step, last.step, api.load(out, step=4).step) == (2, 4, 4)
    assert not torch.equal(first.G.state_dict()[next(iter(first.G.state_dict()))],
                           last.G.state_dict()[next(iter(last.G.state_dict()))])
    with pytest.raises(ValueError, match="no checkpoint of step 3; kept steps: 2, 4"):
        api.load(out, step=3)


def test_curves_without_matplotlib_is_one_line_naming_the_extra(run_dir, tmp_path, capsys,
                                                               monkeypatch):
    import sys

    from gankit.cli import main

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # an import of it now fails
    assert main(["show", str(run_dir), "--curves", "--out", str(tmp_path / "c")]) == 2
    assert capsys.readouterr().err.strip() == ("gankit: error: gankit show --curves needs "
                                               "matplotlib (not installed): pip install "
                                               "'gankit[plot]'")
