"""Mode counting with a classifier (Metz et al. 2017 Unrolled GAN, Srivastava et al. 2017 VEEGAN,
Lin et al. 2018 PacGAN: the stacked-MNIST protocol).

Each generated sample is assigned the classifier's argmax class (no confidence threshold, as
PacGAN). ``modes_hit`` counts distinct classes; ``modes_kl`` = KL(p̂ || uniform) = ln K - H(p̂),
natural log, with p̂ the predicted-class histogram over all K modes. For stacked data, pass
per-channel probabilities [N, C, K]: the mode is the tuple of per-channel classes (K^C modes),
as the stacked-MNIST protocol classifies each channel separately.
"""

from __future__ import annotations

import numpy as np

from gankit.metrics._common import PROBS, Metric
from gankit.registry import METRICS


def predicted_modes(probs) -> tuple[np.ndarray, int]:
    """Mode index per sample and the number of modes, from [N, K] or [N, C, K] probabilities."""
    p = np.asarray(probs.detach().cpu() if hasattr(probs, "detach") else probs)
    if p.ndim not in (2, 3) or p.shape[0] == 0 or p.shape[-1] < 2:
        raise ValueError(f"probs must have shape [N, K] or [N, C, K] with K >= 2, got {p.shape}")
    classes = p.argmax(axis=-1)  # [N] or [N, C]
    k = p.shape[-1]
    if p.ndim == 2:
        return classes, k
    channels = p.shape[1]
    weights = k ** np.arange(channels - 1, -1, -1)  # first channel most significant
    return classes @ weights, k**channels


def channel_probs(extractor, x, batch_size: int | None = None):
    """Per-channel class probabilities [N, C, K] of stacked images ``x`` [N, C, H, W]: each
    channel classified by ``extractor`` as a grey image of its own."""
    n, channels = x.shape[:2]
    _, probs = extractor.extract(x.reshape(n * channels, 1, *x.shape[2:]), batch_size, True)
    return probs.view(n, channels, -1)


def mode_counts(probs) -> tuple[int, float]:
    """Number of modes hit and KL(predicted histogram || uniform) in nats.

    Args:
        probs: class probabilities [N, K], or per-channel [N, C, K] for stacked data.

    Returns:
        ``(modes_hit, kl)``; ``kl`` is 0 for a perfectly balanced histogram and ln(#modes) when
        every sample falls in one mode.
    """
    modes, num_modes = predicted_modes(probs)
    counts = np.bincount(modes, minlength=num_modes).astype(np.float64)
    p_hat = counts / counts.sum()
    nz = p_hat[p_hat > 0]
    kl = float(np.log(num_modes) + (nz * np.log(nz)).sum())
    return int((counts > 0).sum()), max(kl, 0.0)


@METRICS.register("modes", "modes hit and KL(predicted classes || uniform) from a classifier")
class Modes(Metric):
    """Keys ``modes_hit`` and ``modes_kl``."""

    needs = frozenset({PROBS})
    needs_real = False

    def compute(self, fake, real=None, *, seed: int = 0) -> dict[str, float]:
        del real, seed  # generated samples only; deterministic
        hit, kl = mode_counts(fake)
        return {"modes_hit": float(hit), "modes_kl": kl}
