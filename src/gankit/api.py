"""The public Python API: train, resume, load, sample. The CLI only parses and calls these."""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gankit import config as C
from gankit.data import load_dataset
from gankit.registry import closest
from gankit.sampling import check_truncation, draw, generate, stream
from gankit.training import parallel
from gankit.training.checkpoint import (
    NonFiniteStateError,
    checkpoint_dir,
    checkpoint_step,
    kept_steps,
    list_checkpoints,
    load_latest,
    load_newest,
    load_weights,
    nonfinite_tensor,
)
from gankit.training.evaluator import TrainingEvaluator
from gankit.training.lock import run_lock
from gankit.training.loop import Trainer
from gankit.training.sinks import check_sinks_installed
from gankit.training.state import DataInfo, build_networks, build_state, resolve_device
from gankit.utils import distributed
from gankit.utils.console import note
from gankit.utils.guards import check_memory
from gankit.utils.io import (
    atomic_write_json,
    atomic_write_text,
    remove_stale_temps,
    truncate_log,
)


def make_config(preset: str | None = None, *, data: str | None = None, steps: int | None = None,
                seed: int | None = None, device: str | None = None,
                overrides: Sequence[str] = (), base: dict | None = None) -> C.Config:
    """Resolve a preset plus flags and ``--set`` overrides into a validated Config."""
    pairs: list[Any] = list(overrides)
    for keys, value in ((["data", "name"], data), (["train", "steps"], steps),
                        (["train", "seed"], seed), (["train", "device"], device)):
        if value is not None:
            pairs.append((keys, value))
    return C.resolve(preset, pairs, base=base)


def dataset_for(config: C.Config):
    """The run's training data, as ``config.data`` says (streamed when it is large)."""
    d = config.data
    ds = load_dataset(d.name, resolution=d.resolution, channels=d.channels,
                      strict_images=d.strict_images, stream=d.stream, workers=d.workers,
                      columns=d.columns)
    if d.classes:
        ds = keep_classes(ds, d.classes)
    if d.autoencode:  # reconstruction: each image is its own source
        if ds.source is not None or ds.streamed or ds.table is not None:
            raise ValueError(f"data.autoencode=true needs images or points in memory without "
                             f"sources; {d.name} is not")
        ds = dataclasses.replace(ds, source=ds.x)
    if d.lr_scale:  # super-resolution: the targets' bicubic downscales are the sources
        from gankit.data.paired import with_sr_source

        if ds.source is not None:
            raise ValueError(f"data.lr_scale={d.lr_scale}: {d.name} already pairs sources "
                             "with its images; set data.lr_scale=0")
        ds = with_sr_source(ds, d.lr_scale)
    return ds


def keep_classes(ds, classes) -> object:
    """``ds`` with only the rows of ``classes`` (labels kept as they are)."""
    if ds.y is None or ds.streamed:
        raise ValueError(f"data.classes needs labelled data in memory; {ds.name} has "
                         f"{'no labels' if ds.y is None else 'streamed images'}")
    bad = [c for c in classes if not 0 <= c < ds.num_classes]
    if bad:
        raise ValueError(f"data.classes: {bad[0]} is not a class of {ds.name} (0.."
                         f"{ds.num_classes - 1})")
    keep = torch.isin(ds.y, torch.tensor(list(classes)))
    source = ds.source[keep] if ds.source is not None else None
    return dataclasses.replace(ds, x=ds.x[keep], y=ds.y[keep], source=source)


