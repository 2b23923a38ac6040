"""Evaluation: samples -> features (extracted once) -> metrics, under keys that state the
protocol (metric, N, reference data, extractor).

- `evaluate` backs ``gankit eval``: it draws or reads the samples, loads the reference data
  as the run trained on it, and writes the results;
- `compute_metrics` extracts the features of given samples and reference data (the
  reference's from the cache, `gankit.metrics._cache`) and names the keys;
- `evaluate_features` runs metrics on features already extracted.

Images are rounded to 8-bit levels before feature extraction by default (StyleGAN2-ADA and
clean-fid feed the extractor 8-bit images); results computed without it are tagged
``_float``. The metric maths and the extractors live in `gankit.metrics`; the training-time
evaluator in `gankit.training.evaluator`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gankit.data import load_dataset, mixture_spec
from gankit.metrics._cache import real_arrays
from gankit.metrics._common import FEATURES, POINTS, PROBS, Metric, protocol_key
from gankit.metrics.features import Extractor, build_extractor
from gankit.metrics.modes import channel_probs
from gankit.registry import METRICS
from gankit.utils.guards import check_finite, finite_float32
from gankit.utils.images import quantize_8bit
from gankit.utils.io import atomic_write_json

# The classifier gankit ships for a built-in dataset; other image data uses Inception.
DEFAULT_EXTRACTORS = {"mnist5k": "lenet_mnist5k", "digits": "lenet_digits"}
FLOAT_TAG = "_float"  # ends the extractor part of keys computed from unquantised images
# Result keys where a smaller value is better (for choosing the best checkpoint).
LOWER_IS_BETTER = ("fid", "kid", "memorization", "modes_kl", "mixture_reverse_kl",
                   "reverse_kl", "is_std")


def cache_dir() -> Path:
    """Where real-data statistics are cached: $GANKIT_CACHE or ~/.cache/gankit/stats."""
    root = os.environ.get("GANKIT_CACHE") or os.path.join(Path.home(), ".cache", "gankit")
    return Path(root) / "stats"


def default_extractor(dataset: str, kind: str) -> str:
    if kind == "points":
        return "raw"
    return DEFAULT_EXTRACTORS.get(dataset, "inception_v3_fid")


def default_metrics(kind: str) -> tuple[str, ...]:
    return ("mixture",) if kind == "points" else ("fid", "kid")


def short_name(spec: str) -> str:
    """A dataset's name inside result keys: ``folder:/a/faces`` -> ``folder_faces``."""
    name, sep, arg = spec.partition(":")
    return f"{name}_{Path(arg.rstrip('/')).stem}" if sep else name


def lower_is_better(key: str) -> bool:
    return key.startswith(LOWER_IS_BETTER)


def _load_source(source, n: int | None, seed: int, ema: bool, device: str, refine=None,
                 log=None, progress: bool = False, truncation: float | None = None):
    """Samples [n, ...], the Config of their run (None for files and tensors) and the
    refined sampler's report (None without ``refine``)."""
    from gankit import api

    path = None if isinstance(source, torch.Tensor) else Path(source)
    if truncation is not None and (path is None or not path.is_dir() or refine is not None):
        raise ValueError("--truncation draws from a run directory's generator and cannot be "
                         "combined with --refine; got " + (
                             "--refine" if refine is not None else "a samples file or tensor"))
    if refine is not None and (path is None or not path.is_dir()):
        what = "a tensor of samples" if path is None else repr(str(source))
        raise ValueError(f"refine needs a run directory to draw from, got {what}; "
                         "refine while sampling (gankit sample RUN --refine --out FILE.npz) "
                         "and evaluate that file")
    if path is None:
        return source.float(), None, None
    if path.is_dir():
        run = api.load(path, device=device)
        if refine is not None:
            api.check_sample_memory(run, n or 10_000)  # before the critic's fit
            sampler = api.refined_sampler(run, refine, ema=ema, device=device, log=log,
                                          progress=progress)
            x = sampler.sample(n or 10_000, seed=seed)
            return x, run.config, dict(sampler.report)
        x = api.sample(run, n or 10_000, seed=seed, ema=ema, device=device,
                       progress=progress, truncation=truncation)
        return x, run.config, None
    if path.suffix.lower() == ".npz":
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such samples file")
        with np.load(path, allow_pickle=False) as f:
            if "x" not in f.files:
                raise ValueError(f"{path}: expected an array 'x' of samples, found keys "
                                 f"{sorted(f.files)} (gankit sample --out FILE.npz writes 'x')")
            x = torch.from_numpy(finite_float32(f["x"], str(path)))
        if n is not None:
            if n > len(x):
                raise ValueError(f"-n {n} but {path} holds only {len(x)} samples")
            x = x[:n]
        return x, None, None
    raise ValueError(f"{source}: expected a run directory or a samples .npz file")


