"""translate and upscale: tiles blend without seams, layouts round-trip, errors are clear."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from gankit import translation
from gankit.training.state import DataInfo


class _Local(nn.Module):
    """A super-resolution 'G' whose output pixel depends on one input pixel: x4 nearest
    upsampling of a per-pixel colour map."""

    takes = "image"

    def __init__(self):
        super().__init__()
        self.mix = nn.Conv2d(3, 3, 1)

    def forward(self, x, c=None):
        return torch.tanh(nn.functional.interpolate(self.mix(x), scale_factor=4))


class _Wide(_Local):
    """Each output pixel sees a 3x3 input window."""

    def __init__(self):
        super().__init__()
        self.mix = nn.Conv2d(3, 3, 3, padding=1)


def _run(G):
    info = DataInfo((3, 32, 32), "image", 0, (3, 8, 8))
    return SimpleNamespace(net=lambda ema=True: G, info=info, run_dir="run",
                           config=SimpleNamespace(generator=SimpleNamespace(name="srresnet")))


def test_tiles_of_a_local_network_equal_the_whole_image():
    torch.manual_seed(0)
    G = _Local()
    image = torch.rand(3, 37, 53) * 2 - 1  # not a multiple of the tile
    tiled = translation.upscale(_run(G), image, tile=16, overlap=4)
    with torch.no_grad():
        whole = G(image[None])[0]
    assert tiled.shape == (3, 37 * 4, 53 * 4)
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-6)


def test_tiles_of_a_wider_network_blend_without_seams():
    torch.manual_seed(0)
    G = _Wide()
    image = torch.rand(3, 40, 40) * 2 - 1
    tiled = translation.upscale(_run(G), image, tile=16, overlap=4)
    with torch.no_grad():
        whole = G(image[None])[0]
    # only the 1-pixel rim of each tile (zero padding) differs, and the ramps fade it out
    assert (tiled - whole).abs().max() < 0.3
    assert (tiled - whole).abs().mean() < 0.01


def test_bad_overlap_and_latent_runs_are_refused():
    with pytest.raises(ValueError, match=r"--overlap must lie in \[0, tile / 2\)"):
        translation.upscale(_run(_Local()), torch.zeros(3, 8, 8), tile=8, overlap=4)
    latent = _run(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="samples from latents"):
        translation.translate(latent, torch.zeros(1, 3, 8, 8))


def test_folders_and_npz_round_trip(tmp_path):
    from PIL import Image

    (tmp_path / "in" / "sub").mkdir(parents=True)
    Image.fromarray(np.full((6, 6, 3), 255, np.uint8)).save(tmp_path / "in" / "sub" / "a.jpg")
    kind, items = translation.read_images(tmp_path / "in")
    assert kind == "folder" and [n for n, _ in items] == ["sub/a.jpg"]
    out = translation.write_like(kind, items, tmp_path / "out")
    assert (out / "sub" / "a.png").is_file()
    np.savez(tmp_path / "x.npz", x=np.zeros((2, 4, 4), np.uint8))
    kind, items = translation.read_images(tmp_path / "x.npz")
    assert kind == "npz" and len(items) == 2 and items[0][1].shape == (1, 4, 4)
    translation.write_like(kind, items, tmp_path / "y.npz")
    assert np.load(tmp_path / "y.npz")["x"].shape == (2, 1, 4, 4)
    with pytest.raises(ValueError, match="no such image, folder or npz"):
        translation.read_images(tmp_path / "missing.png")


def test_domain_adaptation_report_pieces():
    from gankit.benchmarks.domain_adaptation import paired_t, table

    # differences 0.1, 0.2, 0.3: mean 0.2, sd 0.1, t = 0.2 / (0.1 / sqrt 3) = 3.464, df 2
    p = paired_t([0.5, 0.5, 0.5], [0.6, 0.7, 0.8])
    assert p == pytest.approx(0.0742, abs=1e-3)
    assert paired_t([0.5], [0.9]) is None
    report = {"preset": "pixelda", "rows": [{}, {}], "source_only": (0.5, 0.01),
              "adapted": (0.9, 0.02), "p_value": 0.01}
    text = table(report)
    assert "| source only (mnist5k) | 50.0 ± 1.0 % | 2 |" in text
    assert "| adapted (pixelda) | 90.0 ± 2.0 % | 2 |" in text and "gain +40.0 points" in text