def cache_data(spec: str, *, resolution: int | None = None, channels: int | None = None,
               workers: int | None = None) -> dict:
    """Decode a ``folder:PATH`` dataset once into its uint8 cache on disk (``gankit data
    cache``), which streamed loads of the same files at ``resolution`` then memory-map
    instead of decoding (`gankit.data.folder`); for ``npz:PATH``, decompress a compressed
    archive's ``x`` (an uncompressed one is mapped in place: nothing to do). Nothing is
    done when it is up to date.

    Args:
        spec: ``folder:PATH`` or ``npz:PATH``.
        resolution: image side (default 64), as the run's ``data.resolution``.
        channels: 1 or 3, only checked: the cache holds RGB and serves both.
        workers: decode processes; None: `gankit.data.default_workers`.

    Returns:
        ``{"path", "images", "resolution", "bytes", "built"}`` (built: False when the
        cache of these files was already there).
    """
    from gankit.data import check_options, default_workers
    from gankit.data.folder import DEFAULT_RESOLUTION, build_cache

    if isinstance(spec, str) and spec.startswith("npz:"):
        return _cache_npz(spec)
    if not isinstance(spec, str) or not spec.startswith("folder:"):
        raise ValueError(f"gankit data cache takes folder:PATH or npz:PATH, got {spec!r}")
    check_options(resolution, channels)
    workers = default_workers() if workers is None else workers
    if workers < 0:
        raise ValueError(f"--workers must be >= 0, got {workers}")
    path, images, built = build_cache(spec.partition(":")[2], resolution, workers)
    return {"path": str(path), "images": images, "built": built,
            "resolution": resolution or DEFAULT_RESOLUTION, "bytes": path.stat().st_size}


def _cache_npz(spec: str) -> dict:
    """An npz archive's ``x``, decompressed into the data cache when it is compressed."""
    from gankit.data.npz import _x_member, extract_x

    path = Path(spec.partition(":")[2]).expanduser()
    if not path.is_file():
        raise ValueError(f"{spec}: no such file")
    member = _x_member(path)
    if member is None:
        raise ValueError(f"{spec}: no array 'x' in the archive")
    offset, shape, _, _ = member
    out, built = (path, False) if offset is not None else extract_x(path)
    return {"path": str(out), "images": shape[0], "built": built, "bytes": out.stat().st_size,
            "resolution": shape[2] if len(shape) == 4 and shape[1] in (1, 3) else shape[1]}


def data_info(ds, config: C.Config | None = None) -> DataInfo:
    """What G and D are built for: ``ds``'s shape, kind and classes; under
    self-conditioning the classes are ``config``'s clusters, whatever labels ``ds`` has."""
    k = config.self_condition.clusters if config is not None else 0
    source = tuple(ds.source.shape[1:]) if getattr(ds, "source", None) is not None else None
    table = getattr(ds, "table", None)
    if table is not None:  # rows are [encoded row | conditional vector] (gankit.tabular)
        cond = sum(b["width"] for b in table.transform.discrete)
        return DataInfo((ds.x.shape[1] + cond,), ds.kind, 0, table=table.transform.state_dict())
    return DataInfo(tuple(ds.x.shape[1:]), ds.kind, int(k or ds.num_classes), source,
                    getattr(ds, "domains", 1))


def train(preset: str | None = "dcgan", *, out: str | Path | None = None,
          data: str | None = None, steps: int | None = None, seed: int | None = None,
          device: str | None = None, overrides: Sequence[str] = (), progress: bool = True,
          config: C.Config | None = None, callbacks=()) -> RunResult:
    """Train a fresh run and write it to ``out``, holding the directory's lock
    (`gankit.training.lock`) while it trains. Under torchrun, every process trains its
    shard of each global batch and rank 0 alone writes (`gankit.utils.distributed`).

    Args:
        preset: a preset name (``gankit list`` shows them).
        out: the run directory; it must not hold a checkpoint. What a run stopped before
            its first checkpoint left there (log, samples) is replaced, with a note.
        data, steps, seed, device: shortcuts for the matching config keys.
        overrides: ``"key=value"`` strings as for ``--set``.
        progress: show a progress bar.
        config: a ready Config instead of preset + overrides.

    Raises:
        ValueError: ``out`` is a file, cannot be written, holds a run, or another process
            trains in it.
    """
    if config is None:
        config = make_config(preset, data=data, steps=steps, seed=seed, device=device,
                             overrides=overrides)
    if out is not None:
        check_sinks_installed(config.log.sinks)  # before the run directory is made
    with distributed.session() as world, ExitStack() as held:
        device = world.use_device(config.train.device)
        world.on_main(lambda: parallel.check_config(config, world.size, device))
        run_dir = Path(out) if out is not None else None
        if run_dir is not None:
            world.on_main(lambda: _start_run_dir(run_dir, config, held))
        ds = dataset_for(config)
        info = data_info(ds, config)
        state = build_state(config, info, device)
        if config.train.init_from:
            init_generator(state, config.train.init_from)
        return _run(state, ds, run_dir, progress, callbacks, world)


