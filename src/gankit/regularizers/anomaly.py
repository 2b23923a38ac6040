"""GANomaly's encoder loss (Akcay et al. 2018, eq. 6): weight * mean ||G_E(x) - E(G(x))||^2
over the batch and the latent units: the second encoder learns to map a reconstruction to
the latent of its source, so on normal data the two agree (their disagreement is the
anomaly score)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.components import RegularizerBase, TermOptions
from gankit.registry import REGULARIZERS


@REGULARIZERS.register("latent_consistency", "GANomaly's encoder loss: the re-encoded "
                                             "reconstruction matches the latent (Akcay 2018)")
class LatentConsistency(RegularizerBase):
    """L2 between the latent of the source and that of its reconstruction."""

    generator = "ganomaly"  # needs latents(x, x_hat)
    needs_source = True

    @dataclass(frozen=True)
    class Options(TermOptions):
        weight: float = 1.0  # the paper's w_enc 1

    phases = ("G",)

    def __call__(self, ctx) -> torch.Tensor:
        if ctx.source is None:
            raise ValueError("regularizers.latent_consistency needs the images G encodes "
                             "(data.autoencode=true)")
        z, z_hat = ctx.G.latents(ctx.source, ctx.fake)
        o = self.options
        return o.weight * o.interval * (z - z_hat).pow(2).mean()


@REGULARIZERS.register("izi_f", "f-AnoGAN's encoder loss: image and critic-feature residuals "
                                "of x and G(E(x)) (Schlegl et al. 2019)")
class IziF(RegularizerBase):
    """weight * mean over the batch of `FAnoGANEncoder.residuals` (the paper's loss)."""

    generator = "fanogan_encoder"
    needs_source = True

    Options = TermOptions  # weight 1, interval 1

    phases = ("G",)

    def __call__(self, ctx) -> torch.Tensor:
        if ctx.source is None:
            raise ValueError("regularizers.izi_f needs the images G encodes "
                             "(data.autoencode=true)")
        o = self.options
        return o.weight * o.interval * ctx.G.residuals(ctx.source).mean()


@REGULARIZERS.register("encoder_adversarial", "BiGAN's encoder objective: E makes D call "
                                              "(x, E(x)) fake (Donahue 2017; EGBAD)")
class EncoderAdversarial(RegularizerBase):
    """weight * mean softplus(D(x, E(x))) = -log(1 - sigmoid(D(x, E(x)))) on the G step's
    real batch: the encoder's half of BiGAN's generator loss (the decoder's half is the
    loop's non-saturating loss on (G(z), z))."""

    generator = "bigan"

    Options = TermOptions  # weight 1, interval 1

    phases = ("G",)

    def __call__(self, ctx) -> torch.Tensor:
        if ctx.real is None:
            raise ValueError("regularizers.encoder_adversarial needs the real batch: use the "
                             "bigan generator")
        logits = ctx.D.score(ctx.real, ctx.G.encode(ctx.real))["logits"]
        o = self.options
        return o.weight * o.interval * torch.nn.functional.softplus(logits).mean()