def _shape_tag(shape: Sequence[int]) -> str:
    """The dataset part of keys for a reference loaded at ``shape`` (C, R, R): ``_at{R}x{C}``."""
    return f"_at{shape[-1]}x{shape[0]}"


def _reference(against: str, fake: torch.Tensor, config, resize: bool, heldout: bool):
    """The real data to compare ``fake`` with: ``(dataset, its rows used, key tag)``.

    The run's own training data (``against`` is ``config.data.name``) is loaded as the run
    trained on it, at its ``data.resolution`` and ``data.channels`` (tag ``_at{R}x{C}`` when
    either is set); with ``heldout``, only its reference split
    (`gankit.refine.reference_split`, tag ``_heldout``), which a refine critic never sees.
    Other data is loaded as it is, and images of a shape other than
    ``fake``'s are refused unless ``resize`` (tag ``_at{R}x{C}``). A streamed dataset
    (large folder/npz, `gankit.data.load_dataset`) gives at most ``len(fake)`` rows: all
    when it has no more, else a fixed seeded subset (seed 0, so cached statistics are
    reused), read from disk; in-memory data gives all its rows.
    """
    from gankit import api

    if fake.dim() not in (2, 4):
        raise ValueError(f"samples must be points [N, D] or images [N, C, H, W], got shape "
                         f"{tuple(fake.shape)}")
    own = config is not None and against == config.data.name
    real = api.dataset_for(config) if own else load_dataset(against)
    kind = "points" if fake.dim() == 2 else "image"
    if real.kind != kind:
        what = {"points": "2-D points", "image": "images"}
        raise ValueError(f"--against {against}: holds {what[real.kind]} but the samples are "
                         f"{what[kind]} of shape {tuple(fake.shape[1:])}")
    tag = ""
    if own and (config.data.resolution is not None or config.data.channels is not None):
        tag = _shape_tag(real.shape)
    want = tuple(fake.shape[1:])
    if kind == "image" and real.shape != want:
        if not resize:
            raise ValueError(
                f"--against {against}: holds images of shape {real.shape} but the samples "
                f"have shape {want}; evaluate against data of the samples' shape, or pass "
                f"--resize (resize=True) to resize the real images to it (the keys then say "
                f"{short_name(against)}{_shape_tag(want)})")
        if want[1] != want[2]:
            raise ValueError(f"--resize makes square images, but the samples are "
                             f"{want[1]}x{want[2]}; evaluate against data of their shape")
        real = load_dataset(against, resolution=want[1], channels=want[0])
        tag = _shape_tag(want)
    rows = real.x
    keep = torch.arange(len(rows))
    if heldout and own:
        from gankit.refine import reference_split

        keep = reference_split(len(rows))[1]
        tag += "_heldout"
    if real.streamed:  # read from disk: at most as many images as samples, a fixed subset
        if len(keep) > len(fake):
            pick = torch.randperm(len(keep), generator=torch.Generator().manual_seed(0))
            keep = keep[pick[:len(fake)].sort().values]
        return real, rows.take(keep), tag
    return real, rows if len(keep) == len(rows) else rows[keep], tag