def init_generator(state, run_dir: str | Path) -> None:
    """Start G (and G_ema) from the raw G of another run (``train.init_from``: SRGAN from an
    SRResNet run); D and the optimisers start fresh.

    Raises:
        ValueError: the other run's G is not the same network (architecture and shapes).
    """
    try:
        other = load(run_dir)
    except FileNotFoundError:
        raise ValueError(f"train.init_from={run_dir}: no checkpoint there; train that run "
                         f"first") from None
    source = other.G.state_dict()
    target = state.G.state_dict()
    mismatch = [k for k in target if k not in source or source[k].shape != target[k].shape]
    if mismatch or set(source) != set(target):
        name = mismatch[0] if mismatch else sorted(set(source) ^ set(target))[0]
        raise ValueError(f"train.init_from={run_dir}: its generator "
                         f"({other.config.generator.name}) does not match this run's "
                         f"({state.config.generator.name}) at {name}; use the same generator "
                         f"options")
    with torch.no_grad():
        for net in (state.G, state.G_ema):
            if net is not None:
                net.load_state_dict({k: v.to(state.device) for k, v in source.items()})


def _start_run_dir(run_dir: Path, config: C.Config, held: ExitStack) -> None:
    """Create ``run_dir``, take its lock for as long as ``held`` lasts, clear what an
    unfinished run left there and write the config."""
    _make_run_dir(run_dir)
    held.enter_context(run_lock(run_dir))
    _replace_unfinished(run_dir)
    atomic_write_text(run_dir / "config.yaml", C.dump_yaml(config))


def resume(run_dir: str | Path, *, steps: int | None = None, overrides: Sequence[str] = (),
           device: str | None = None, progress: bool = True, callbacks=()) -> RunResult:
    """Continue a run from its newest checkpoint up to ``steps`` generator steps in total,
    holding the directory's lock while it trains. Under torchrun, rank 0 reads the
    checkpoint and sends it to the others (only its machine needs the run directory)."""
    run_dir = Path(run_dir)
    with distributed.session() as world, ExitStack() as held:
        config, ckpt = world.on_main(
            lambda: _read_resume(run_dir, steps, overrides, device, held), share=True)
        dev = world.use_device(config.train.device)
        world.on_main(lambda: parallel.check_config(config, world.size, dev))
        ds = dataset_for(config)
        info = data_info(ds, config)
        world.on_main(lambda: _check_data(run_dir, info, ckpt))
        state = build_state(config, info, dev)
        state.load_state_dict(ckpt)
        if world.is_main:
            parallel.note_world_change(state, world.size)
            truncate_log(run_dir / "log.jsonl", state.step)
            atomic_write_text(run_dir / "config.yaml", C.dump_yaml(config))
        return _run(state, ds, run_dir, progress, callbacks, world)


