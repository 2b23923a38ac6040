"""A cache of the real data's features, class probabilities and metric summaries (FID's
mean and covariance, ...), one ``.npz`` per (dataset, extractor, preprocessing, N, content
fingerprint of the real images), written atomically. The preprocessing string holds the
extractor's weights checksum, so retrained weights never reuse stale features.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import torch

from gankit.metrics._common import FEATURES, PROBS, Metric
from gankit.metrics.features import Extractor
from gankit.utils.io import atomic_open

CACHE_VERSION = "1"


def _fingerprint(x: torch.Tensor) -> str:
    x = x.detach().to("cpu").contiguous()
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{x.dtype}{tuple(x.shape)}".encode())
    digest.update(x.view(torch.uint8).numpy().reshape(-1).data)  # raw bytes, no copy
    return digest.hexdigest()


def _cache_path(cache_dir: Path, dataset: str, extractor: Extractor, real_x: torch.Tensor) -> Path:
    key = json.dumps(
        {
            "version": CACHE_VERSION,
            "dataset": dataset,
            "extractor": extractor.name,
            "preprocessing": extractor.preprocessing,
            "n": len(real_x),
            "data": _fingerprint(real_x),
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{dataset}_{extractor.name}")[:80]
    return cache_dir / f"real_{safe}_{len(real_x)}_{digest}.npz"


def _load_cache(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError):  # unreadable or truncated: recompute and overwrite
        return {}


def _save_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with atomic_open(path, "wb") as f:
        f.write(buffer.getvalue())


def real_arrays(
    real_x: torch.Tensor,
    extractor: Extractor,
    dataset: str,
    built: dict[str, Metric],
    cache_dir: Path | None,
    batch_size: int | None,
    progress: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]]:
    """Real features/probs and per-metric real summaries, from the cache when possible
    (``progress``: a bar of an extraction on stderr)."""
    path = _cache_path(cache_dir, dataset, extractor, real_x) if cache_dir is not None else None
    cached = _load_cache(path) if path is not None else {}
    dirty = False
    if FEATURES not in cached or (extractor.num_classes > 0 and PROBS not in cached):
        features, probs = extractor.extract(real_x, batch_size, with_probs=True,
                                            progress="real features" if progress else None)
        cached = {FEATURES: features.numpy(), "meta": np.array(extractor.preprocessing)}
        if probs is not None:
            cached[PROBS] = probs.numpy()
        dirty = True
    summaries: dict[str, dict[str, np.ndarray]] = {}
    for name, metric in built.items():
        (kind,) = metric.needs
        if not metric.needs_real or kind not in cached:
            continue
        prefix = f"summary__{name}__"
        stored = {k[len(prefix) :]: v for k, v in cached.items() if k.startswith(prefix)}
        if not stored:
            stored = metric.real_summary(cached[kind])
            cached.update({prefix + k: v for k, v in stored.items()})
            dirty = dirty or bool(stored)
        if stored:
            summaries[name] = stored
    if path is not None and dirty:
        _save_cache(path, cached)
    arrays = {kind: cached[kind] for kind in (FEATURES, PROBS) if kind in cached}
    return arrays, summaries
