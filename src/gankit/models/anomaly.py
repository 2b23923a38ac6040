"""GANomaly's generator (Akcay, Atapour-Abarghouei and Breckon 2018, fig. 2), written from the
paper: an encoder G_E maps an image x to a latent z, a decoder G_D maps z to the
reconstruction x_hat, and a second encoder E maps x_hat to z_hat. Trained on normal data
only, G reconstructs normal images and keeps z_hat close to z; an anomaly's latents drift
apart, which is the anomaly score ||G_E(x) - E(G(x))||_1 (eq. 8; `anomaly_score`).

Encoders: DCGAN's discriminator body (strided 4x4 convs, BatchNorm, LeakyReLU 0.2) and a
linear layer to ``latent_dim``; decoder: DCGAN's generator. On vectors (rows of a table's
features) the same roles are fully connected: encoders D -> 4w -> 2w -> latent, decoder
`mlp` latent -> 2w -> 4w -> D (BatchNorm, ReLU, linear output). G is a translator whose
sources are the images themselves (``data.autoencode=true``): the loop's reconstruction
term is GANomaly's contextual loss, ``perceptual`` with D's features its adversarial
(feature-matching) loss and ``latent_consistency`` its encoder loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from gankit.models._base import Generator, UnconditionalOptions
from gankit.models.dcgan import DCGANDiscriminator, DCGANGenerator, _supported
from gankit.models.translators import Translator
from gankit.registry import GENERATORS
from gankit.utils.checks import at_least


def conv_encoder(shape: tuple, width: int, latent_dim: int) -> nn.Sequential:
    """DCGAN's D body on ``shape`` images, then a linear layer to ``latent_dim``; for
    vectors [D] (tables) a fully connected encoder D -> 4w -> 2w -> latent (LeakyReLU 0.2)."""
    if len(shape) == 1:
        return nn.Sequential(nn.Linear(shape[0], 4 * width), nn.LeakyReLU(0.2),
                             nn.Linear(4 * width, 2 * width), nn.LeakyReLU(0.2),
                             nn.Linear(2 * width, latent_dim))
    body = DCGANDiscriminator(in_shape=shape, width=width).body
    with torch.no_grad():
        features = body(torch.zeros(2, *shape)).shape[1]
    return nn.Sequential(body, nn.Linear(features, latent_dim))


@GENERATORS.register("ganomaly", "GANomaly encoder-decoder-encoder G for anomaly detection "
                                 "(Akcay et al. 2018)")
class GANomalyGenerator(Translator):
    """(images [N, C, R, R]) -> reconstructions [N, C, R, R] in [-1, 1]."""

    test_options: ClassVar[dict] = {"width": 4, "latent_dim": 8}

    @dataclass(frozen=True)
    class Options(UnconditionalOptions):
        width: int = 64  # channels of the encoders' first and the decoder's last stage
        latent_dim: int = 100  # the paper's nz 100

        def __post_init__(self) -> None:
            super().__post_init__()
            at_least("width", self.width, 1)
            at_least("latent_dim", self.latent_dim, 1)

    @classmethod
    def supports(cls, shape: tuple) -> bool:
        return len(shape) == 1 or _supported(tuple(shape))

    def __init__(self, out_shape: tuple, z_dim: int = 0, bounded: bool = True,
                 num_classes: int = 0, in_shape: tuple | None = None,
                 options: Options | None = None, **values) -> None:
        super().__init__(options, values)
        o = self.options
        shape = tuple(out_shape)
        if len(shape) == 1:  # vectors: fully connected encoders and decoder
            from gankit.models.mlp import MLPGenerator

            self.encoder = conv_encoder(shape, o.width, o.latent_dim)
            self.decoder = MLPGenerator(z_dim=o.latent_dim, out_shape=shape, bounded=False,
                                        widths=(2 * o.width, 4 * o.width))
            self.reencoder = conv_encoder(shape, o.width, o.latent_dim)
            return
        if in_shape is not None and tuple(in_shape) != shape:
            raise ValueError(f"ganomaly reconstructs its input: sources {tuple(in_shape)} and "
                             f"images {shape} must match (data.autoencode=true)")
        if not _supported(shape):
            raise ValueError(f"ganomaly needs square images of side 4*2^k or 7*2^k (8, 14, "
                             f"16, 28, 32, 64, ...), got {shape}; set data.resolution")
        self.encoder = conv_encoder(shape, o.width, o.latent_dim)
        self.decoder = DCGANGenerator(z_dim=o.latent_dim, out_shape=shape, width=o.width)
        self.reencoder = conv_encoder(shape, o.width, o.latent_dim)

    def idle_parameters(self) -> set[str]:
        """The second encoder: the latent loss and the score use it, the forward pass not."""
        return {f"reencoder.{n}" for n, _ in self.reencoder.named_parameters()}

    def forward(self, source: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(self.encoder(source))

    def latents(self, x: torch.Tensor, x_hat: torch.Tensor) -> tuple[torch.Tensor,
                                                                    torch.Tensor]:
        """(G_E(x), E(x_hat)) [N, latent_dim] each."""
        return self.encoder(x), self.reencoder(x_hat)

    @torch.no_grad()
    def anomaly_score(self, x: torch.Tensor, D=None) -> torch.Tensor:
        """||G_E(x) - E(G(x))||_1 / latent_dim per image [N] (higher: more anomalous)."""
        z, z_hat = self.latents(x, self(x))
        return (z - z_hat).abs().mean(1)


def _frozen(module: nn.Module) -> nn.Module:
    module.eval()
    module.requires_grad_(False)
    return module


@GENERATORS.register("fanogan_encoder", "f-AnoGAN's izi_f encoder before a trained, frozen "
                                        "WGAN-GP generator (Schlegl et al. 2019)")
class FAnoGANEncoder(Translator):
    """(images [N, C, R, R]) -> G(E(x)) [N, C, R, R]: E is trained, G and its critic come
    frozen from the WGAN-GP run ``gan_run`` (f-AnoGAN's first stage).

    f-AnoGAN (Schlegl et al. 2019, sec. 2.2.3): E maps an image to G's latent space, trained
    with G and D fixed on ||x - G(E(x))||^2 / n + kappa ||f(x) - f(G(E(x)))||^2 / n_f, f = D's
    features (``izi_f``); the same quantity is the anomaly score. E: DCGAN's D body and a
    linear layer to G's z. G and the critic stay in eval mode and get no gradient step.
    """

    test_options: ClassVar[dict] = {"width": 4}

    @dataclass(frozen=True)
    class Options(UnconditionalOptions):
        gan_run: str = ""  # the first stage's run; "" = untrained dcgan G and D (tests only)
        width: int = 64  # channels of E's first stage
        kappa: float = 1.0  # weight of the feature residual (the paper's 1)

        def __post_init__(self) -> None:
            super().__post_init__()
            at_least("width", self.width, 1)
            at_least("kappa", self.kappa, 0)

    @classmethod
    def supports(cls, shape: tuple) -> bool:
        return _supported(tuple(shape))

    def __init__(self, out_shape: tuple, z_dim: int = 0, bounded: bool = True,
                 num_classes: int = 0, in_shape: tuple | None = None,
                 options: Options | None = None, **values) -> None:
        super().__init__(options, values)
        o = self.options
        shape = tuple(out_shape)
        if not _supported(shape):
            raise ValueError(f"fanogan_encoder needs square images of side 4*2^k or 7*2^k, "
                             f"got {shape}; set data.resolution")
        generator, critic, latent = self._first_stage(o.gan_run, shape)
        self.generator, self.critic = _frozen(generator), _frozen(critic)
        self.latent_dim = latent
        self.encoder = conv_encoder(shape, o.width, latent)

    @staticmethod
    def _first_stage(run: str, shape: tuple):
        """(G, D, z_dim) of the WGAN-GP run ``run`` (its newest checkpoint), or untrained
        dcgan networks without a run."""
        if not run:
            return (DCGANGenerator(z_dim=16, out_shape=shape, width=4),
                    DCGANDiscriminator(in_shape=shape, width=4, batch_norm=False), 16)
        from pathlib import Path

        from gankit import config as C
        from gankit.training.checkpoint import list_checkpoints, load_checkpoint
        from gankit.training.state import DataInfo, build_networks

        paths = list_checkpoints(run) if Path(run).is_dir() else []
        if not paths:
            raise ValueError(f"generator.gan_run={run}: no checkpoint there; train the "
                             f"first stage (a wgan_gp run on the normal data) first")
        ckpt = load_checkpoint(paths[-1])
        config = C.from_dict(C.upgrade(ckpt["config"], for_training=False))
        info = DataInfo.from_dict(ckpt["data_info"])
        if tuple(info.sample_shape) != shape:
            raise ValueError(f"generator.gan_run={run} draws {tuple(info.sample_shape)} "
                             f"images, this run's data are {shape}; use the same data")
        G, D = build_networks(config, info)
        G.load_state_dict(ckpt["G"])
        D.load_state_dict(ckpt["D"])
        return G, D, config.z_dim

    def idle_parameters(self) -> set[str]:
        """The frozen first stage's parameters: no gradient reaches them."""
        return {n for n, p in self.named_parameters() if not p.requires_grad}

    def train(self, mode: bool = True):
        super().train(mode)
        self.generator.eval()  # the first stage stays as trained (BatchNorm statistics too)
        self.critic.eval()
        return self

    def forward(self, source: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(self.encoder(source))

    def residuals(self, x: torch.Tensor) -> torch.Tensor:
        """Per image: mean (x - G(E(x)))^2 + kappa mean (f(x) - f(G(E(x))))^2 [N]."""
        x_hat = self(x)
        f, f_hat = self.critic.score(x)["features"], self.critic.score(x_hat)["features"]
        return (x - x_hat).pow(2).flatten(1).mean(1) + \
            self.options.kappa * (f - f_hat).pow(2).flatten(1).mean(1)

    @torch.no_grad()
    def anomaly_score(self, x: torch.Tensor, D=None) -> torch.Tensor:
        """f-AnoGAN's izi_f score per image [N] (higher: more anomalous)."""
        return self.residuals(x)


@GENERATORS.register("bigan", "BiGAN G with an encoder E: G(z) -> x, E(x) -> z, judged "
                              "jointly (Donahue 2017; EGBAD, Zenati et al. 2018)")
class BiGANGenerator(Generator):
    """(z [N, z_dim]) -> images; ``encode(x)`` -> z. With the joint critic `bigan`, D sees
    (x, E(x)) as real and (G(z), z) as fake (the loop's `BiGANTask`); the
    ``encoder_adversarial`` term trains E. EGBAD's anomaly score (Zenati et al. 2018, eq.
    4): alpha ||x - G(E(x))||_1 + (1 - alpha) ||f(x, E(x)) - f(G(E(x)), E(x))||_1, f = D's
    features, alpha 0.9, means over pixels and features."""

    takes: ClassVar[str] = "bigan"
    test_options: ClassVar[dict] = {"width": 4}
    needs_critic = True  # the score reads D's features

    @dataclass(frozen=True)
    class Options(UnconditionalOptions):
        width: int = 64  # channels of G's last and E's first stage
        alpha: float = 0.9  # the score's weight of the image residual (the paper's 0.9)

        def __post_init__(self) -> None:
            super().__post_init__()
            at_least("width", self.width, 1)
            if not 0.0 <= self.alpha <= 1.0:
                raise ValueError(f"alpha must lie in [0, 1], got {self.alpha}")

    @classmethod
    def supports(cls, shape: tuple) -> bool:
        return _supported(tuple(shape))

    def __init__(self, z_dim: int, out_shape: tuple, bounded: bool = True,
                 num_classes: int = 0, options: Options | None = None, **values) -> None:
        super().__init__(options, values)
        o = self.options
        shape = tuple(out_shape)
        if not _supported(shape):
            raise ValueError(f"bigan needs square images of side 4*2^k or 7*2^k, got {shape}; "
                             f"set data.resolution")
        self.z_dim = z_dim
        self.decoder = DCGANGenerator(z_dim=z_dim, out_shape=shape, width=o.width)
        self.encoder = conv_encoder(shape, o.width, z_dim)

    def idle_parameters(self) -> set[str]:
        """The encoder: its term and the critic's real pairs use it, G(z) not."""
        return {f"encoder.{n}" for n, _ in self.encoder.named_parameters()}

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(z)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    @torch.no_grad()
    def anomaly_score(self, x: torch.Tensor, D=None) -> torch.Tensor:
        if D is None:
            raise ValueError("the bigan (EGBAD) score needs the run's discriminator")
        z = self.encode(x)
        x_hat = self(z)
        residual = (x - x_hat).abs().flatten(1).mean(1)
        f, f_hat = D.score(x, z)["features"], D.score(x_hat, z)["features"]
        a = self.options.alpha
        return a * residual + (1 - a) * (f - f_hat).abs().flatten(1).mean(1)
