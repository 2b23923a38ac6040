"""Everything a run owns: networks, optimisers, hooks, counters and RNGs.

``build_state`` constructs it from a config and the data's sample shape; ``state_dict``
and ``load_state_dict`` capture and restore all of it, so resume is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from gankit.config import Config
from gankit.models._base import PackedDiscriminator
from gankit.registry import (
    AUGMENTATIONS,
    DISCRIMINATORS,
    GENERATORS,
    HOOKS,
    LOSSES,
    OPTIMIZERS,
    REGULARIZERS,
)
from gankit.utils.seeding import rng_state, seed_all, set_rng_state

FORMAT_VERSION = 1


@dataclass(frozen=True)
class DataInfo:
    """What the networks need to know about the data, saved with every checkpoint."""

    sample_shape: tuple[int, ...]  # one sample, e.g. (1, 28, 28) or (2,)
    kind: str  # "image" or "points"
    num_classes: int  # 0 when unlabelled
    source_shape: tuple[int, ...] | None = None  # translation data: one source image
    domains: int = 1  # 2: two unpaired domains stacked on the channel axis (unpaired:)
    table: dict | None = None  # tables: the fitted encoding (gankit.tabular.transform)

    def to_dict(self) -> dict:
        d = {"sample_shape": list(self.sample_shape), "kind": self.kind,
             "num_classes": self.num_classes}
        if self.source_shape is not None:
            d.update(source_shape=list(self.source_shape), domains=self.domains)
        if self.table is not None:
            d["table"] = self.table
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DataInfo:
        source = d.get("source_shape")
        return cls(tuple(d["sample_shape"]), d["kind"], int(d["num_classes"]),
                   tuple(source) if source is not None else None, int(d.get("domains", 1)),
                   d.get("table"))


@dataclass
class TrainState:
    """The mutable state of a run."""

    config: Config
    info: DataInfo
    device: torch.device
    G: nn.Module
    D: nn.Module
    g_opt: torch.optim.Optimizer
    d_opt: torch.optim.Optimizer
    loss: Any
    regularizers: dict[str, Any]
    hooks: dict[str, Any]
    generator: torch.Generator  # every random draw of the loop comes from here
    z_fixed: torch.Tensor  # [num_samples, z_dim] latents of the sample grids
    augmentations: dict[str, Any] = field(default_factory=dict)  # applied to D's inputs
    c_fixed: torch.Tensor | None = None  # [num_samples] labels of the grids (conditional)
    G_ema: nn.Module | None = None
    cluster_labels: torch.Tensor | None = None  # [N] self-conditioning's labels of the data
    cluster_step: int = 0  # the step at which cluster_labels were computed
    step: int = 0  # generator steps done
    extra: dict = field(default_factory=dict)

    @property
    def conditional(self) -> bool:
        return bool(self.G.conditional or self.D.conditional)

    def sample_net(self, ema: bool = True) -> nn.Module:
        """The generator to sample: G_ema (its statistics brought up to date by the hooks,
        e.g. the EMA hook's standing statistics) when ``ema`` and the run keeps one, else G."""
        if ema and self.G_ema is not None:
            for hook in self.hooks.values():
                hook.before_sampling(self)
            return self.G_ema
        return self.G

    def state_dict(self) -> dict:
        self.sample_net()  # G_ema is saved as it samples
        return {
            "format_version": FORMAT_VERSION,
            "config": self.config.to_dict(),
            "data_info": self.info.to_dict(),
            "step": self.step,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict() if self.G_ema is not None else None,
            "g_opt": self.g_opt.state_dict(),
            "d_opt": self.d_opt.state_dict(),
            "hooks": {name: h.state_dict() for name, h in self.hooks.items()},
            "regularizers": {n: r.state_dict() for n, r in self.regularizers.items()},
            "augmentations": {n: a.state_dict() for n, a in self.augmentations.items()},
            "rng": rng_state(self.generator),
            "z_fixed": self.z_fixed.cpu(),
            "self_condition": ({"labels": self.cluster_labels.cpu(), "step": self.cluster_step}
                               if self.cluster_labels is not None else None),
            "extra": dict(self.extra),
        }

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        if self.G_ema is not None:
            # a run resumed with EMA newly switched on starts its average from the loaded G,
            # not from the freshly initialised copy the EMA hook made before loading
            self.G_ema.load_state_dict(state["G_ema"] if state.get("G_ema") is not None
                                       else state["G"])
        self.g_opt.load_state_dict(state["g_opt"])
        self.d_opt.load_state_dict(state["d_opt"])
        for name, hook in self.hooks.items():
            hook.load_state_dict(state["hooks"].get(name, {}))
        for name, reg in self.regularizers.items():  # absent in older checkpoints
            reg.load_state_dict(state.get("regularizers", {}).get(name, {}))
        for name, aug in self.augmentations.items():
            aug.load_state_dict(state.get("augmentations", {}).get(name, {}))
        set_rng_state(self.generator, state["rng"])
        self.z_fixed = state["z_fixed"].to(self.device)
        self.step = int(state["step"])
        clusters = state.get("self_condition")
        if clusters is not None:
            self.cluster_labels = clusters["labels"].to(self.device)
            self.cluster_step = int(clusters["step"])
        self.extra = dict(state.get("extra", {}))
        # a checkpoint from before schedules were recorded followed its config's total
        self.extra.setdefault("lr_schedule", {"total": int(state["config"]["train"]["steps"]),
                                              "anchor": None})


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    return torch.device(name)


def build_networks(config: Config, info: DataInfo) -> tuple[nn.Module, nn.Module]:
    """Build G and D for ``info``'s sample shape (seeded by the caller); a translator G for
    translation data (its source shape), one network per domain for unpaired data."""
    g_cls = GENERATORS.get(config.generator.name)
    takes = getattr(g_cls, "takes", "latent")
    translator = takes == "image"
    check_task(config, info, translator)
    if (takes == "table") != (info.table is not None):
        raise ValueError(f"generator {config.generator.name} and data.name={config.data.name} "
                         f"do not fit: a table (csv:PATH, breast_cancer, wine, grunfeld) "
                         f"trains the ctgan generator, and ctgan trains on tables")
    if takes == "table":
        G = g_cls(out_shape=info.sample_shape, z_dim=config.z_dim, table=info.table,
                  **config.generator.options)
    elif translator:
        g_shapes = _per_domain(info.sample_shape, info.domains)
        G = _maybe_pair(lambda: g_cls(out_shape=g_shapes, in_shape=_per_domain(
            info.source_shape, info.domains), **config.generator.options), info, True)
    else:
        G = g_cls(z_dim=config.z_dim, out_shape=info.sample_shape,
                  bounded=info.kind == "image", num_classes=info.num_classes,
                  **config.generator.options)
    in_shape = info.sample_shape
    if config.pack > 1:
        in_shape = PackedDiscriminator.packed_shape(in_shape, config.pack)
    d_cls = DISCRIMINATORS.get(config.discriminator.name)
    if info.source_shape is not None:  # translation: D may score (source, image) pairs
        extra = {"source_shape": _per_domain(info.source_shape, info.domains)} \
            if hasattr(d_cls, "takes_source") else {}
        D = _maybe_pair(lambda: d_cls(
            in_shape=_per_domain(in_shape, info.domains), num_classes=info.num_classes,
            **extra, **config.discriminator.options), info, False)
    else:
        D = d_cls(in_shape=in_shape, num_classes=info.num_classes,
                  **config.discriminator.options)
    if config.pack > 1:
        D = PackedDiscriminator(D, config.pack)
    if (G.conditional or D.conditional) and info.num_classes < 2:
        raise ValueError("a conditional generator or discriminator needs labelled data "
                         "(mnist5k, digits, a folder with class subfolders, npz with 'y')")
    if config.self_condition.clusters:
        if not (G.conditional and D.conditional):
            raise ValueError(
                f"self_condition.clusters={config.self_condition.clusters} trains on cluster "
                f"labels, so G and D must both be conditional; got generator.conditioning="
                f"{G.cond.mode}, discriminator.conditioning={D.cond.mode}: add e.g. --set "
                f"generator.conditioning=concat --set discriminator.conditioning=projection")
        G.cond.use_label_prior()
    return G, D


def check_task(config: Config, info: DataInfo, translator: bool) -> None:
    """A translator G needs translation data and a latent G needs data without sources."""
    name = config.generator.name
    if translator and info.source_shape is None:
        raise ValueError(f"generator {name} translates images: it needs data with sources "
                         f"(paired:A,B, unpaired:A,B, edges2mnist, or data.lr_scale=S for "
                         f"super-resolution), got data.name={config.data.name}")
    if not translator and info.source_shape is not None:
        raise ValueError(f"data.name={config.data.name} pairs sources with targets, but "
                         f"generator {name} maps latents; choose a translator (unet, "
                         f"resnet_translator, srresnet, rrdb)")
    if info.domains == 2 and config.pack > 1:
        raise ValueError("pack > 1 with unpaired two-domain data is not supported; set pack=1")


def _per_domain(shape: tuple, domains: int) -> tuple:
    """One domain's shape from the stacked channels of ``domains`` domains."""
    return (shape[0] // domains, *shape[1:])


def _maybe_pair(make, info: DataInfo, generator: bool) -> nn.Module:
    """``make()``, or one network per domain for two unpaired domains (CycleGAN)."""
    if info.domains == 1:
        return make()
    from gankit.models.translators import DiscriminatorPair, TranslatorPair

    split = info.sample_shape[0] // 2
    return TranslatorPair(make, split) if generator else DiscriminatorPair(make, split)


def build_state(config: Config, info: DataInfo, device: torch.device) -> TrainState:
    """A fresh, seeded state: same config and seed give identical weights."""
    seed_all(config.train.seed)
    G, D = build_networks(config, info)
    G, D = G.to(device), D.to(device)
    g_opt = OPTIMIZERS.get(config.g_optimizer.name)(**config.g_optimizer.options).build(
        G.parameters())
    d_opt = OPTIMIZERS.get(config.d_optimizer.name)(**config.d_optimizer.options).build(
        D.parameters())
    generator = torch.Generator(device=device)
    generator.manual_seed(config.train.seed)
    z_fixed = torch.randn(config.train.num_samples, config.z_dim, generator=generator,
                          device=device)
    state = TrainState(
        config=config, info=info, device=device, G=G, D=D, g_opt=g_opt, d_opt=d_opt,
        loss=LOSSES.get(config.loss.name)(**config.loss.options),
        regularizers={n: REGULARIZERS.get(n)(**o) for n, o in config.regularizers.items()},
        hooks={n: HOOKS.get(n)(**o) for n, o in config.hooks.items()},
        augmentations={n: AUGMENTATIONS.get(n)(**o) for n, o in config.augmentations.items()},
        generator=generator, z_fixed=z_fixed,
    )
    if state.conditional:  # grid rows cycle through the classes: no random draw
        state.c_fixed = torch.arange(config.train.num_samples, device=device) % info.num_classes
    for hook in state.hooks.values():
        hook.setup(state)
    return state
