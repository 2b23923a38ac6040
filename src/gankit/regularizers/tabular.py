"""CTGAN's conditional-vector loss (Xu et al. 2019, sec. 4.3): G must produce the label its
conditional vector asks for. weight * mean over rows of the cross-entropy between G's
pre-activation outputs of the conditioned column (``G.last_logits``) and the asked label;
added to G's adversarial loss (the paper's weight 1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gankit.components import RegularizerBase, TermOptions
from gankit.registry import REGULARIZERS


@REGULARIZERS.register("table_condition", "CTGAN: cross-entropy of the conditioned column "
                                          "against its conditional vector (Xu et al. 2019)")
class TableCondition(RegularizerBase):
    """Cross-entropy of the conditioned categorical column."""

    generator = "ctgan"  # needs last_logits, the encoding's blocks and the appended cond

    Options = TermOptions  # weight 1, interval 1

    phases = ("G",)

    def __call__(self, ctx) -> torch.Tensor:
        G = ctx.G
        if not G.discrete:  # no categorical column: no condition to honour
            return ctx.fake.sum() * 0.0
        cond = ctx.fake[:, G.dim:]
        logits = G.last_logits
        total, at = ctx.fake.new_zeros(()), 0
        for start, width in G.discrete:
            block = cond[:, at:at + width]
            rows = torch.nonzero(block.sum(1) > 0.5).flatten()
            if len(rows):
                total = total + F.cross_entropy(logits[rows, start:start + width],
                                                block[rows].argmax(1), reduction="sum")
            at += width
        o = self.options
        return o.weight * o.interval * total / len(cond)
