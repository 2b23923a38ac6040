"""G-phase terms of image-to-image translation, added to G's adversarial loss.

- ``reconstruction`` (pix2pix's L1, Isola et al. 2017 eq. 3, weight 100; SRResNet's MSE,
  Ledig et al. 2017 eq. 5): weight * mean |G(source) - target|^p, p = 1 (``l1``) or 2
  (``l2``), over every pixel of the batch. Needs paired data: the G step's targets are the
  batch its fakes were made from.
- ``cycle`` (CycleGAN, Zhu et al. 2017 eq. 2, weight 10): weight * (mean |G_BA(G_AB(a)) - a|
  + mean |G_AB(G_BA(b)) - b|), each mean over one domain's pixels. Needs two unpaired
  domains (``unpaired:`` data), whose G has ``reconstruct``.
- ``identity`` (CycleGAN sec. 5.2, weight 0.5 * the cycle's: 5): weight * the same sum for
  mean |G_AB(b) - b| and mean |G_BA(a) - a|: a generator fed an image of its output domain
  should leave it unchanged (keeps colours). Needs sources and targets of one shape.

Each runs in every G step (``interval`` 1) unless given a lazy interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.components import RegularizerBase, TermOptions
from gankit.registry import REGULARIZERS
from gankit.utils.checks import at_least, one_of


def _per_domain_l1(a: torch.Tensor, b: torch.Tensor, domains: int) -> torch.Tensor:
    """Sum over the stacked domains of each domain's mean absolute difference."""
    return sum(chunk.mean() for chunk in (a - b).abs().chunk(domains, dim=1))


def _needs(ctx, what: str, name: str, data: str) -> torch.Tensor:
    value = getattr(ctx, what)
    if value is None:
        raise ValueError(f"regularizers.{name} needs {data}; this run's data has none")
    return value


@REGULARIZERS.register("reconstruction", "L1/L2 between G's output and the paired target "
                                         "(pix2pix, SRResNet)")
class Reconstruction(RegularizerBase):
    """Pixel loss against the batch's targets."""

    @dataclass(frozen=True)
    class Options(TermOptions):
        weight: float = 100.0  # pix2pix's lambda
        norm: str = "l1"  # l1 (pix2pix) or l2 (SRResNet's MSE)

        def __post_init__(self) -> None:
            super().__post_init__()
            one_of("norm", self.norm, ("l1", "l2"))

    phases = ("G",)

    def __call__(self, ctx) -> torch.Tensor:
        target = _needs(ctx, "real", "reconstruction", "paired targets (paired:, "
                                                       "edges2mnist, data.lr_scale)")
        diff = ctx.fake - target
        value = diff.abs().mean() if self.options.norm == "l1" else diff.pow(2).mean()
        return self.options.weight * self.options.interval * value


@REGULARIZERS.register("cycle", "CycleGAN cycle consistency: G_BA(G_AB(a)) = a and back "
                                "(Zhu et al. 2017)")
class Cycle(RegularizerBase):
    """L1 between each source and its round trip through both generators."""

    needs_source = True

    @dataclass(frozen=True)
    class Options(TermOptions):
        weight: float = 10.0  # CycleGAN's lambda

    phases = ("G",)

    def __call__(self, ctx) -> torch.Tensor:
        source = _needs(ctx, "source", "cycle", "two unpaired domains (unpaired:A,B)")
        if not hasattr(ctx.G, "reconstruct"):
            raise ValueError("regularizers.cycle needs two generators, one per domain: train "
                             "on unpaired:A,B data")
        back = ctx.G.reconstruct(ctx.fake)
        o = self.options
        return o.weight * o.interval * _per_domain_l1(back, source, 2)


@REGULARIZERS.register("identity", "CycleGAN identity: a generator leaves images of its "
                                   "output domain unchanged (Zhu et al. 2017)")
