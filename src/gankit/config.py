"""Run configuration: frozen dataclasses, preset loading, ``--set`` overrides, validation.

A configuration is plain data. Presets are YAML files under ``gankit/presets/`` that
name registry entries; a component's own options are validated against the ``Options``
dataclass its class declares, so ``--set generator.width=128`` is type-checked.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from gankit.registry import closest
from gankit.utils.checks import at_least


@dataclass(frozen=True)
class Component:
    """A registry entry by name plus its options (validated against its ``Options``)."""

    name: str  # registry name, e.g. "dcgan", "hinge", "adam"
    options: Mapping[str, Any] = field(default_factory=dict)  # constructor options


@dataclass(frozen=True)
class DataConfig:
    """Which data to train on and how images are shaped."""

    name: str = "mnist5k"  # ring, grid, mnist5k, digits, folder:PATH, npz:PATH
    resolution: int | None = None  # image side in pixels; None keeps the dataset's own
    channels: int | None = None  # 1 or 3; None keeps the dataset's own
    strict_images: bool = False  # a corrupt image in a folder is fatal instead of skipped
    # folder/npz images read from disk per batch instead of held in memory; None: when
    # they would take more than 1 GiB as float32 (gankit.data.STREAM_BYTES)
    stream: bool | None = None
    # processes that decode a streamed folder's images ahead of training (0: the main
    # process decodes each batch); None: one per core but one, at most 8
    workers: int | None = None
    # super-resolution: the sources are the images downscaled this many times (bicubic);
    # 0 = none (gankit.data.paired.with_sr_source)
    lr_scale: int = 0
    # tables: column types that override the inferred ones, e.g. {age: categorical}
    # (continuous, integer, categorical, boolean; gankit.tabular.table)
    columns: dict[str, str] = field(default_factory=dict)
    # labelled data: keep only these classes (e.g. the normal classes of anomaly detection)
    classes: tuple[int, ...] = ()
    # the sources of a translator are the images themselves (reconstruction: GANomaly)
    autoencode: bool = False

    def __post_init__(self) -> None:
        if self.lr_scale not in (0, 2, 4, 8):
            raise ValueError(f"data.lr_scale must be 0 (none), 2, 4 or 8, got {self.lr_scale}")
        if self.workers is not None and self.workers < 0:
            raise ValueError(f"data.workers must be >= 0 (0 decodes in the main process), "
                             f"got {self.workers}")


@dataclass(frozen=True)
class TrainConfig:
    """The schedule of the one training loop."""

    steps: int = 2000  # generator steps in total
    batch_size: int = 64  # real images per D step, and z per G step
    # D (critic) updates per G update; 0: no D and no adversarial term, G trains on its
    # other terms alone (e.g. SRResNet's PSNR-oriented pre-training with reconstruction)
    d_steps: int = 1
    seed: int = 0  # seeds weights, latents, data order and every random draw
    device: str = "auto"  # auto, cpu or cuda
    log_interval: int = 50  # steps between JSONL log records
    sample_interval: int = 500  # steps between sample grids (0 = only at the end)
    checkpoint_interval: int = 1000  # steps between checkpoints (0 = only at the end)
    keep_checkpoints: int = 3  # the last K checkpoints are kept
    num_samples: int = 64  # size of the fixed latent batch drawn into sample grids
    unrolled_steps: int = 0  # G is updated against D unrolled k steps (Metz et al. 2017)
    # 2: G's gradient flows through the k unrolled updates (the paper's); 1: first-order,
    # G is updated against the advanced copy alone (cheaper; gankit.training.unroll)
    unrolled_order: int = 2
    lr_decay: str = "none"  # none, or linear: both learning rates fall linearly towards 0
    lr_decay_start: float = 0.0  # linear: fraction of train.steps run at the full rate first
    # ((step, size), ...): from each step on, batch_size becomes size (real images per D step
    # and z per G step): less gradient noise late in training without lowering the learning
    # rates (Smith et al. 2018, "Don't decay the learning rate, increase the batch size")
    batch_schedule: tuple[tuple[int, int], ...] = ()
    # fp32, bf16 or fp16: G's and D's forward passes in the training steps run under
    # bfloat16 / float16 autocast (convolutions and matrix products in low precision;
    # weights, optimiser state, losses and the regularisers' own D passes stay float32).
    # bf16: fast on CPUs with AMX or AVX-512 BF16 and on GPUs from Ampere on. fp16: for
    # CUDA; each optimiser has its own dynamic loss scaler (checkpointed), and an update
    # whose gradients overflow is skipped and counted (precision/skipped_D, _G in the log).
    precision: str = "fp32"
    compile: bool = False  # torch.compile G's and D's forward passes (first steps compile)
    channels_last: bool = False  # G, D and the image batches in channels-last memory format
    # PyTorch's deterministic algorithms (and cuDNN's deterministic mode, no benchmark):
    # a CUDA run is then repeatable; a CPU run is repeatable without it (docs/scaling.md)
    deterministic: bool = False
    sync_batchnorm: bool = False  # several processes (CUDA): BatchNorm statistics over all
    # D scores the real and the fake batch in one call, so its BatchNorm layers normalise
    # both with shared statistics (in the G step, with D's view of the latest real batch):
    # apart, each batch is normalised by its own mean and variance, which hides from D
    # and from feature matching any difference the two batches show as a whole
    d_joint_batch: bool = False
    d_joint_batch_from: int = 0  # the step from which d_joint_batch applies (0 = throughout)
    # a NaN or infinite loss: rollback (to the last checkpoint's state, with lower learning
    # rates) or stop; it never reaches a checkpoint either way (gankit.training.faults)
    on_nonfinite: str = "rollback"
    nonfinite_retries: int = 3  # rollbacks allowed before training stops
    nonfinite_lr_factor: float = 0.5  # each rollback multiplies both learning rates by this
    # wall-clock minutes of training in this call (0 = none): at the first step boundary
    # past it, samples and a checkpoint are written as at the end and training stops;
    # --resume continues to train.steps (an equal time budget for comparing recipes)
    time_limit: float = 0.0
    # a run directory whose raw G initialises this run's G and G_ema (the same network):
    # SRGAN and ESRGAN start from a PSNR-oriented run; "" = random initialisation
    init_from: str = ""

    def __post_init__(self) -> None:
        at_least("train.d_steps", self.d_steps, 0, " (0 = no D: G on its other terms)")
        for name in ("steps", "batch_size", "num_samples", "keep_checkpoints",
                     "log_interval"):
            at_least(f"train.{name}", getattr(self, name), 1)
        for name in ("sample_interval", "checkpoint_interval", "unrolled_steps",
                     "d_joint_batch_from"):
            at_least(f"train.{name}", getattr(self, name), 0, " (0 = " + {
                "sample_interval": "only at the end)", "checkpoint_interval": "only at the end)",
                "unrolled_steps": "off)", "d_joint_batch_from": "throughout)"}[name])
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"train.device must be auto, cpu or cuda, got {self.device!r}")
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"train.precision must be fp32, bf16 or fp16, got "
                             f"{self.precision!r}")
        if self.precision == "fp16" and self.unrolled_steps:
            raise ValueError("train.precision=fp16 with train.unrolled_steps: the unrolled "
                             "updates have no loss scaling; use bf16 or fp32")
        if self.compile and self.unrolled_steps:
            raise ValueError("train.compile=true with train.unrolled_steps: the unrolled critic "
                             "is a new copy every step, which would recompile every step; "
                             "use one of the two")
        if self.unrolled_order not in (1, 2):
            raise ValueError(f"train.unrolled_order must be 1 (first-order) or 2 (through "
                             f"the unrolled updates, Metz et al.), got {self.unrolled_order}")
        if self.on_nonfinite not in ("rollback", "stop"):
            raise ValueError(f"train.on_nonfinite must be rollback or stop, got "
                             f"{self.on_nonfinite!r}")
        at_least("train.nonfinite_retries", self.nonfinite_retries, 0)
        at_least("train.time_limit", self.time_limit, 0, " minutes (0 = none)")
        if not 0.0 < self.nonfinite_lr_factor <= 1.0:
            raise ValueError(f"train.nonfinite_lr_factor must lie in (0, 1], got "
                             f"{self.nonfinite_lr_factor}")
        if self.lr_decay not in ("none", "linear"):
            raise ValueError(f"train.lr_decay must be none or linear, got {self.lr_decay!r}")
        if not 0.0 <= self.lr_decay_start < 1.0:
            raise ValueError(f"train.lr_decay_start must lie in [0, 1) (a fraction of "
                             f"train.steps), got {self.lr_decay_start}")


@dataclass(frozen=True)
class EvalConfig:
    """Metrics computed on the EMA generator during training."""

    interval: int = 0  # steps between evaluations; 0 = none during training
    metrics: tuple[str, ...] = ()  # registered metric names; () = fid, kid (mixture for 2D)
    n: int = 2000  # generated samples per evaluation
    against: str | None = None  # real dataset spec; None = the training data
    extractor: str | None = None  # feature extractor; None = the default for the data
    best: str | None = "fid"  # keep checkpoints/best.* by this metric (None = no best)


@dataclass(frozen=True)
class HealthConfig:
    """Training health monitor (gankit.training.health): signals and warning thresholds."""

    enabled: bool = True  # log health/* signals on log steps and warn on failures
    window: int = 3  # consecutive log records a condition must hold to warn, and to clear
    reference_logs: int = 3  # the median of the first N records is a signal's reference
    warmup_steps: int = 500  # D-saturation, vanishing and collapse checks start at this step
    d_saturation_accuracy: float = 0.99  # D's accuracy on real AND fake at least this ...
    d_saturation_logit: float = 4.0  # ... and mean logits beyond +-this (sigmoid 0.982)
    grad_vanish_ratio: float = 1e-3  # health/grad_G_output below this x its reference ...
    grad_vanish_abs: float = 1e-8  # ... or below this absolute value
    diversity_ratio_min: float = 0.2  # generated/real mean pairwise distance below this
    loss_growth: float = 1e3  # |loss| above this x max(1, |its reference|) ...
    loss_max_abs: float = 1e4  # ... or above this absolute value: diverged
    mode_samples: int = 500  # fixed latents scored for health/modes on 2D mixtures

    def __post_init__(self) -> None:
        if self.window < 1 or self.reference_logs < 1 or self.mode_samples < 1 \
                or self.warmup_steps < 0:
            raise ValueError("health.window, health.reference_logs and health.mode_samples "
                             "must be at least 1 and health.warmup_steps at least 0, got "
                             f"{self.window}, {self.reference_logs}, {self.mode_samples}, "
                             f"{self.warmup_steps}")


@dataclass(frozen=True)
class SelfConditionConfig:
    """Self-conditioned GAN (Liu et al. 2020; gankit.training.self_condition): G and D are
    conditioned on k-means clusters of the real data in D's feature space."""

    clusters: int = 0  # K clusters = G's and D's classes; 0 = off
    interval: int = 2000  # G steps between re-clusterings with the current D; 0 = never
    dim: int = 512  # D's features are randomly projected to this many dims (0 = keep all)
    iters: int = 30  # at most this many k-means iterations per clustering

    def __post_init__(self) -> None:
        if self.clusters == 1 or self.clusters < 0 or self.interval < 0 or self.dim < 0 \
                or self.iters < 1:
            raise ValueError("self_condition.clusters must be 0 (off) or at least 2, "
                             "interval and dim at least 0, iters at least 1; got "
                             f"clusters={self.clusters}, interval={self.interval}, "
                             f"dim={self.dim}, iters={self.iters}")


