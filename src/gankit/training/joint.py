"""How D scores a real and a fake batch: in two calls, or under ``train.d_joint_batch`` in
one call on both (from G step ``train.d_joint_batch_from`` on), split back afterwards.

In one call D's BatchNorm normalises real and fake with shared statistics, so D can see a
shift between the batches as a whole (which digits the fake batch overdraws) that separate
statistics hide. The Stacked MNIST recipe uses it for its last 2,000 steps
(docs/benchmarks.md, "What the recommended recipe needs").
"""

from __future__ import annotations

import torch

from gankit.layers.minibatch import MinibatchDiscrimination, MinibatchStdDev
from gankit.utils.tensors import as_float


class PairScoring:
    """D's outputs on a real and a fake batch, apart or jointly as the config says.

    Raises:
        ValueError: joint scoring with D's minibatch stddev or minibatch discrimination
            layers, which would then compare real with fake samples.
    """

    def __init__(self, train, D: torch.nn.Module) -> None:
        self.start = train.d_joint_batch_from if train.d_joint_batch else None
        if self.start is not None and any(
                isinstance(m, (MinibatchStdDev, MinibatchDiscrimination)) for m in D.modules()):
            raise ValueError("train.d_joint_batch=true cannot be combined with D's minibatch "
                             "stddev or minibatch discrimination layers, which would compare "
                             "real with fake samples; turn one of them off")

    def joint(self, step: int) -> bool:
        """Whether D scores real and fake in one call at G step ``step``."""
        return self.start is not None and step >= self.start

    def score(self, D, real, real_labels, fake, fake_labels, step: int) -> tuple[dict, dict]:
        """D's outputs (in float32) on ``real`` and on ``fake``."""
        if not self.joint(step):
            return as_float(D.score(real, real_labels)), as_float(D.score(fake, fake_labels))
        labels = None if real_labels is None else torch.cat([real_labels, fake_labels])
        out = as_float(D.score(torch.cat([real, fake]), labels))
        rows = out["logits"].shape[0] * len(real) // (len(real) + len(fake))  # packed rows
        return ({k: v[:rows] for k, v in out.items()}, {k: v[rows:] for k, v in out.items()})
