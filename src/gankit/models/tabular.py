"""CTGAN's generator and discriminator for tables (Xu et al. 2019, sec. 4.4), written from the
paper.

G: h0 = z (+) cond; two residual layers h_{i+1} = h_i (+) ReLU(BN(FC(h_i))) of ``width``
units each ((+) concatenates); a linear layer to the table encoding, then per output block
(`gankit.tabular.transform.Span`) tanh for a mode-normalised scalar and Gumbel-softmax
(temperature 0.2) for a one-hot block; in eval mode a plain softmax (no draw: sampling
draws each block's one-hot from it, `TableTransform.decode` with a seed). G returns
the encoded row with its conditional vector appended, [row | cond], which is what D judges
(the task draws real rows with the same layout), and keeps the pre-activation outputs of
its latest pass (``last_logits``) for the conditional-vector loss (`table_condition`).

D: two layers of ``width`` units, LeakyReLU 0.2 and dropout 0.5, then one logit; with
``pack`` (PacGAN, Lin et al. 2018; CTGAN packs 10) the loop feeds it 10 rows at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from gankit.layers.spectral import apply_spectral_norm
from gankit.models._base import Discriminator, Generator, UnconditionalOptions
from gankit.registry import DISCRIMINATORS, GENERATORS
from gankit.utils.checks import at_least, fraction, positive


def _vector(shape: tuple, who: str) -> int:
    if len(shape) != 1 or shape[0] < 1:
        raise ValueError(f"{who} needs table rows (points [D]), got samples of shape "
                         f"{tuple(shape)}; use a table (csv:PATH, breast_cancer, wine)")
    return shape[0]


@GENERATORS.register("ctgan", "CTGAN table generator: residual layers, tanh and Gumbel-softmax "
                              "outputs (Xu et al. 2019)")
class CTGANGenerator(Generator):
    """(z [N, z_dim], cond [N, C]) -> [row | cond] [N, D + C]."""

    takes: ClassVar[str] = "table"
    test_options: ClassVar[dict] = {"width": 8}

    @dataclass(frozen=True)
    class Options(UnconditionalOptions):
        width: int = 256  # units of each residual layer (the paper's 256)
        tau: float = 0.2  # Gumbel-softmax temperature (the paper's 0.2)

        def __post_init__(self) -> None:
            super().__post_init__()
            at_least("width", self.width, 1)
            positive("tau", self.tau)

    @classmethod
    def supports(cls, shape: tuple) -> bool:
        return len(shape) == 1

    def __init__(self, out_shape: tuple, z_dim: int = 128, bounded: bool = False,
                 num_classes: int = 0, table: dict | None = None, options: Options | None = None,
                 **values) -> None:
        super().__init__(options, values)
        o = self.options
        total = _vector(tuple(out_shape), "ctgan")
        from gankit.tabular.transform import Span, TableTransform

        if table is not None:
            transform = TableTransform.from_state(table)
            self.spans = transform.spans
            self.discrete = [(b["start"], b["width"]) for b in transform.discrete]
        else:  # no encoding given (contract tests): one tanh block per output
            self.spans = [Span(1, "tanh", f"c{i}", "alpha") for i in range(total)]
            self.discrete = []
        self.dim = sum(s.width for s in self.spans)
        self.cond_dim = total - self.dim
        if self.cond_dim < 0:
            raise ValueError(f"ctgan: the encoding has {self.dim} values but rows have {total}")
        self.z_dim = z_dim
        width_in = z_dim + self.cond_dim
        self.layers = nn.ModuleList()
        for _ in range(2):
            self.layers.append(nn.Sequential(nn.Linear(width_in, o.width),
                                             nn.BatchNorm1d(o.width), nn.ReLU()))
            width_in += o.width
        self.out = nn.Linear(width_in, self.dim)
        self.last_logits: torch.Tensor | None = None

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        cond = c if c is not None and c.dim() == 2 else z.new_zeros(len(z), self.cond_dim)
        h = torch.cat([z, cond], 1)
        for layer in self.layers:
            h = torch.cat([h, layer(h)], 1)
        raw = self.out(h)
        self.last_logits = raw
        parts, start = [], 0
        for span in self.spans:
            block = raw[:, start:start + span.width]
            start += span.width
            if span.activation == "tanh":
                parts.append(torch.tanh(block))
            elif self.training:
                parts.append(F.gumbel_softmax(block, tau=self.options.tau, hard=False))
            else:
                parts.append(F.softmax(block, dim=1))
        return torch.cat([*parts, cond], 1)


@DISCRIMINATORS.register("ctgan", "CTGAN table critic: 2 x (linear, LeakyReLU 0.2, dropout 0.5) "
                                  "(Xu et al. 2019); pack 10 with the PacGAN option")
class CTGANDiscriminator(Discriminator):
    """(rows [N, D]) -> logits [N]."""

    test_options: ClassVar[dict] = {"width": 8}

    @dataclass(frozen=True)
    class Options:
        width: int = 256  # units of each layer (the paper's 256)
        dropout: float = 0.5  # the paper's 0.5
        spectral_norm: bool = False

        def __post_init__(self) -> None:
            at_least("width", self.width, 1)
            fraction("dropout", self.dropout)

    @classmethod
    def supports(cls, shape: tuple) -> bool:
        return len(shape) == 1

    def __init__(self, in_shape: tuple, num_classes: int = 0, options: Options | None = None,
                 **values) -> None:
        super().__init__(options, values)
        o = self.options
        width_in = _vector(tuple(in_shape), "the ctgan discriminator")
        self.body = nn.Sequential(
            nn.Linear(width_in, o.width), nn.LeakyReLU(0.2), nn.Dropout(o.dropout),
            nn.Linear(o.width, o.width), nn.LeakyReLU(0.2), nn.Dropout(o.dropout))
        self.head = nn.Linear(o.width, 1)
        if o.spectral_norm:
            apply_spectral_norm(self)

    def score(self, x: torch.Tensor, c: torch.Tensor | None = None) -> dict:
        features = self.body(x)
        return {"logits": self.head(features).squeeze(1), "features": features}
