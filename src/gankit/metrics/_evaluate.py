"""Evaluation glue: extract features once, run the requested metrics, name keys by protocol,
and cache the real data's features, probabilities and statistics.

The cache is one ``.npz`` per (dataset, extractor, preprocessing, N, content fingerprint of the
real images), written atomically; preprocessing strings include the extractor's weights
checksum, so retrained weights never reuse stale features.

Images are rounded to 8-bit levels before feature extraction by default (StyleGAN2-ADA and
clean-fid feed the extractor 8-bit images); results computed without it are tagged
``_float`` so the two never mix.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gankit.metrics._common import FEATURES, POINTS, PROBS, Metric, protocol_key
from gankit.metrics.features import Extractor, build_extractor
from gankit.registry import METRICS
from gankit.utils.guards import check_finite
from gankit.utils.images import quantize_8bit
from gankit.utils.io import atomic_open

CACHE_VERSION = "1"
FLOAT_TAG = "_float"  # ends the extractor part of keys computed from unquantised images


def build_metrics(names: list[str]) -> dict[str, Metric]:
    """Instantiate metrics by registry name; an unknown name raises ValueError naming the
    closest valid one."""
    if isinstance(names, str) or not names:
        raise ValueError(f"metrics must be a non-empty list of names, got {names!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"metrics lists a name twice: {names}")
    return {name: METRICS.build(name) for name in names}


def evaluate_features(
    fake: Mapping[str, Any],
    real: Mapping[str, Any] | None,
    metrics: list[str],
    *,
    seed: int = 0,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    real_summaries: Mapping[str, Mapping[str, np.ndarray]] | None = None,
) -> dict[str, float]:
    """Run metrics on precomputed inputs.

    Args:
        fake: generated inputs by kind: ``{"features": [N, D], "probs": [N, K], "points": ...}``
            (only the kinds the metrics need).
        real: real inputs by kind, or None when no metric needs real data.
        metrics: registered metric names.
        seed: passed to every metric.
        options: per-metric keyword options, e.g. ``{"pr": {"k": 5}}``.
        real_summaries: per-metric cached ``real_summary`` results (e.g. FID's mu and sigma).

    Returns:
        The metrics' own keys (``fid``, ``pr_k3_precision``, ...) mapped to floats.
    """
    built = build_metrics(list(metrics))
    options = dict(options or {})
    unknown = set(options) - set(built)
    if unknown:
        raise ValueError(f"options given for metrics not requested: {sorted(unknown)}")
    results: dict[str, float] = {}
    for name, metric in built.items():
        (kind,) = metric.needs
        if kind not in fake:
            raise ValueError(f"metric {name!r} needs generated {kind!r}, which were not given")
        real_in = None
        if metric.needs_real:
            if real is None or kind not in real:
                raise ValueError(f"metric {name!r} needs real {kind!r}, which were not given")
            real_in = real[kind]
        kwargs = dict(options.get(name, {}))
        summary = (real_summaries or {}).get(name)
        if summary:
            kwargs["real_summary"] = summary
        results.update(metric.compute(fake[kind], real_in, seed=seed, **kwargs))
    return results


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


def _as_images(x, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a tensor or numpy array, got {type(x).__name__}")
    return x


def compute_metrics(
    fake_x,
    real_x,
    metrics: list[str],
    extractor: str | Extractor,
    dataset_name: str,
    n: int | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    quantize: bool = True,
    real_tag: str = "",
) -> dict[str, float]:
    """Extract features once and compute metrics with protocol-named keys.

    Args:
        fake_x: generated samples, images [N, C, H, W] in [-1, 1] or points [N, D].
        real_x: real samples of the reference set (None if no metric needs real data).
        metrics: registered names, e.g. ``["fid", "kid", "is", "pr", "dc"]``.
        extractor: an ``EXTRACTORS`` spec (``"lenet_mnist5k"``, ``"lenet:PATH"``, ``"raw"``,
            ``"inception_v3_fid"``) or a built `Extractor`.
        dataset_name: names the reference set in keys and the cache, e.g. ``"mnist5k"``.
        n: number of generated samples (default ``len(fake_x)``; must match it).
        cache_dir: where real features are cached (None: no cache).
        seed: passed to the metrics (KID subsets, k-means).
        batch_size: extractor batch size (default: the extractor's).
        options: per-metric keyword options, e.g. ``{"mixture": {"means": m, "std": 0.01}}``.
        quantize: images only (4-D ``fake_x``): round the generated and the real images to
            8-bit levels (`gankit.utils.images.quantize_8bit`) before extracting features; a
            no-op on data that is already 8-bit. False computes on the floats and tags the
            extractor part of every key with ``_float``. Points are never quantised.
        real_tag: appended to the dataset part of the keys of metrics that read ``real_x``,
            naming how the reference was derived from ``dataset_name`` (``_at32x3``:
            resized; ``_heldout``: a held-out split). Metrics of the samples alone (IS,
            mode counts) keep ``dataset_name``.

    Returns:
        ``{protocol_key: value}``, e.g. ``{"fid_10k_mnist5k_lenet": 3.2,
        "pr_k3_precision_10k_mnist5k_lenet": 0.71, ...}`` (``fid_10k_mnist5k_lenet_float``
        with ``quantize=False``).
    """
    built = build_metrics(list(metrics))
    fake_x = _as_images(fake_x, "fake_x")
    if n is None:
        n = len(fake_x)
    if n != len(fake_x):
        raise ValueError(f"n={n} but fake_x holds {len(fake_x)} samples")
    check_finite(fake_x, "compute_metrics", "fake_x")
    if real_x is not None:
        check_finite(real_x, "compute_metrics", "real_x")
    images = fake_x.dim() == 4
    if images and quantize:
        fake_x = quantize_8bit(fake_x)
        if real_x is not None:
            real_x = quantize_8bit(_as_images(real_x, "real_x"))
    if isinstance(extractor, str):
        extractor = build_extractor(extractor)
    kinds = {kind for m in built.values() for kind in m.needs}
    if PROBS in kinds and extractor.num_classes == 0:
        needing = [k for k, m in built.items() if PROBS in m.needs]
        raise ValueError(
            f"metrics {needing} need class probabilities but extractor {extractor.name!r} has "
            "no classifier head; use a classifier extractor such as 'lenet_mnist5k'"
        )
    real_kinds = {kind for m in built.values() if m.needs_real for kind in m.needs}
    if real_kinds and real_x is None:
        raise ValueError(f"metrics {sorted(built)} need real data; got real_x=None")

    options = dict(options or {})
    unknown = set(options) - set(built)
    if unknown:
        raise ValueError(f"options given for metrics not requested: {sorted(unknown)}")

    fake: dict[str, Any] = {}
    real: dict[str, Any] = {}
    if POINTS in kinds:
        fake[POINTS] = fake_x.flatten(1)
        if POINTS in real_kinds:
            real[POINTS] = _as_images(real_x, "real_x").flatten(1)
    if kinds & {FEATURES, PROBS}:
        fake[FEATURES], fake[PROBS] = extractor.extract(fake_x, batch_size, PROBS in kinds)
    summaries: dict[str, dict[str, np.ndarray]] = {}
    if real_kinds & {FEATURES, PROBS}:
        cache = Path(cache_dir) if cache_dir is not None else None
        arrays, summaries = _real_arrays(
            _as_images(real_x, "real_x"), extractor, dataset_name + real_tag, built, cache,
            batch_size,
        )
        real.update(arrays)

    ext_key = extractor.result_key(dataset_name) + (FLOAT_TAG if images and not quantize else "")
    results: dict[str, float] = {}
    for name, metric in built.items():
        values = evaluate_features(
            fake,
            real or None,
            [name],
            seed=seed,
            options={name: options[name]} if name in options else None,
            real_summaries=summaries,
        )
        label = "raw" if POINTS in metric.needs else ext_key
        dataset = dataset_name + real_tag if metric.needs_real else dataset_name
        results.update({protocol_key(k, n, dataset, label): v for k, v in values.items()})
    return results


def _real_arrays(
    real_x: torch.Tensor,
    extractor: Extractor,
    dataset: str,
    built: dict[str, Metric],
    cache_dir: Path | None,
    batch_size: int | None,
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]]:
    """Real features/probs and per-metric real summaries, from the cache when possible."""
    path = _cache_path(cache_dir, dataset, extractor, real_x) if cache_dir is not None else None
    cached = _load_cache(path) if path is not None else {}
    dirty = False
    if FEATURES not in cached or (extractor.num_classes > 0 and PROBS not in cached):
        features, probs = extractor.extract(real_x, batch_size, with_probs=True)
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