class Identity(RegularizerBase):
    """L1 between G(target) and the target, per domain."""

    needs_source = True

    @dataclass(frozen=True)
    class Options(TermOptions):
        weight: float = 5.0  # CycleGAN: 0.5 * the cycle weight

    phases = ("G",)

    def __call__(self, ctx) -> torch.Tensor:
        target = _needs(ctx, "real", "identity", "targets (translation data)")
        source = _needs(ctx, "source", "identity", "sources (translation data)")
        if source.shape != target.shape:
            raise ValueError(f"regularizers.identity feeds targets to G, which takes sources "
                             f"of shape {tuple(source.shape[1:])}, not "
                             f"{tuple(target.shape[1:])}; remove regularizers.identity")
        domains = 2 if hasattr(ctx.G, "reconstruct") else 1
        o = self.options
        return o.weight * o.interval * _per_domain_l1(ctx.G(target), target, domains)


@REGULARIZERS.register("perceptual", "feature-space distance to the target: VGG19 when its "
                                     "weights are found, else D's features (Johnson 2016)")
class Perceptual(RegularizerBase):
    """weight * mean (phi(G(source)) - phi(target))^2 over a feature space phi: SRGAN's VGG
    content loss (Ledig et al. 2017, eq. 5, the 1/12.75 rescaling folded into the weight),
    after Johnson et al. 2016.

    ``features``: ``auto`` (VGG19 conv5_4 when its weights are found,
    `gankit.metrics.features.vgg`; else D's own penultimate features, a discriminator
    feature loss, with a note saying so), ``d``, or a registered extractor spec (e.g.
    ``lenet_mnist5k``, ``vgg19:PATH``). The target's features carry no gradient.
    """

    @dataclass(frozen=True)
    class Options(TermOptions):
        features: str = "auto"  # auto, d, or an extractor spec (vgg19, lenet_mnist5k, ...)

        def __post_init__(self) -> None:
            super().__post_init__()
            from gankit.registry import EXTRACTORS

            if self.features not in ("auto", "d") and \
                    self.features.partition(":")[0] not in EXTRACTORS.names():
                raise ValueError(f"features must be auto, d or an extractor "
                                 f"({', '.join(EXTRACTORS.names())}), got {self.features!r}")

            if self.features not in ("auto", "d") and \
                    self.features.partition(":")[0] not in EXTRACTORS.names():
                raise ValueError(f"features must be auto, d or an extractor "
                                 f"({', '.join(EXTRACTORS.names())}), got {self.features!r}")
            at_least("interval", self.interval, 1)

    phases = ("G",)

    def __init__(self, options=None, /, **values) -> None:
        super().__init__(options, **values)
        self._extractor = None
        self.space: str | None = None  # what phi turned out to be: "vgg19", "d", a spec

    def _resolve(self, device) -> None:
        from gankit.metrics.features import build_extractor
        from gankit.utils.console import note

        spec = self.options.features
        if spec == "auto":
            try:
                self._extractor = build_extractor("vgg19", device=device)
                spec = "vgg19"
            except FileNotFoundError:
                spec = "d"
                note("regularizers.perceptual: the VGG19 weights are not here; the "
                     "perceptual loss uses D's own features")
        elif spec != "d":
            self._extractor = build_extractor(spec, device=device)
            self._extractor.requires_grad_(False)
        self.space = spec

    def __call__(self, ctx) -> torch.Tensor:
        target = _needs(ctx, "real", "perceptual", "targets (translation data)")
        if self.space is None:
            self._resolve(target.device)
        if self.space == "d":
            cond = ctx.source if getattr(ctx.D, "takes_source", False) else None
            fake_f = ctx.fake_out.get("features")
            if fake_f is None:
                fake_f = ctx.D.score(ctx.fake, cond)["features"]
            with torch.no_grad():
                real_f = ctx.D.score(target, cond)["features"]
        else:
            fake_f = self._extractor.feature_maps(ctx.fake)
            with torch.no_grad():
                real_f = self._extractor.feature_maps(target)
        o = self.options
        return o.weight * o.interval * (fake_f - real_f).pow(2).mean()