def _read_resume(run_dir: Path, steps, overrides, device, held: ExitStack) -> tuple:
    """The config and checkpoint to continue ``run_dir`` with, checked; its lock is taken
    for as long as ``held`` lasts."""
    if not run_dir.is_dir():
        parent = run_dir.parent if run_dir.parent.is_dir() else None
        runs = sorted(p.name for p in parent.iterdir() if p.is_dir()) if parent else []
        raise FileNotFoundError(f"--resume {run_dir}: no such run directory."
                                f"{closest(run_dir.name, runs)}")
    held.enter_context(run_lock(run_dir))
    _remove_stale_temps(run_dir)
    ckpt, path = load_latest(run_dir)
    try:
        old = C.upgrade(ckpt["config"])
    except ValueError as exc:
        raise ValueError(f"--resume {run_dir}: {exc}") from None
    config = make_config(base=old, steps=steps, device=device, overrides=overrides)
    check_sinks_installed(config.log.sinks)
    # the checkpoint's config with today's defaults filled in: a field added to gankit
    # since the run started is not a change
    changed = [d for d in C.diff(C.from_dict(old).to_dict(), config.to_dict())
               if C.is_architecture_key(d.split(":")[0])]
    if changed:
        raise ValueError(f"--resume {run_dir}: the config changes the architecture or "
                         f"data, which a checkpoint cannot continue: {'; '.join(changed)}")
    if config.train.steps <= ckpt["step"]:
        raise ValueError(f"--resume {run_dir}: the run is already at step {ckpt['step']}; "
                         f"pass --steps N with N > {ckpt['step']} (the new total)")
    return config, ckpt


def _check_data(run_dir: Path, info: DataInfo, ckpt: dict) -> None:
    if info != DataInfo.from_dict(ckpt["data_info"]):
        raise ValueError(f"--resume {run_dir}: the data now gives {info}, the checkpoint "
                         f"was trained on {DataInfo.from_dict(ckpt['data_info'])}")


def _run(state, ds, run_dir: Path | None, progress: bool, callbacks,
         world: distributed.World) -> RunResult:
    """Train ``state`` on ``ds`` up to its config's total steps; training-time evaluation
    runs on rank 0 alone."""
    parallel.prepare(world, state)
    evaluator = TrainingEvaluator.from_config(state.config, state.info.kind) \
        if world.is_main else None
    world.on_main(lambda: evaluator.check(state) if evaluator is not None else None)
    trainer = Trainer(state, ds, run_dir, progress=progress, callbacks=callbacks,
                      evaluator=evaluator, world=world)
    try:
        record = trainer.run(state.config.train.steps)
    finally:  # an interrupt or a divergence too: decode workers stop, the sinks flush
        trainer.batches.close()
        trainer.out.close()
    if not world.is_main:
        return RunResult(state, None, None, None, record, {})
    return _finish(trainer, record)


def _make_run_dir(out: str | Path) -> Path:
    """Create the run directory ``out`` (``--out``) or fail with a one-line error."""
    run_dir = Path(out)
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"--out {run_dir} is a file, not a directory; choose another --out")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise
        raise ValueError(f"--out {run_dir}: cannot create the directory ({exc.strerror}); "
                         "choose another --out") from None
    return run_dir


