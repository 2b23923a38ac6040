"""The identity extractor: samples flattened to vectors, for 2D points and tabular data."""

from __future__ import annotations

import torch

from gankit.metrics.features._base import Extractor
from gankit.registry import EXTRACTORS


@EXTRACTORS.register("raw", "the data itself, flattened to [N, D] (2D points, tabular data)")
class RawExtractor(Extractor):
    """Features = ``x.flatten(1)``; no classifier head."""

    name = "raw"
    key_name = "raw"
    preprocessing = "raw:flatten:float32"

    def __init__(self, batch_size: int = 10_000, device: str | torch.device = "cpu") -> None:
        super().__init__(batch_size)
        # An empty buffer pins the device the outputs are accumulated on.
        self.register_buffer("_anchor", torch.empty(0, device=device), persistent=False)

    @property
    def device(self) -> torch.device:
        return self._anchor.device

    def _check_input(self, x) -> torch.Tensor:
        x = super()._check_input(x)
        self.feature_dim = int(x[0].numel())
        return x

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return x.flatten(1), None