@REGULARIZERS.register("semantic", "semantic consistency: a source classifier's prediction "
                                   "survives translation (CyCADA; PixelDA's task network)")
class Semantic(RegularizerBase):
    """weight * CE(T(G(source)), argmax f(source)) with f a frozen classifier of the source
    domain (``classifier``, an extractor with a class head; default ``lenet_mnist5k``).

    - ``train_lr`` 0: T is f itself, frozen (Hoffman et al. 2018, CyCADA, eq. 4).
    - ``train_lr`` > 0: T starts as a copy of f and is trained beside G, in every G step
      before G's term, by Adam at that rate on the sources and their (detached)
      translations, both with f's labels (Bousmalis et al. 2017, PixelDA, eq. 3's task loss;
      labels from f instead of the source's own, so unlabelled sources work). A frozen f is
      fooled by translations that move many digits to one adversarial template; a T that
      keeps learning the translations is not. T and its optimiser are saved in checkpoints;
      T runs in eval mode (no dropout), so resume is exact. One process only: under DDP each
      rank would train its own T.
    """

    needs_source = True

    @dataclass(frozen=True)
    class Options(TermOptions):
        classifier: str = "lenet_mnist5k"  # an extractor with a class head
        train_lr: float = 0.0  # > 0: train a copy beside G at this Adam rate (PixelDA)

        def __post_init__(self) -> None:
            super().__post_init__()
            from gankit.registry import EXTRACTORS

            if self.classifier.partition(":")[0] not in EXTRACTORS.names():
                raise ValueError(f"classifier must be an extractor with a class head "
                                 f"({', '.join(EXTRACTORS.names())}), got {self.classifier!r}")
            at_least("train_lr", self.train_lr, 0, " (0 = a frozen classifier)")

    phases = ("G",)

    def __init__(self, options=None, /, **values) -> None:
        super().__init__(options, **values)
        self._frozen = None  # f: labels the sources
        self._task = None  # T: scores the translations (f itself when frozen)
        self._optimizer = None
        self._pending: dict | None = None  # a checkpoint's state, applied at first use

    def _build(self, device) -> None:
        import copy

        from gankit.metrics.features import build_extractor

        self._frozen = build_extractor(self.options.classifier, device=device)
        self._frozen.requires_grad_(False)
        self._task = self._frozen
        if self.options.train_lr > 0:
            self._task = copy.deepcopy(self._frozen).eval()
            self._task.requires_grad_(True)
            self._optimizer = torch.optim.Adam(self._task.parameters(),
                                               lr=self.options.train_lr)
            if self._pending is not None:
                self._task.load_state_dict(self._pending["classifier"])
                self._optimizer.load_state_dict(self._pending["optimizer"])
        self._pending = None

    def __call__(self, ctx) -> torch.Tensor:
        F = torch.nn.functional
        source = _needs(ctx, "source", "semantic", "sources (translation data)")
        if self._frozen is None:
            self._build(source.device)
        with torch.no_grad():
            labels = self._frozen.logits(source).argmax(1)
        if self._optimizer is not None:
            self._optimizer.zero_grad(set_to_none=True)
            task = self._task.logits
            loss = F.cross_entropy(task(source), labels) + \
                F.cross_entropy(task(ctx.fake.detach()), labels)
            (loss / 2).backward()
            self._optimizer.step()
            self._optimizer.zero_grad(set_to_none=True)
        value = F.cross_entropy(self._task.logits(ctx.fake), labels)
        o = self.options
        return o.weight * o.interval * value

    def state_dict(self) -> dict:
        if self.options.train_lr == 0:
            return {}
        if self._optimizer is None:  # not used yet: what was loaded, if anything
            return dict(self._pending or {})
        return {"classifier": self._task.state_dict(),
                "optimizer": self._optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        if self._optimizer is None:  # a copy: the caller's tensors may change before first use
            import copy

            self._pending = copy.deepcopy(state)
        else:
            self._task.load_state_dict(state["classifier"])
            self._optimizer.load_state_dict(state["optimizer"])