def _replace_unfinished(run_dir: Path) -> None:
    """Refuse ``run_dir`` when it holds a checkpoint; otherwise remove what a run stopped
    before its first checkpoint left there (config, log, samples, temp files), with a note."""
    if list_checkpoints(run_dir):
        raise ValueError(f"{run_dir} already holds a run; continue it with "
                         f"--resume {run_dir}, or choose another --out")
    best = checkpoint_dir(run_dir) / "best.pt"
    if best.exists():
        raise ValueError(f"{run_dir} holds {best} but no step checkpoint to continue from; "
                         f"move it away to train again in {run_dir}, or choose another --out")
    names = ("config.yaml", "log.jsonl", "metrics.json")
    leftovers = [run_dir / n for n in names if (run_dir / n).is_file()]
    leftovers += sorted((run_dir / "samples").glob("step_*.png"))
    leftovers += sorted((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    leftovers += [p for p in [run_dir / "wandb" / "gankit_run_id"] if p.is_file()]
    if leftovers:
        note(f"{run_dir} holds an unfinished run with no checkpoint (stopped before its first "
             "save); replacing it")
        for path in leftovers:
            path.unlink()
    _remove_stale_temps(run_dir)


def _remove_stale_temps(run_dir: Path) -> None:
    """Remove the temp files of killed writes from the folders the training writes."""
    for folder in (run_dir, run_dir / "samples", checkpoint_dir(run_dir)):
        remove_stale_temps(folder)


@dataclass
class RunResult:
    """What a finished training call returns."""

    state: Any  # the TrainState
    run_dir: Path | None
    checkpoint: Path | None
    samples: Path | None
    last_log: dict
    metrics: dict


def _finish(trainer: Trainer, record: dict) -> RunResult:
    state, run_dir = trainer.state, trainer.run_dir
    metrics: dict = {}
    if state.info.kind == "points":
        metrics = mixture_report(state.sample_net(), state.config, trainer.data.name,
                                 state.device)
        if run_dir is not None and metrics:
            atomic_write_json(run_dir / "metrics.json", metrics)
    ckpts = list_checkpoints(run_dir, quiet=True) if run_dir is not None else []
    samples = sorted((run_dir / "samples").glob("step_*.png")) if run_dir is not None else []
    return RunResult(state, run_dir, ckpts[-1] if ckpts else None,
                     samples[-1] if samples else None, record, metrics)


def mixture_report(G: nn.Module, config: C.Config, dataset: str, device,
                   n: int = 2500) -> dict:
    """PacGAN's mixture metrics on ``n`` points from a fixed latent batch (PROTOCOLS §1)."""
    from gankit.data import mixture_spec
    from gankit.metrics import mixture_metrics

    try:
        means, std = mixture_spec(dataset)
    except ValueError:
        return {}
    pts = draw(G, n, config.z_dim, stream(config.train.seed, "latents", device)).numpy()
    return mixture_metrics(pts, means, std)


# -- loading and sampling ----------------------------------------------------------------
@dataclass
class LoadedRun:
    """G (and G_ema when the run kept one) rebuilt from a run's newest weights file."""

    config: C.Config
    info: DataInfo
    G: nn.Module
    G_ema: nn.Module | None
    step: int
    run_dir: Path | None = None  # where it was loaded from

    def net(self, ema: bool = True) -> nn.Module:
        return self.G_ema if ema and self.G_ema is not None else self.G

    @property
    def conditional(self) -> bool:
        """True when the generator takes class labels (``generator.conditioning``)."""
        return bool(getattr(self.G, "conditional", False))

    def require_latent(self, what: str) -> None:
        """Refuse ``what`` (a command) for a run whose G does not map latents alone."""
        takes = getattr(self.G, "takes", "latent")
        if takes in ("latent", "bigan"):
            return
        hint = {"image": "gankit translate, gankit upscale or gankit anomaly score",
                "table": "gankit sample RUN --out FILE.csv"}[takes]
        raise ValueError(f"{what} draws from latents; {self.run_dir} is a "
                         f"{self.config.generator.name} run (its G takes "
                         f"{'images' if takes == 'image' else 'table conditions'}): use {hint}")


def load(run_dir: str | Path, device: str = "cpu", step: int | None = None) -> LoadedRun:
    """Load G and G_ema from the newest complete checkpoint of ``run_dir`` (safetensors
    weights; a corrupt one falls back to the one before, with a warning), or from the
    checkpoint of ``step`` when given.

    Raises:
        FileNotFoundError: the run has no checkpoint.
        ValueError: no checkpoint of ``step``, or none readable.
        NonFiniteStateError: the weights hold a NaN or an infinity (a ValueError).
    """
    paths = list_checkpoints(run_dir)
    kept = paths
    if step is not None:
        paths = [p for p in paths if checkpoint_step(p) == step]
        if not paths:
            raise ValueError(f"{run_dir} has no checkpoint of step {step}; kept steps: "
                             f"{kept_steps(kept)}")
    (tensors, meta), path = load_newest(
        run_dir, lambda p: load_weights(p.with_suffix(".safetensors")), paths)
    bad = nonfinite_tensor(tensors)
    if bad is not None:
        earlier = [p for p in kept if checkpoint_step(p) < checkpoint_step(path)]
        fix = (f"load an earlier checkpoint with step={checkpoint_step(earlier[-1])}"
               if earlier else "no earlier checkpoint is kept")
        raise NonFiniteStateError(
            f"{path.with_suffix('.safetensors')}: {bad} holds non-finite values (NaN or inf), "
            f"the run diverged before this checkpoint; {fix} (kept steps: {kept_steps(kept)})")
    config = C.from_dict(C.upgrade(json.loads(meta["config"]), for_training=False))
    info = DataInfo.from_dict(json.loads(meta["data_info"]))
    dev = resolve_device(device)
    nets = []
    for prefix in ("G.", "G_ema."):
        sd = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not sd:
            nets.append(None)
            continue
        G, _ = build_networks(config, info)
        G.load_state_dict(sd)
        nets.append(G.to(dev).eval().requires_grad_(False))
    return LoadedRun(config, info, nets[0], nets[1], int(meta.get("step", 0)), Path(run_dir))


def check_sample_memory(run: LoadedRun, n: int) -> None:
    """Refuse ``n`` samples of ``run`` whose latents and two copies of the samples (the
    batches and their concatenation) would not fit in the memory available."""
    shape = tuple(run.info.sample_shape)
    nbytes = n * 4 * (run.config.z_dim + 2 * math.prod(shape))
    check_memory(nbytes, f"--n {n} samples of shape {shape}",
                 "use a smaller --n, or several calls with different --seed")


@torch.no_grad()
def sample(run: str | Path | LoadedRun, n: int, *, classes=None, seed: int = 0,
           ema: bool = True, batch_size: int = 500, device: str = "cpu",
           return_labels: bool = False, progress: bool = False,
           truncation: float | None = None):
    """Draw ``n`` samples [n, ...] in data space ([-1, 1] images, raw 2D points).

    Args:
        run: a run directory or a `LoadedRun`.
        n: number of samples.
        classes: conditional runs only: an int (every sample of that class) or ``n`` labels
            (list, array or tensor) in 0..K-1. None: a conditional run draws uniform labels
            from ``seed`` (after z, so z is the same with or without classes); a
            self-conditioned run draws its clusters in proportion to their sizes.
        seed: seeds z (and the labels drawn when ``classes`` is None).
        ema: sample the EMA generator when the run kept one.
        return_labels: also return the labels [n] (None for an unconditional run).
        progress: a bar of the samples on stderr (when it is a terminal) when they take
            more than one batch.
        truncation: the truncation trick at this strength psi (``G.truncated``; BigGAN:
            z restricted to [-psi, psi], 0 = every z at 0). None: plain sampling.

    Returns:
        x [n, ...] on the CPU, or ``(x, labels)`` with ``return_labels``.

    Raises:
        ValueError: ``classes`` given for an unconditional run, out of range or mis-sized;
            ``n`` samples that would not fit in memory (`check_sample_memory`);
            ``truncation`` for a generator without the trick, or not a number >= 0.
    """
    if n < 1:
        raise ValueError(f"--n must be at least 1, got {n}")
    if truncation is not None:
        truncation = check_truncation(truncation)
    run = load(run, device) if not isinstance(run, LoadedRun) else run
    run.require_latent("gankit sample")
    check_sample_memory(run, n)
    net = run.net(ema)
    dev = next(net.parameters()).device
    gen = torch.Generator(device=dev).manual_seed(seed)
    z = torch.randn(n, run.config.z_dim, generator=gen, device=dev)
    c = _labels(run, n, classes, gen, dev)
    x = generate(net, z, c, batch_size=batch_size, progress=progress, truncation=truncation)
    if return_labels:
        return x, (c.cpu() if c is not None else None)
    return x


def export_generator(run: str | Path | LoadedRun, format: str = "onnx",
                     out: str | Path | None = None, *, ema: bool = True,
                     step: int | None = None, check: bool = True):
    """Export a run's generator to ONNX or TorchScript (`gankit.export`).

    The file's inputs are z [N, z_dim] float32 (and labels [N] int64 for a conditional run)
    with a dynamic batch N; its output is images [N, C, H, W] in [-1, 1] (points [N, D] for
    a 2D run), the same as `sample` gives for the same z and labels.

    Args:
        run: a run directory or a `LoadedRun`.
        format: ``onnx`` (``pip install 'gankit[onnx]'``) or ``torchscript``.
        out: the file to write (atomically); default RUN_DIR/export/generator.onnx or .pt.
        ema: export G_ema when the run kept one (what `sample` draws), else G.
        step: the checkpoint of this step instead of the newest (a run directory only).
        check: run the serialised model against PyTorch before writing it.

    Returns:
        a `gankit.export.ExportResult` (path, which net, its max abs difference, ...).

    Raises:
        ValueError: unknown ``format``, a bad ``out``, no checkpoint of ``step``, or a check
            that failed.
        FileNotFoundError: the run has no checkpoint.
        gankit.utils.extras.MissingExtraError: ``onnx`` without its packages.
    """
    from gankit.export import check_format, export_run

    check_format(format)
    if not isinstance(run, LoadedRun):
        run = load(run, "cpu", step=step)
    elif step is not None:
        raise ValueError("step= selects a checkpoint of a run directory; a LoadedRun is "
                         "already loaded")
    if out is None and run.run_dir is None:
        raise ValueError("out= is needed for a LoadedRun that was not loaded from a directory")
    return export_run(run, format, out, ema=ema, check=check)


def refined_sampler(run: str | Path | LoadedRun, options=None, *, ema: bool = True,
                    device: str = "cpu", log=None, progress: bool = False):
    """A critic-guided rejection sampler for a trained unconditional image run
    (`gankit.refine`): a critic is fitted on the run's training images against its
    generator's samples, then ``.sample(n, seed)`` keeps each sample with probability
    min(1, exp(alpha * logit - M)). The critic never sees the training images of
    `gankit.refine.reference_split`, the reference of ``gankit eval --refine``.

    Args:
        run: a run directory or a `LoadedRun`.
        options: a `gankit.refine.RefineOptions` (default settings when None).
        ema: refine the EMA generator when the run kept one.
        log: called with the critic's progress lines.
        progress: bars on stderr (when it is a terminal) of the critics' training and of
            the sampling.
    """
    from gankit import refine

    run = load(run, device) if not isinstance(run, LoadedRun) else run
    real = dataset_for(run.config).x  # refine() refuses a conditional generator
    critic_rows, _ = refine.reference_split(len(real))
    return refine.refine(run.net(ema), run.config.z_dim, real[critic_rows], options, log=log,
                         progress=progress)


_UNCONDITIONAL = ("{what}: this run's generator is unconditional (generator.conditioning="
                  "none), so it cannot be asked for a class; train a conditional preset "
                  "(cgan, acgan, sngan_projection)")


def class_grid_labels(run: LoadedRun, per_class: int) -> torch.Tensor:
    """Labels [K * per_class] = 0 x per_class, 1 x per_class, ...: one grid row per class."""
    if not run.conditional:
        raise ValueError(_UNCONDITIONAL.format(what="--class-grid"))
    if per_class < 1:
        raise ValueError(f"--n (samples per class) must be at least 1, got {per_class}")
    return torch.arange(run.info.num_classes).repeat_interleave(per_class)


def _labels(run: LoadedRun, n: int, classes, gen: torch.Generator,
            dev: torch.device) -> torch.Tensor | None:
    """The labels [n] to generate: checked ``classes``, uniform draws, or None."""
    num_classes = run.info.num_classes
    if classes is None:
        if not run.conditional:
            return None
        return run.G.cond.draw_labels(n, gen, dev)
    if not run.conditional:
        raise ValueError(_UNCONDITIONAL.format(what=f"class {classes!r}"))
    c = torch.as_tensor(classes)
    if c.is_floating_point() or c.is_complex() or c.dtype == torch.bool:
        raise TypeError(f"classes must be an int or integer labels, got {classes!r}")
    if c.dim() == 0:
        c = c.expand(n)
    elif c.shape != (n,):
        raise ValueError(f"classes must be one int or {n} labels (one per sample), got "
                         f"shape {tuple(c.shape)}")
    bad = c[(c < 0) | (c >= num_classes)]
    if len(bad):
        raise ValueError(f"class {int(bad[0])} is out of range: this run has {num_classes} "
                         f"classes, 0..{num_classes - 1}")
    return c.to(dev, torch.long)


def write_samples(x: torch.Tensor, out: str | Path, kind: str, y: torch.Tensor | None = None,
                  nrow: int | None = None, row_labels: list[str] | None = None) -> Path:
    """FILE.png: a grid of ``nrow`` per row (scatter for points), with ``row_labels`` left of
    the rows; FILE.npz: array ``x`` (and labels ``y`` when given); a directory: PNGs."""
    import numpy as np

    from gankit.utils.images import save_grid, save_images, scatter_png
    from gankit.utils.io import atomic_open

    out = Path(out)
    suffix = out.suffix.lower()
    if suffix == ".png":
        if kind == "image":
            save_grid(x, out, nrow=nrow, row_labels=row_labels)
        else:
            scatter_png(x.numpy(), out)
    elif suffix == ".npz":
        with atomic_open(out, "wb") as f:
            arrays = {"x": x.numpy().astype(np.float32)}
            if y is not None:
                arrays["y"] = y.numpy().astype(np.int64)
            np.savez(f, **arrays)
    elif suffix == "":
        if kind != "image":
            raise ValueError(f"--out {out}: a directory of PNGs needs image data; use .npz")
        save_images(x, out)
    else:
        raise ValueError(f"--out {out}: use FILE.png (grid), FILE.npz (array) or a directory")
    return out


def report(run_dir: str | Path, out: str | Path | None = None, *, class_grid: bool = True,
           device: str = "cpu", max_grids: int = 50) -> Path:
    """Write one self-contained HTML report of ``run_dir`` (`gankit.viz.report`): sample
    grids by step (at most ``max_grids``, evenly spaced; 0 = all), curves, metrics,
    ``gankit doctor``'s diagnosis, config, and a class grid for a conditional run (sampled
    on ``device``). ``out`` defaults to ``run_dir/report.html``; returns the path.

    Raises:
        FileNotFoundError: ``run_dir`` does not exist.
        ValueError: ``run_dir`` holds no run, ``out`` is a directory, ``max_grids`` < 0.
    """
    from gankit.viz.report import write_report

    return write_report(run_dir, out, class_grid=class_grid, device=device,
                        max_grids=max_grids)


def print_summary(result: RunResult, file=None) -> None:
    file = file or sys.stdout
    if result.samples is not None:
        print(f"samples:    {result.samples}", file=file)
    if result.checkpoint is not None:
        print(f"checkpoint: {result.checkpoint}", file=file)
    if result.metrics:
        m = result.metrics
        print("mixture metrics (2,500 samples, PacGAN protocol): "
              f"modes {m['modes']}, high quality {100 * m['hq']:.1f} %, "
              f"reverse KL {m['reverse_kl']:.4f}", file=file)