def evaluate(source: Any, *, metrics: Sequence[str] | None = None, against: str | None = None,
             n: int | None = None, extractor: str | None = None, seed: int = 0,
             ema: bool = True, device: str = "cpu", cache: str | os.PathLike | None = "default",
             out: str | os.PathLike | None = None, refine=None, quantize: bool = True,
             resize: bool = False, run_config=None, reference: bool = False,
             download: bool = False, log=None, progress: bool = False,
             truncation: float | None = None) -> dict[str, float]:
    """Compute metrics of generated samples against a real dataset.

    Args:
        source: a run directory (samples are drawn from its EMA generator), a ``.npz`` file
            with an array ``x``, or a tensor of samples.
        metrics: registered metric names; default fid, kid (images) or mixture (2D points).
        against: the real dataset spec; default the run's training data, which is then
            loaded at the run's ``data.resolution`` and ``data.channels`` (keys
            ``mnist5k_at32x1`` when the run set them).
        n: number of generated samples (a run draws this many, default 10,000; a file's
            first n, default all).
        extractor: feature extractor; default the shipped classifier for mnist5k/digits,
            ``raw`` for points, ``inception_v3_fid`` otherwise.
        seed: seeds the latents and the metrics' own randomness (KID subsets).
        cache: directory for cached real statistics; ``"default"`` is `cache_dir()`,
            None disables caching.
        out: write the results as JSON here (atomically).
        refine: a `gankit.refine.RefineOptions`: score a run's refined samples instead
            (`gankit.api.refined_sampler`, the samples ``gankit sample --refine`` draws
            with the same seed). Metrics that compare with the run's training data use
            only its reference split, which the critic never saw (keys ``mnist5k_heldout``;
            IS and mode counts, which use no reference, are unchanged). The results gain
            ``refine_acceptance`` and ``refine_heldout_accuracy`` (the first round's
            critic). Run directories only.
        quantize: round generated and real images to 8-bit levels before extracting
            features (the StyleGAN2-ADA and clean-fid protocol); False keeps the floats and
            tags the keys ``_float``. Points are never quantised.
        resize: compare with ``against`` resized to the samples' resolution and channels
            when its images have another shape (keys ``digits_at32x3``); without it a
            mismatch is an error.
        run_config: the Config of the run that drew a tensor ``source`` (the training-time
            evaluator passes it): its data is then the default ``against``, loaded as the
            run trained on it.
        reference: also compute the metrics of real data against itself, two disjoint
            seeded halves of the reference (each of min(N, half of it) images), under keys
            starting ``real_``: the value a perfect generator would score at that N.
        download: fetch the Inception weights when the extractor needs them and they are
            missing.
        log: called with progress lines and notes (the refine critics' progress; results
            replaced in an existing ``out`` file).
        progress: progress bars on stderr (when it is a terminal) for the sampling, the
            refine critics' training and the feature extraction.
        truncation: draw a run's samples with the truncation trick at this psi
            (``gankit sample --truncation``; BigGAN and StyleGAN2 runs); every key then
            ends in ``_trunc{psi}``, e.g. ``fid_10k_mnist5k_at32x1_lenet_trunc0.5``.

    Returns:
        ``{protocol_key: value}``, e.g. ``{"fid_10k_mnist5k_lenet_mnist5k": 4.1, ...}``.
    """
    for name in metrics or ():
        METRICS.get(name)  # an unknown name fails before any sampling
    if n is not None and n < 2:
        raise ValueError(f"-n must be at least 2, got {n}")
    fake, config, refined = _load_source(source, n, seed, ema, device, refine, log, progress,
                                         truncation)
    config = config or run_config
    if against is None:
        if config is None:
            raise ValueError("--against DATA is required when evaluating a samples file")
        against = config.data.name
    real, real_x, tag = _reference(against, fake, config, resize, heldout=refined is not None)
    kind = real.kind
    metrics = list(metrics or default_metrics(kind))
    options: dict[str, Any] = {}
    if "mixture" in metrics:
        means, std = mixture_spec(against)  # raises a clear error for non-mixture data
        options["mixture"] = {"means": means, "std": std}
    spec = extractor or default_extractor(against, kind)
    if download and spec.startswith("inception"):
        spec = build_extractor(spec, download=True)
    common = dict(seed=seed, options=options, quantize=quantize, real_tag=tag,
                  cache_dir=cache_dir() if cache == "default" else cache, progress=progress,
                  per_channel=getattr(real, "channel_classes", False))
    results = compute_metrics(fake, real_x, metrics, spec, short_name(against), len(fake),
                              **common)
    if reference:
        a, b = _halves(real_x, len(fake), seed)
        common["cache_dir"] = None  # the halves are not the reference data
        floor = compute_metrics(a, b, metrics, spec, short_name(against), len(a), **common)
        results.update({f"real_{k}": v for k, v in floor.items()})
    if refined is not None:
        results["refine_acceptance"] = float(refined["acceptance"])
        results["refine_heldout_accuracy"] = float(refined["heldout_accuracy"])
    if truncation is not None:  # the keys state the protocol
        results = {f"{k}_trunc{truncation:g}": v for k, v in results.items()}
    if out is not None:
        _write_results(out, results, log)
    return results