@dataclass(frozen=True)
class LogConfig:
    """Where the log goes besides ``log.jsonl``, which stays the source of truth."""

    # copies of every logged number, the sample grids and the evaluations
    # (gankit.training.sinks): tensorboard (RUN/tensorboard/), wandb (RUN/wandb/, offline
    # unless WANDB_MODE is set); each needs its extra, pip install 'gankit[NAME]'
    sinks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        from gankit.training.sinks import check_sink_names

        check_sink_names(self.sinks)


@dataclass(frozen=True)
class Config:
    """A complete, resolved run configuration."""

    preset: str = "dcgan"  # the preset this config started from
    data: DataConfig = field(default_factory=DataConfig)
    z_dim: int = 100  # latent dimension of G's input z ~ N(0, I)
    generator: Component = field(default_factory=lambda: Component("dcgan"))
    discriminator: Component = field(default_factory=lambda: Component("dcgan"))
    loss: Component = field(default_factory=lambda: Component("non_saturating"))
    regularizers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # name -> opts
    hooks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # name -> options
    augmentations: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # D inputs
    pack: int = 1  # PacGAN: D judges m samples at once (Lin et al. 2018)
    g_optimizer: Component = field(default_factory=lambda: Component("adam"))
    d_optimizer: Component = field(default_factory=lambda: Component("adam"))
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    self_condition: SelfConditionConfig = field(default_factory=SelfConditionConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def to_dict(self) -> dict:
        return _to_plain(dataclasses.asdict(self))


COMPONENT_KEYS = ("generator", "discriminator", "loss", "g_optimizer", "d_optimizer")

# Fields whose change alters the networks' shapes: resume refuses to change them (a
# dotted entry covers that field and everything under it).
ARCHITECTURE_KEYS = ("data", "z_dim", "generator", "discriminator", "pack",
                     "self_condition.clusters")


# how the data is read, not which data: a resume may change them
READING_KEYS = ("data.stream", "data.workers")


def is_architecture_key(key: str) -> bool:
    """True when the dotted config ``key`` lies under one of `ARCHITECTURE_KEYS` (and is
    not one of `READING_KEYS`)."""
    if any(key == r or key.startswith(r + ".") for r in READING_KEYS):
        return False
    return any(key == a or key.startswith(a + ".") for a in ARCHITECTURE_KEYS)


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    return obj


def preset_names() -> list[str]:
    root = resources.files("gankit") / "presets"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def preset_text(name: str) -> str:
    names = preset_names()
    if name not in names:
        raise ValueError(
            f"unknown preset {name!r}.{closest(name, names)} Valid presets: {', '.join(names)}"
        )
    return (resources.files("gankit") / "presets" / f"{name}.yaml").read_text()


def preset_description(name: str) -> str:
    """The first comment line of a preset file (its paper citation)."""
    for line in preset_text(name).splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def load_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load(text)``; a syntax error or a tag it refuses (``!!python/...``) is a
    ``ValueError`` naming ``where`` (a file, or ``--set KEY=VALUE``) and the line."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        hint = "quote values that contain ':', '[' or '#'"
        if isinstance(exc, yaml.constructor.ConstructorError):
            hint = "plain YAML values only: tags such as !!python/... are refused"
        raise ValueError(f"{where}: not valid YAML{at}: {problem}; {hint}") from None


def load_preset(name: str) -> dict:
    data = load_yaml(preset_text(name), f"preset {name}") or {}
    data["preset"] = name
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``a.b.c=value``; the value is read as YAML (``1e-4``, ``[0.5, 0.9]``, ``null``)."""
    if "=" not in text:
        raise ValueError(f"--set {text!r}: expected key=value, e.g. --set train.batch_size=128")
    key, _, raw = text.partition("=")
    keys = [k for k in key.strip().split(".")]
    if not all(keys):
        raise ValueError(f"--set {text!r}: empty key segment in {key!r}")
    if raw.strip().lower() in _YAML11_BOOLEANS:
        raise ValueError(f"--set {text!r}: write true or false (YAML would read "
                         f"{raw.strip()!r} as a boolean silently)")
    value = load_yaml(raw, f"--set {text!r}") if raw.strip() else None
    if isinstance(value, str):
        value = _maybe_float(value)
    return keys, value


_YAML11_BOOLEANS = ("yes", "no", "on", "off", "y", "n")


def _maybe_float(value: str) -> Any:
    try:  # YAML 1.1 reads "1e-4" as a string; users mean a number.
        return float(value) if any(c.isdigit() for c in value) else value
    except ValueError:
        return value


def apply_overrides(data: dict, overrides: list) -> dict:
    """Return a copy of ``data`` with overrides applied: ``"a.b=v"`` strings (``--set``)
    or ``(["a", "b"], value)`` pairs."""
    import copy

    data = copy.deepcopy(data)
    for item in overrides:
        keys, value = parse_override(item) if isinstance(item, str) else item
        text = item if isinstance(item, str) else ".".join(keys)
        node = data
        for k in keys[:-1]:
            child = node.get(k)
            if child is None:
                child = node[k] = {}
            elif isinstance(child, str) and k in COMPONENT_KEYS:
                child = node[k] = {"name": child}  # loss: hinge -> loss: {name: hinge}
            if not isinstance(child, dict):
                raise ValueError(f"--set {text!r}: {k!r} is a value, not a section")
            node = child
        if value is None and isinstance(node.get(keys[-1]), dict | type(None)):
            node.pop(keys[-1], None)  # --set hooks.ema=null removes a component
        else:
            node[keys[-1]] = value
    return data


def _expand_component(value: Any, where: str) -> dict:
    if isinstance(value, str):
        return {"name": value, "options": {}}
    if isinstance(value, Mapping):
        value = dict(value)
        if "name" not in value:
            raise ValueError(f"{where}: missing 'name' (the registry entry to use)")
        name = value.pop("name")
        options = dict(value.pop("options", {}) or {})
        options.update(value)  # options may be written inline beside name
        return {"name": name, "options": options}
    raise TypeError(f"{where}: expected a name or a mapping with 'name', got {value!r}")


def from_dict(data: Mapping[str, Any]) -> Config:
    """Build and validate a :class:`Config` from nested plain data."""
    data = dict(data)
    for key in COMPONENT_KEYS:
        if key in data:
            data[key] = _expand_component(data[key], key)
    for key in ("regularizers", "hooks", "augmentations"):
        section = data.get(key) or {}
        if not isinstance(section, Mapping):
            raise TypeError(f"{key}: expected a mapping of name -> options, got {section!r}")
        data[key] = {n: dict(o or {}) for n, o in section.items()}
    config = build_dataclass(Config, data, "")
    validate_components(config)
    return config


def build_dataclass(cls: type, data: Mapping[str, Any] | None, where: str) -> Any:
    """Instantiate dataclass ``cls`` from ``data``, checking names and types of every field."""
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = [k for k in data if k not in fields]
    if unknown:
        k = unknown[0]
        raise ValueError(
            f"unknown option {where + k!r}.{closest(k, list(fields))} "
            f"Valid options{' of ' + where.rstrip('.') if where else ''}: {', '.join(fields)}"
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = check_type(hints[name], value, where + name)
    return cls(**kwargs)


def check_type(tp: Any, value: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; returns it (int -> float widened)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise TypeError(f"{where}: expected a section (mapping), got {value!r}")
        return build_dataclass(tp, value, where + ".")
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return check_type(arg, value, where)
            except (TypeError, ValueError) as exc:
                errors.append(str(exc))
        raise TypeError(f"{where}: {value!r} does not fit {_type_name(tp)}")
    if tp is Any:
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{where}: expected a list ({_type_name(tp)}), got {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise TypeError(f"{where}: expected {len(args)} values, got {value!r}")
            return tuple(check_type(a, v, f"{where}[{i}]") for i, (a, v) in
                         enumerate(zip(args, value)))
        inner = args[0] if args else Any
        return tuple(check_type(inner, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (Mapping, dict) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise TypeError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise TypeError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise TypeError(f"{where}: expected a string, got {value!r}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise TypeError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def component_options(registry: Any, name: str, options: Mapping[str, Any], where: str) -> dict:
    """Validate ``options`` against the ``Options`` dataclass of ``registry[name]``; a range
    error of the Options names the option's full key (``g_optimizer.lr must be > 0``)."""
    cls = registry.get(name)
    opts_cls = getattr(cls, "Options", None)
    if opts_cls is None:
        if options:
            raise ValueError(f"{where}: {name!r} takes no options, got {dict(options)}")
        return {}
    try:
        return dataclasses.asdict(build_dataclass(opts_cls, options, where + "."))
    except ValueError as exc:
        msg = str(exc)
        fields = [f.name for f in dataclasses.fields(opts_cls)]
        if msg.startswith((where, "unknown option", "generator.", "discriminator.")):
            raise
        sep = "." if msg.split(" ", 1)[0] in fields else ": "
        raise ValueError(f"{where}{sep}{msg}") from None


def validate_components(config: Config) -> None:
    """Resolve every component name and option against the registries (fills defaults)."""
    from gankit import registry as R

    pairs = [
        ("generator", R.GENERATORS, config.generator),
        ("discriminator", R.DISCRIMINATORS, config.discriminator),
        ("loss", R.LOSSES, config.loss),
        ("g_optimizer", R.OPTIMIZERS, config.g_optimizer),
        ("d_optimizer", R.OPTIMIZERS, config.d_optimizer),
    ]
    for where, reg, comp in pairs:
        resolved = component_options(reg, comp.name, comp.options, where)
        object.__setattr__(comp, "options", resolved)
    for section, reg in (("regularizers", R.REGULARIZERS), ("hooks", R.HOOKS),
                         ("augmentations", R.AUGMENTATIONS)):
        group = getattr(config, section)
        resolved = {n: component_options(reg, n, o, f"{section}.{n}") for n, o in group.items()}
        object.__setattr__(config, section, resolved)
    for name in config.regularizers:
        needs = R.REGULARIZERS.get(name).generator
        if needs is not None and config.generator.name != needs:
            raise ValueError(f"regularizers.{name} needs generator {needs}, got "
                             f"{config.generator.name!r}; remove regularizers.{name} or use "
                             f"generator={needs}")
    t = config.train
    if config.eval.interval < 0 or config.eval.n < 2:
        raise ValueError(f"eval.interval must be >= 0 and eval.n >= 2, got {config.eval}")
    from gankit.registry import METRICS

    for name in config.eval.metrics:
        METRICS.get(name)
    if config.pack < 1 or t.batch_size % config.pack:
        raise ValueError(f"pack must be >= 1 and divide train.batch_size ({t.batch_size}), "
                         f"got {config.pack}")
    starts = [step for step, _ in t.batch_schedule]
    if any(step < 1 for step in starts) or starts != sorted(set(starts)):
        raise ValueError(f"train.batch_schedule needs steps >= 1 in increasing order, e.g. "
                         f"[[12000, 64]], got {[list(e) for e in t.batch_schedule]}")
    for step, size in t.batch_schedule:
        if size < 1 or size % config.pack:
            raise ValueError(f"train.batch_schedule: the batch size {size} from step {step} "
                             f"must be >= 1 and a multiple of pack ({config.pack})")
    if config.z_dim < 1:
        raise ValueError(f"z_dim must be at least 1, got {config.z_dim}")
    if t.unrolled_steps and t.unrolled_order == 2 and "weight_clip" in config.hooks:
        raise ValueError("train.unrolled_order=2 differentiates through the unrolled D "
                         "updates, which hooks.weight_clip's clamping would cut; use --set "
                         "train.unrolled_order=1 with weight clipping")
    if config.self_condition.clusters and \
            config.discriminator.options.get("conditioning") == "concat":
        raise ValueError("self_condition clusters the data with D's features, which under "
                         "discriminator.conditioning=concat take the labels as input; use "
                         "--set discriminator.conditioning=projection (or acgan)")


# Options and components removed from gankit after runs used them: a stored config that
# holds one at its old default loads without it; one that used it is refused for training
# (sampling only needs G, which they never changed).
REMOVED_OPTIONS = {("generator", "output_range"): None}
REMOVED_COMPONENTS = {"regularizers": ("ot_matching", "frozen_feature_matching")}


def upgrade(data: Mapping[str, Any], for_training: bool = True) -> dict:
    """A stored config (a checkpoint's or a run's) without what gankit has since removed.

    Raises:
        ValueError: ``for_training`` and the config used a removed option or component.
    """
    import copy

    data = copy.deepcopy(dict(data))
    used = []
    for (section, key), default in REMOVED_OPTIONS.items():
        options = (data.get(section) or {}).get("options") or {}
        if key in options:
            if options.pop(key) != default:
                used.append(f"{section}.{key}")
    for section, names in REMOVED_COMPONENTS.items():
        for name in names:
            if name in (data.get(section) or {}):
                data[section].pop(name)
                used.append(f"{section}.{name}")
    if used and for_training:
        raise ValueError(f"this run used {', '.join(used)}, which gankit no longer has "
                         "(docs/stacked_mnist_findings.md says why); it can be sampled and "
                         "evaluated, not trained further")
    return data


def resolve(preset: str | None = None, overrides: list[str] | None = None,
            base: Mapping[str, Any] | None = None) -> Config:
    """Load ``preset`` (or start from ``base``), apply ``--set`` overrides, validate."""
    data = dict(base) if base is not None else load_preset(preset or "dcgan")
    data = apply_overrides(data, overrides or [])
    return from_dict(data)


def dump_yaml(config: Config) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


def diff(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """List the dotted keys whose values differ between two plain config dicts."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += diff(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out
