"""What a training batch is and how G is fed: the one place where the loop's "G maps z to
x" is generalised (`gankit.training.loop` calls a task and never asks which it is).

- `LatentTask`: G(z, c) with z ~ N(0, I) and, for a class-conditional run, labels c drawn
  uniformly (or in proportion to G's label prior); D scores real images with their labels
  and fakes with the labels they were made for. Every GAN of the toolkit but translation.
- `SourceTask`: image-to-image translation, super-resolution and two-domain (CycleGAN)
  data: G(source), the fakes of a batch made from that batch's sources. D scores (source,
  image) pairs when it takes the source (pix2pix's conditional PatchGAN), images alone
  otherwise. The G update uses the batch of the step's last D update and hands its targets
  to the G-phase terms (``ctx.real``: reconstruction, perceptual, identity) and its sources
  (``ctx.source``: the cycle).

A task answers, for D update ``data_step`` at G step ``step``:
``real(data_step, step) -> (real, c_real)``, ``fake_inputs(data_step, step, n) -> (g_in,
g_c, c_fake)``, ``target(data_step, step)`` and ``source(data_step, step)`` (None for
latent tasks), and gives the sample grid's fixed inputs (`fixed_inputs`) and its picture
(`grid`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

GRID_SOURCES = 16  # sources in a translation run's sample grid


class LatentTask:
    """G maps latents (and labels) to samples."""

    def __init__(self, trainer) -> None:
        self.trainer = trainer

    def real(self, data_step: int, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.trainer.batches.batch(data_step, step)

    def fake_inputs(self, data_step: int, step: int, n: int) -> tuple:
        """(z, labels for G, labels for D): labels drawn first, then z (from the run's RNG)."""
        labels = self.labels(n)
        return self.z(n), labels, labels

    def z(self, n: int) -> torch.Tensor:
        """This process's rows of a global batch of ``n`` latents."""
        s, batches = self.trainer.state, self.trainer.batches
        return batches.local(torch.randn(n, s.config.z_dim, generator=s.generator,
                                         device=s.device))

    def labels(self, n: int) -> torch.Tensor | None:
        """Labels of ``n`` generated samples (conditional only; this process's rows):
        uniform, or in proportion to G's label prior (self-conditioning's cluster sizes)."""
        s = self.trainer.state
        return self.trainer.batches.local(s.G.cond.draw_labels(n, s.generator, s.device)) \
            if s.conditional else None

    def target(self, data_step: int, step: int) -> None:
        return None

    def source(self, data_step: int, step: int) -> None:
        return None

    def fixed_inputs(self, state) -> None:
        """The grid's latents are ``state.z_fixed`` as built: nothing to set."""

    def grid(self, fakes: torch.Tensor) -> tuple[torch.Tensor, None]:
        """(images of the sample grid, images per row: the default)."""
        return fakes, None


class BiGANTask(LatentTask):
    """BiGAN / ALI (Donahue et al. 2017): D judges (image, code) pairs: a real image with
    its code E(x) (no gradient in D's update), a fake G(z) with its z; the G step hands the
    real batch to the encoder's term (``ctx.real``)."""

    def real(self, data_step: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        real, _ = self.trainer.batches.batch(data_step, step)
        with torch.no_grad():
            return real, self.trainer.state.G.encode(real)

    def fake_inputs(self, data_step: int, step: int, n: int) -> tuple:
        z = self.z(n)
        return z, None, z

    def target(self, data_step: int, step: int) -> torch.Tensor:
        return self.trainer.batches.batch(data_step, step)[0]


class SourceTask:
    """G maps the batch's source images to images (pix2pix, CycleGAN, SRGAN, ...)."""

    def __init__(self, trainer) -> None:
        self.trainer = trainer
        self.takes_source = bool(getattr(trainer.state.D, "takes_source", False))
        self._fixed_targets: torch.Tensor | None = None

    def real(self, data_step: int, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        real, _ = self.trainer.batches.batch(data_step, step)
        return real, self.source(data_step, step) if self.takes_source else None

    def fake_inputs(self, data_step: int, step: int, n: int) -> tuple:
        """(the batch's sources, no labels, the sources for D when it scores pairs)."""
        source = self.source(data_step, step)
        return source, None, source if self.takes_source else None

    def target(self, data_step: int, step: int) -> torch.Tensor:
        return self.trainer.batches.batch(data_step, step)[0]

    def source(self, data_step: int, step: int) -> torch.Tensor:
        return self.trainer.batches.sources(data_step, step)

    def fixed_inputs(self, state) -> None:
        """The grid shows ``GRID_SOURCES`` sources spread evenly over the data (fixed;
        saved with the run as ``z_fixed``) with their outputs and targets."""
        data = self.trainer.data
        k = min(GRID_SOURCES, state.config.train.num_samples, len(data.x))
        idx = torch.arange(k) * len(data.x) // k  # spread over the data (sorted sets too)
        if state.z_fixed.shape[1:] != data.source.shape[1:]:
            state.z_fixed = data.source[idx].to(state.device)
            state.c_fixed = None
        self._fixed_targets = data.x[idx[:len(state.z_fixed)]].to(state.device)

    def grid(self, fakes: torch.Tensor) -> tuple[torch.Tensor, int]:
        """(source, output, target) triples, four per row, each domain of two-domain data in
        its own rows; sources are resized (nearest) to the output's side and channels."""
        source, target = self.trainer.state.z_fixed, self._fixed_targets
        if fakes.dim() != 4:  # points (reconstruction of table rows): the outputs alone
            return fakes, None
        domains = self.trainer.state.info.domains
        parts = []
        for d in range(domains):
            c_out, c_in = fakes.shape[1] // domains, source.shape[1] // domains
            # two domains: output d = G_d(source domain d) is judged against target d
            src = source[:, d * c_in:(d + 1) * c_in]
            out, tgt = (t[:, d * c_out:(d + 1) * c_out] for t in (fakes, target))
            if src.shape[-1] != out.shape[-1]:
                src = F.interpolate(src, size=out.shape[-2:], mode="nearest")
            if src.shape[1] != out.shape[1]:
                src = src.mean(1, keepdim=True).expand(-1, out.shape[1], -1, -1) \
                    if out.shape[1] == 1 else src.expand(-1, out.shape[1], -1, -1)
            parts.append(torch.stack([src, out.clamp(-1, 1), tgt], 1).flatten(0, 1))
        return torch.cat(parts), 12


def task_for(trainer):
    """The task of ``trainer``'s run: sources feed a translator G, conditional vectors and
    latents a table G (`gankit.tabular.sampler.TableTask`), latents any other."""
    takes = getattr(trainer.state.G, "takes", "latent")
    if takes == "table":
        from gankit.tabular.sampler import TableTask

        return TableTask(trainer)
    if takes == "bigan":
        return BiGANTask(trainer)
    return SourceTask(trainer) if takes == "image" else LatentTask(trainer)
