"""Class conditioning blocks shared by the generator and discriminator families.

- label codes: a one-hot vector or a learned embedding of the class c, concatenated to z
  (G) or to D's input (cGAN, Mirza and Osindero 2014); for images D gets them as constant
  channel maps;
- `ConditionalBatchNorm`: BatchNorm without affine parameters followed by a per-class gain
  and bias looked up in embeddings (de Vries et al. 2017; Miyato and Koyama 2018, sec. 5);
- projection: ``logits += <embed(c), phi(x)>`` on D's features phi(x) (Miyato and Koyama
  2018, eq. 3);
- an auxiliary classifier head: class logits [N, K] on D's features (ACGAN, Odena et al.
  2017); the adversarial logits are unchanged and the class loss lives in the
  ``auxiliary_classifier`` regulariser.

A model chooses its mode once, in its constructor, through `GeneratorConditioning` or
`DiscriminatorConditioning`; its forward pass then calls them without asking which mode is on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

G_MODES = ("none", "concat", "cbn")
D_MODES = ("none", "concat", "projection", "acgan")
LABELLED_DATA = "mnist5k, digits, a folder with class subfolders, or npz with 'y'"


def check_mode(mode: str, modes: tuple[str, ...], who: str, num_classes: int) -> bool:
    """Validate ``{who}.conditioning``; True when the network is conditional."""
    if mode not in modes:
        raise ValueError(f"{who}.conditioning must be one of {', '.join(modes)}, got {mode!r}")
    if mode != "none" and num_classes < 2:
        raise ValueError(f"{who}.conditioning={mode} needs labelled data with at least 2 "
                         f"classes ({LABELLED_DATA}); this data has num_classes={num_classes}")
    return mode != "none"


def cycled_labels(n: int, num_classes: int, device: torch.device) -> torch.Tensor:
    """[n] labels 0, 1, ..., K-1, 0, 1, ...: balanced and free of random draws."""
    return torch.arange(n, device=device) % num_classes


def stratified_labels(prior: torch.Tensor, n: int) -> torch.Tensor:
    """[n] labels in proportion to ``prior`` [K] without random draws: label i is the class
    whose cumulative share contains (i + 0.5) / n, so each class gets round(n * p) samples
    give or take one."""
    cdf = torch.cumsum(prior.double() / prior.double().sum(), 0)
    u = (torch.arange(n, device=prior.device, dtype=torch.float64) + 0.5) / n
    return torch.searchsorted(cdf, u).clamp(max=len(prior) - 1)


class LabelCode(nn.Module):
    """c [N] -> [N, dim]: one-hot (``embed_dim`` 0, dim = K) or a learned embedding."""

    def __init__(self, num_classes: int, embed_dim: int = 0) -> None:
        super().__init__()
        if embed_dim < 0:
            raise ValueError(f"embed_dim must be >= 0 (0 = one-hot), got {embed_dim}")
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, embed_dim) if embed_dim > 0 else None
        self.dim = embed_dim or num_classes

    def forward(self, c: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        if self.embed is None:
            return F.one_hot(c, self.num_classes).to(dtype)
        return self.embed(c).to(dtype)


class ConditionalBatchNorm(nn.Module):
    """BatchNorm whose gain and bias are rows of per-class embeddings: [N, F, ...] -> same.

    Gains start at 1 and biases at 0, so at initialisation it is plain BatchNorm.
    """

    takes_labels = True  # `LabelSequential` passes c to this layer

    def __init__(self, num_features: int, num_classes: int, dims: int = 2) -> None:
        super().__init__()
        if dims not in (1, 2):
            raise ValueError(f"ConditionalBatchNorm supports 1-d or 2-d inputs, got dims={dims}")
        self.bn = (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(num_features, affine=False)
        self.gamma = nn.Embedding(num_classes, num_features)  # per-class gain [K, F]
        self.beta = nn.Embedding(num_classes, num_features)  # per-class bias [K, F]
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shape = (x.shape[0], x.shape[1]) + (1,) * (x.dim() - 2)
        return self.gamma(c).view(shape) * self.bn(x) + self.beta(c).view(shape)


class LabelSequential(nn.Sequential):
    """``nn.Sequential`` whose label-taking layers (``takes_labels``) also receive c."""

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self:
            x = layer(x, c) if getattr(layer, "takes_labels", False) else layer(x)
        return x


class GeneratorConditioning(nn.Module):
    """The label pathway of a generator: ``concat`` appends a label code to z, ``cbn`` makes
    `norm` build conditional BatchNorm layers; ``none`` changes nothing (no parameters)."""

    def __init__(self, mode: str, num_classes: int, embed_dim: int = 0) -> None:
        super().__init__()
        self.conditional = check_mode(mode, G_MODES, "generator", num_classes)
        self.mode, self.num_classes = mode, num_classes
        self.code = LabelCode(num_classes, embed_dim) if mode == "concat" else None
        self.z_extra = self.code.dim if self.code is not None else 0  # added to z's width
        self.register_buffer("label_prior", None)  # see `use_label_prior`

    def use_label_prior(self) -> None:
        """Give G a class-frequency buffer ``label_prior`` [K] (saved with its weights):
        labels it makes up when called without ``c`` then follow these frequencies
        instead of cycling through the classes. Self-conditioning sets the frequencies
        to its cluster sizes."""
        self.register_buffer("label_prior", torch.ones(self.num_classes))

    def draw_labels(self, n: int, generator: torch.Generator,
                    device: torch.device) -> torch.Tensor:
        """[n] random labels for samples of this G: uniform over the classes, or in
        proportion to ``label_prior`` when G has one."""
        if self.label_prior is not None:
            return torch.multinomial(self.label_prior.to(device), n, replacement=True,
                                     generator=generator)
        return torch.randint(self.num_classes, (n,), generator=generator, device=device)

    def norm(self, num_features: int, dims: int) -> nn.Module:
        """A BatchNorm layer over ``num_features`` (1-d or 2-d), per class under ``cbn``."""
        if self.mode == "cbn":
            return ConditionalBatchNorm(num_features, self.num_classes, dims)
        return (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(num_features)

    def labels(self, c: torch.Tensor | None, z: torch.Tensor) -> torch.Tensor | None:
        """c checked against z, or cycled classes when a conditional G is called without."""
        if not self.conditional:
            return None
        if c is None:
            if self.label_prior is not None:
                return stratified_labels(self.label_prior, z.shape[0])
            return cycled_labels(z.shape[0], self.num_classes, z.device)
        if c.shape != (z.shape[0],):
            raise ValueError(f"class labels c must have shape [{z.shape[0]}] (one per z), "
                             f"got {tuple(c.shape)}")
        return c

    def latent(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """[N, z_dim] -> [N, z_dim + z_extra]."""
        if self.code is None:
            return z
        return torch.cat([z, self.code(c, z.dtype)], dim=1)


class DiscriminatorConditioning(nn.Module):
    """The label pathway of a discriminator.

    Built in two steps because the input width depends on it and the output layers depend
    on the feature width: ``input_extra`` (channels or features added to the input by
    ``concat``) is known at once, `build_output(feature_dim)` adds the projection embedding
    or the class head. `attach` and `finish` wrap D's score computation.
    """

    def __init__(self, mode: str, num_classes: int, embed_dim: int = 0,
                 channel_maps: bool = False) -> None:
        super().__init__()
        self.conditional = check_mode(mode, D_MODES, "discriminator", num_classes)
        self.mode, self.num_classes = mode, num_classes
        self.channel_maps = channel_maps  # concat to images as constant maps, else flattened
        self.code = LabelCode(num_classes, embed_dim) if mode == "concat" else None
        self.input_extra = self.code.dim if self.code is not None else 0
        self.embed: nn.Embedding | None = None
        self.classifier: nn.Linear | None = None

    def build_output(self, feature_dim: int) -> None:
        if self.mode == "projection":
            self.embed = nn.Embedding(self.num_classes, feature_dim)  # psi_y of the paper
            nn.init.xavier_uniform_(self.embed.weight)  # as the authors' chainer code
        elif self.mode == "acgan":
            self.classifier = nn.Linear(feature_dim, self.num_classes)

    def _need(self, c: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        if c is None:
            raise ValueError(f"discriminator.conditioning={self.mode} needs class labels: "
                             "call D.score(x, c) with c [N]")
        if c.shape != (x.shape[0],):
            raise ValueError(f"class labels c must have shape [{x.shape[0]}], "
                             f"got {tuple(c.shape)}")
        return c

    def attach(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """concat: images [N, C, H, W] -> [N, C + E, H, W] (``channel_maps``), otherwise
        [N, ...] -> [N, prod(...) + E]."""
        if self.code is None:
            return x
        code = self.code(self._need(c, x), x.dtype)  # [N, E]
        if self.channel_maps:
            code = code[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
            return torch.cat([x, code], dim=1)
        return torch.cat([x.flatten(1), code], dim=1)

    def finish(self, out: dict, c: torch.Tensor | None) -> dict:
        """projection: logits += <embed(c), features>; acgan: adds class_logits [N, K]."""
        features = out["features"]
        if self.embed is not None:
            proj = (self.embed(self._need(c, features)) * features).sum(1)
            out["logits"] = out["logits"] + proj
        if self.classifier is not None:
            out["class_logits"] = self.classifier(features)
        return out
