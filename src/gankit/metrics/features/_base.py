"""The feature-extractor interface shared by every registered extractor.

An extractor is an ``nn.Module`` with ``features(x) -> [N, D]`` and, when it has a classifier
head, ``probs(x) -> [N, K]``. Input images are float ``[N, C, H, W]`` in [-1, 1] at any
resolution and channel count; each extractor converts them as it needs (``_prepare``). Batches
run in ``torch.inference_mode()`` in eval mode; outputs are written into tensors preallocated
on the extractor's device and copied to the host once at the end.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gankit.utils.progress import progress_bar

# ITU-R BT.601 luma weights (Pillow's RGB -> L), used to turn RGB into grey.
LUMA = (0.299, 0.587, 0.114)


def to_grey(x: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> [N, 1, H, W]: luma for 3 channels, channel mean otherwise."""
    if x.shape[1] == 1:
        return x
    if x.shape[1] == 3:
        w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * w).sum(1, keepdim=True)
    return x.mean(1, keepdim=True)


def to_rgb(x: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> [N, 3, H, W]: grey repeated; other channel counts are an error."""
    if x.shape[1] == 3:
        return x
    if x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1)
    raise ValueError(f"expected 1 or 3 image channels, got {x.shape[1]}")


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize to size x size (align_corners=False); a no-op at the right size."""
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


class Extractor(nn.Module):
    """Base class: subclasses implement ``_prepare`` and ``_forward``.

    Attributes:
        name: the registry name (or spec) the extractor was built from.
        key_name: short name for result keys (``lenet``, ``inception``, ``raw``).
        preprocessing: a string naming everything that changes the output (input conversion,
            weights checksum); it enters cache hashes.
        feature_dim: D.
        num_classes: K, or 0 without a classifier head.
    """

    name = ""
    key_name = ""
    preprocessing = ""
    feature_dim = 0
    num_classes = 0
    # Feed conv nets NHWC batches: oneDNN's channels-last convolutions are about 1.5-2x faster
    # on CPU (and use tensor cores on GPU); subclasses convert their weights to match.
    channels_last = False

    def __init__(self, batch_size: int = 500) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size

    @property
    def device(self) -> torch.device:
        for tensor in self.parameters():
            return tensor.device
        return torch.device("cpu")

    def result_key(self, dataset: str) -> str:
        """Extractor part of result keys when evaluating on ``dataset``."""
        return self.key_name

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features [B, D] and logits [B, K] (or None) of a prepared batch."""
        raise NotImplementedError

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable class logits [B, K] of images ``x`` in [-1, 1] (one batch).

        Raises:
            ValueError: the extractor has no classifier head.
        """
        logits = self._forward(self._prepare(x))[1]
        if logits is None:
            raise ValueError(f"extractor {self.name} has no classifier head; use a "
                             "classifier such as lenet_mnist5k")
        return logits

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable features of images ``x`` in [-1, 1] (no quantisation, one batch),
        for perceptual losses: spatial maps where the network has them, else [B, D]."""
        return self._forward(self._prepare(x))[0]

    def _check_input(self, x) -> torch.Tensor:
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x)
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{self.name}: input must be a tensor or array, got {type(x).__name__}")
        if not x.is_floating_point():
            raise ValueError(
                f"{self.name}: input must be float images in [-1, 1], got dtype {x.dtype} "
                "(convert uint8 images with x / 127.5 - 1)"
            )
        if len(x) == 0:
            raise ValueError(f"{self.name}: got an empty input")
        return x

    def extract(
        self, x, batch_size: int | None = None, with_probs: bool = True,
        progress: str | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features [N, D] and, if available and requested, probabilities [N, K] in one pass.

        Args:
            x: float images [N, C, H, W] in [-1, 1] (or whatever the extractor accepts).
            batch_size: samples per forward pass (default: the constructor's).
            with_probs: also return softmax probabilities when there is a classifier head.
            progress: a label: show a bar of the samples on stderr under it when they take
                more than one batch (`gankit.utils.progress`); None: no bar.

        Returns:
            CPU float32 tensors ``(features, probs or None)``.
        """
        x = self._check_input(x)
        self.eval()
        bs = batch_size or self.batch_size
        device = self.device
        want_probs = with_probs and self.num_classes > 0
        # Outputs are ordinary tensors filled in place under inference mode, so callers may
        # modify them afterwards; one host copy at the end instead of one per batch.
        feats = torch.empty(len(x), self.feature_dim, device=device)
        probs = torch.empty(len(x), self.num_classes, device=device) if want_probs else None
        bar = progress_bar(len(x), desc=progress, unit="sample",
                           enabled=progress is not None and len(x) > bs)
        with torch.inference_mode(), bar:
            for start in range(0, len(x), bs):
                batch = self._prepare(x[start : start + bs].to(device, torch.float32))
                if self.channels_last:
                    batch = batch.contiguous(memory_format=torch.channels_last)
                f, logits = self._forward(batch)
                feats[start : start + len(f)] = f
                if probs is not None:
                    probs[start : start + len(f)] = torch.softmax(logits.float(), dim=1)
                bar.update(len(f))
        return feats.cpu(), (probs.cpu() if probs is not None else None)

    def features(self, x, batch_size: int | None = None) -> torch.Tensor:
        """Features [N, D] (CPU float32) of images in [-1, 1]."""
        return self.extract(x, batch_size, with_probs=False)[0]

    def probs(self, x, batch_size: int | None = None) -> torch.Tensor:
        """Class probabilities [N, K] (CPU float32); only for extractors with a classifier."""
        if self.num_classes == 0:
            raise ValueError(f"extractor {self.name!r} has no classifier head, so no probs")
        return self.extract(x, batch_size)[1]
