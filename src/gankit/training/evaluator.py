"""Metrics during training (``eval.interval``): G_ema's samples scored every K steps by
`gankit.evaluation.evaluate`, the best checkpoint kept by ``eval.best``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gankit.data import load_dataset
from gankit.evaluation import default_extractor, default_metrics, evaluate
from gankit.sampling import draw, stream


@dataclass
class TrainingEvaluator:
    """Runs ``config.eval`` metrics on the EMA generator every ``interval`` steps."""

    interval: int
    metrics: tuple[str, ...]
    n: int
    against: str
    extractor: str
    best: str | None

    @classmethod
    def from_config(cls, config, kind: str) -> TrainingEvaluator | None:
        e = config.eval
        if e.interval <= 0:
            return None
        against = e.against or config.data.name
        return cls(e.interval, tuple(e.metrics or default_metrics(kind)), e.n, against,
                   e.extractor or default_extractor(against, kind), e.best)

    def check(self, state) -> None:
        """Refuse, before training starts, reference data (``eval.against``) that the run's
        samples cannot be compared with (another kind or shape).

        Raises:
            ValueError: naming both shapes and the fix.
        """
        if self.against == state.config.data.name:
            return  # the training data, loaded as the run trains on it
        real, info = load_dataset(self.against), state.info
        if real.kind != info.kind or (info.kind == "image" and real.shape != info.sample_shape):
            what = {"image": "images", "points": "points"}
            raise ValueError(
                f"eval.against={self.against} holds {what[real.kind]} of shape "
                f"{tuple(real.shape)}, but the run's samples are {what[info.kind]} of shape "
                f"{info.sample_shape}; set eval.against to data of that shape, or leave it "
                f"unset to compare with the training data")

    def __call__(self, state) -> dict[str, float]:
        seed = state.config.train.seed
        fake = draw(state.sample_net(ema=True), self.n, state.config.z_dim,
                    stream(seed, "eval", state.device))
        return evaluate(fake, metrics=self.metrics, against=self.against, n=None,
                        extractor=self.extractor, seed=state.config.train.seed,
                        run_config=state.config)

    def best_key(self, results: dict[str, float]) -> str | None:
        if not self.best:
            return None
        # KID's keys name a subset size other than the protocol's: kid_sub500_mean_... is
        # found by eval.best=kid_mean as kid_mean_... is
        keys = [k for k in results if re.sub(r"^kid_sub\d+_", "kid_", k).startswith(self.best)]
        if not keys:
            raise ValueError(f"eval.best {self.best!r} matches none of the computed metrics "
                             f"{sorted(results)}")
        return keys[0]