def _halves(x: torch.Tensor, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two disjoint seeded halves of ``x``, each of min(n, len(x) // 2) rows."""
    m = min(n, len(x) // 2)
    if m < 2:
        raise ValueError(f"--reference needs at least 4 real samples, got {len(x)}")
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    return x[perm[:m]], x[perm[m:2 * m]]


def _write_results(out: str | os.PathLike, results: dict, log=None) -> None:
    """Write ``results`` to the JSON file ``out``, keeping the other keys an earlier
    evaluation wrote there (and saying which values it replaces)."""
    import json

    path = Path(out)
    merged: dict = {}
    if path.is_file():
        try:
            merged = json.loads(path.read_text())
        except json.JSONDecodeError:
            merged = {}
        if not isinstance(merged, dict):
            merged = {}
    replaced = [k for k in results if k in merged and merged[k] != results[k]]
    kept = [k for k in merged if k not in results]
    if log is not None and (replaced or kept):
        log(f"note: {path} held earlier results: kept {len(kept)}"
            + (f", replaced {', '.join(replaced)}" if replaced else ""))
    merged.update(results)
    atomic_write_json(path, merged)


def format_table(results: dict[str, float]) -> str:
    """One line per result; with ``--reference`` results (``real_*``, same metrics in the
    same order) each line also shows what real data scores against real data."""
    real = {k: v for k, v in results.items() if k.startswith("real_")}
    main = {k: v for k, v in results.items() if k not in real}
    width = max((len(k) for k in main), default=10)
    if not real:
        return "\n".join(f"{k:<{width}}  {v:.6g}" for k, v in main.items())
    pairs = dict(zip(main, real.items()))
    lines = [f"{'':<{width}}  {'samples':>10}  real vs real (two halves of the data)"]
    for k, v in main.items():
        ref = f"{pairs[k][1]:.6g}   ({pairs[k][0][5:]})" if k in pairs else ""
        lines.append(f"{k:<{width}}  {v:>10.6g}  {ref}")
    return "\n".join(lines)


# -- features and metrics ---------------------------------------------------------------
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
    progress: bool = False,
    per_channel: bool = False,
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
        progress: bars of the feature extraction on stderr (`gankit.utils.progress`).
        per_channel: stacked data (``Dataset.channel_classes``, stacked_mnist): class
            probabilities [N, C, K] come from each channel classified as a grey image of
            its own, so ``modes`` counts tuples of channel classes (K^C modes) as the
            stacked-MNIST protocol; whole-image metrics of probabilities (``is``) are
            refused. Features are unchanged.

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
    per_channel = per_channel and PROBS in kinds and images and fake_x.shape[1] > 1
    if kinds & {FEATURES, PROBS} and (FEATURES in kinds or not per_channel):
        fake[FEATURES], fake[PROBS] = extractor.extract(
            fake_x, batch_size, PROBS in kinds, progress="features" if progress else None)
    if per_channel:
        whole = sorted(k for k, m in built.items() if PROBS in m.needs and k != "modes")
        if whole:
            raise ValueError(f"metrics {whole} read one class per image; this data has one "
                             f"per channel (stacked): use modes")
        fake[PROBS] = channel_probs(extractor, fake_x, batch_size)
    summaries: dict[str, dict[str, np.ndarray]] = {}
    if real_kinds & {FEATURES, PROBS}:
        cache = Path(cache_dir) if cache_dir is not None else None
        arrays, summaries = real_arrays(
            _as_images(real_x, "real_x"), extractor, dataset_name + real_tag, built, cache,
            batch_size, progress,
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
