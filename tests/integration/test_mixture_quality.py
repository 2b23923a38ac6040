"""End-to-end quality of the ``mixture_stable`` preset on the PacGAN ring (PROTOCOLS §1).

Trains the preset with a fixed seed through the public API on one CPU thread (~15-20 s) and
scores 2,500 points of the sample net (G_ema) on a fixed latent batch: a point is high
quality (HQ) within 3 std = 0.03 of its nearest mode centre; a mode is captured when it
gets at least one HQ point.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from gankit import api
from gankit.data import mixture_spec

torch.set_num_threads(1)

N_SAMPLES = 2500


def _inline_metrics(points: np.ndarray, means: np.ndarray, std: float) -> dict:
    """The protocol written out in NumPy, independently of gankit.metrics."""
    dist = np.linalg.norm(points[:, None, :].astype(np.float64) - means[None], axis=2)
    nearest, hq = dist.argmin(1), dist.min(1) <= 3.0 * std
    counts = np.bincount(nearest[hq], minlength=len(means))
    return {"modes": int((counts > 0).sum()), "hq": float(hq.mean())}


@pytest.mark.slow  # a quality check (~10-20 s): run with -m slow
def test_mixture_stable_captures_the_ring(tmp_path):
    start = time.perf_counter()
    # CPU pins the numerics the seed was checked with (seeds 0-5 all pass with margin).
    result = api.train("mixture_stable", data="ring", seed=0, out=tmp_path / "run",
                       progress=False, device="cpu")
    elapsed = time.perf_counter() - start
    state = result.state
    assert state.step == state.config.train.steps
    assert state.G_ema is not None  # the preset is evaluated on the EMA generator

    G = state.sample_net()
    report = api.mixture_report(G, state.config, "ring", state.device, n=N_SAMPLES)
    assert report == result.metrics
    assert (tmp_path / "run" / "metrics.json").exists()

    # The same 2,500 latents mixture_report draws, scored by the inline protocol.
    gen = torch.Generator(device=state.device).manual_seed(state.config.train.seed + 12345)
    z = torch.randn(N_SAMPLES, state.config.z_dim, generator=gen, device=state.device)
    G.eval()
    with torch.no_grad():
        points = G(z).cpu().numpy()
    means, std = mixture_spec("ring")
    inline = _inline_metrics(points, means, std)
    assert inline["modes"] == report["modes"]
    assert abs(inline["hq"] - report["hq"]) < 1e-9

    summary = (f"modes {report['modes']:.0f}/8, HQ {100 * report['hq']:.1f} %, "
               f"reverse KL {report['reverse_kl']:.4f}, {elapsed:.1f} s")
    assert report["modes"] >= 7, summary
    assert report["hq"] >= 0.80, summary
