"""Training health monitor: cheap signals on log steps, and warnings for the classic failures.

Signals, written to ``log.jsonl`` as ``health/*`` keys on every log step:

- ``d_acc_real``, ``d_acc_fake``, ``grad_G_output``: recorded by the loop itself (D's
  accuracy on the batch: the share of real outputs above the loss's ``real_threshold``, 0
  for logits and 1/2 for least squares, and of fake outputs at or below it; a loss without
  a threshold, the Wasserstein critic's, records none; the mean per-sample L2 norm of
  dLoss_G/d fake).
- ``diversity_ratio``: the mean pairwise L2 distance of G's samples on the fixed latent batch
  (``state.z_fixed``, the sample grid's, G in eval mode) over the same statistic on a fixed
  real batch of the same size. Near 1 for a healthy G; near 0 when G collapses onto a few
  points (the failure PacGAN, Lin et al. 2018, and minibatch discrimination, Salimans et al.
  2016, address).
- ``modes``, ``hq``: on the 2D mixtures (ring, grid), the PacGAN mode metrics (Lin et al.
  2018; :func:`gankit.metrics.mixture_metrics`) of a fixed batch of ``mode_samples`` latents.

No signal draws from ``state.generator`` or touches an optimiser, and every network is left
in the mode it was in, so training with the monitor is bitwise identical to training without.

Warnings (:class:`HealthRules`, a pure function of the record sequence, so ``gankit doctor``
replays the same rules over a log): a condition that holds on ``window`` consecutive log
records is reported once, naming the step it began; it is reported again only after it has
cleared (false on ``window`` consecutive records). The thresholds live in
:class:`gankit.config.HealthConfig`. The first three rules below start at ``warmup_steps``
(an untrained G has little diversity and an early D often wins for a while); the loss rules
run from the first record:

- ``d_saturated``: D classifies both batches (accuracy >= ``d_saturation_accuracy`` on
  real and fake) with mean logits beyond +-``d_saturation_logit``: D(real) -> 1, D(fake) -> 0,
  where the minimax loss gives G no gradient (Goodfellow et al. 2014, §3; Arjovsky & Bottou
  2017). Checked only for losses that saturate (``saturates``: minimax and non-saturating);
  hinge, least squares and Wasserstein keep G's gradient when D is confident.
- ``g_grad_vanished``: ``grad_G_output`` below ``grad_vanish_ratio`` times its reference (the
  median of the first ``reference_logs`` records) or below ``grad_vanish_abs``.
- ``diversity_collapsed``: ``diversity_ratio`` below ``diversity_ratio_min``.
- ``loss_diverged``: a finite ``|loss/*|`` above ``loss_max_abs``, or above ``loss_growth``
  times max(1, its reference).
- ``loss_nonfinite``: a ``loss/*`` value is NaN or infinite (reported on the first record).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

import torch

from gankit.config import HealthConfig
from gankit.sampling import generate, stream
from gankit.utils.io import read_jsonl

KINDS = ("loss_nonfinite", "loss_diverged", "d_saturated", "g_grad_vanished",
         "diversity_collapsed")
TITLES = {"loss_nonfinite": "non-finite loss", "loss_diverged": "losses diverged",
          "d_saturated": "D saturated", "g_grad_vanished": "G's gradients vanished",
          "diversity_collapsed": "sample diversity collapsed"}
LOSS_KEYS = ("loss/D", "loss/G")
_NO_WARMUP = ("loss_nonfinite", "loss_diverged")  # checked from the first record on


def is_training_record(record: dict) -> bool:
    """A log record of a training step (not a metric or a warning record)."""
    return "warning" not in record and any(k in record for k in LOSS_KEYS)


def _finite(record: dict, key: str) -> float | None:
    v = record.get(key)
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


@dataclass
class Episode:
    """One stretch of log records during which a warning condition held."""

    kind: str  # one of KINDS
    begin: int  # step of the first record on which the condition held
    first: dict  # that record (evidence)
    last: dict  # the last record on which the condition held
    end: int | None = None  # step of the first record of the clearing run; None: ongoing


@dataclass
class _Track:
    streak: list = field(default_factory=list)  # records of the current run of True
    clear: list = field(default_factory=list)  # records of the current run of False (active)
    active: Episode | None = None


class HealthRules:
    """The warning rules over a sequence of training log records (see the module docstring).

    Args:
        config: thresholds and the sustain window.
        saturates: whether the run's loss saturates (``d_saturated`` is checked only then).
    """

    def __init__(self, config: HealthConfig | None = None, saturates: bool = True) -> None:
        self.config = config or HealthConfig()
        self.saturates = saturates
        self.episodes: list[Episode] = []
        self.references: dict[str, float] = {}  # key -> median of its first values
        self._early: dict[str, list[float]] = {}
        self._tracks = {k: _Track() for k in KINDS}
        self._conditions = {"loss_nonfinite": self._loss_nonfinite,
                            "loss_diverged": self._loss_diverged,
                            "d_saturated": self._d_saturated,
                            "g_grad_vanished": self._g_grad_vanished,
                            "diversity_collapsed": self._diversity_collapsed}

    def update(self, record: dict) -> list[Episode]:
        """Feed one log record; returns the episodes that begin (are reported) now."""
        if not is_training_record(record):
            return []
        started = []
        warm = record.get("step", 0) >= self.config.warmup_steps
        for kind in KINDS:
            held = self._conditions[kind](record) if warm or kind in _NO_WARMUP else None
            if held is None:  # the signal is missing or undefined on this record
                continue
            episode = self._step(kind, held, record)
            if episode is not None:
                started.append(episode)
        self._collect_references(record)
        return started

    def warning(self, episode: Episode, step: int) -> dict:
        """The log record of a warning: ``{"step", "warning", "message"}``."""
        return {"step": step, "warning": episode.kind,
                "message": f"{TITLES[episode.kind]} since step {episode.begin}: "
                           f"{self.evidence(episode.kind, episode.first)}"}

    def evidence(self, kind: str, r: dict) -> str:
        """The numbers behind ``kind`` on record ``r``, with the thresholds they crossed."""
        c = self.config

        def g(key: str) -> float:
            return r.get(key, float("nan"))

        if kind == "loss_nonfinite":
            return ", ".join(f"{k} = {r[k]}" for k in LOSS_KEYS if k in r)
        if kind == "loss_diverged":
            return ", ".join(
                f"{k} = {g(k):.4g} (reference {self.references.get(k, float('nan')):.3g}, "
                f"limit {self._loss_limit(k):.3g})" for k in LOSS_KEYS if k in r)
        if kind == "d_saturated":
            return (f"D accuracy real {g('health/d_acc_real'):.2f} / fake "
                    f"{g('health/d_acc_fake'):.2f} (>= {c.d_saturation_accuracy}), mean logits "
                    f"real {g('scores/real'):+.2f} / fake {g('scores/fake'):+.2f} "
                    f"(beyond +-{c.d_saturation_logit})")
        if kind == "g_grad_vanished":
            ref = self.references.get("health/grad_G_output")
            return (f"grad_G_output {g('health/grad_G_output'):.3g} (reference "
                    f"{'n/a' if ref is None else f'{ref:.3g}'}, limit "
                    f"{self._grad_limit():.3g})")
        if kind == "diversity_collapsed":
            text = (f"diversity_ratio {g('health/diversity_ratio'):.3f} "
                    f"(< {c.diversity_ratio_min})")
            if "health/modes" in r:
                text += f", modes {r['health/modes']:.0f}, hq {r['health/hq']:.2f}"
            return text
        raise KeyError(kind)

    # -- the conditions: True / False, or None when the record cannot tell ---------------
    def _loss_nonfinite(self, r: dict) -> bool | None:
        values = [r[k] for k in LOSS_KEYS if isinstance(r.get(k), (int, float))]
        return any(not math.isfinite(v) for v in values) if values else None

    def _loss_limit(self, key: str) -> float:
        c, ref = self.config, self.references.get(key)
        limit = c.loss_max_abs
        if ref is not None:
            limit = min(limit, c.loss_growth * max(1.0, abs(ref)))
        return limit

    def _loss_diverged(self, r: dict) -> bool | None:
        values = {k: _finite(r, k) for k in LOSS_KEYS}
        if all(v is None for v in values.values()):
            return None
        return any(v is not None and abs(v) > self._loss_limit(k) for k, v in values.items())

    def _d_saturated(self, r: dict) -> bool | None:
        if not self.saturates:
            return None
        keys = ("health/d_acc_real", "health/d_acc_fake", "scores/real", "scores/fake")
        acc_real, acc_fake, real, fake = (_finite(r, k) for k in keys)
        if None in (acc_real, acc_fake, real, fake):
            return None
        c = self.config
        return (acc_real >= c.d_saturation_accuracy and acc_fake >= c.d_saturation_accuracy
                and real >= c.d_saturation_logit and fake <= -c.d_saturation_logit)

    def _grad_limit(self) -> float:
        c, ref = self.config, self.references.get("health/grad_G_output")
        return max(c.grad_vanish_abs, c.grad_vanish_ratio * ref if ref is not None else 0.0)

    def _g_grad_vanished(self, r: dict) -> bool | None:
        value = _finite(r, "health/grad_G_output")
        return None if value is None else value < self._grad_limit()

    def _diversity_collapsed(self, r: dict) -> bool | None:
        value = _finite(r, "health/diversity_ratio")
        return None if value is None else value < self.config.diversity_ratio_min

    # -- bookkeeping -----------------------------------------------------------------------
    def _step(self, kind: str, held: bool, record: dict) -> Episode | None:
        track, window = self._tracks[kind], self.config.window
        if track.active is not None:
            if held:
                track.active.last, track.clear = record, []
            else:
                track.clear.append(record)
                if len(track.clear) >= window:
                    track.active.end = track.clear[0]["step"]
                    track.active, track.clear = None, []
            return None
        if not held:
            track.streak = []
            return None
        track.streak.append(record)
        if len(track.streak) < (1 if kind == "loss_nonfinite" else window):
            return None
        first = track.streak[0]
        track.active = Episode(kind, int(first["step"]), first, record)
        track.streak = []
        self.episodes.append(track.active)
        return track.active

    def _collect_references(self, record: dict) -> None:
        for key in (*LOSS_KEYS, "health/grad_G_output"):
            value = _finite(record, key)
            early = self._early.setdefault(key, [])
            if value is None or key in self.references:
                continue
            early.append(value)
            if len(early) >= self.config.reference_logs:
                self.references[key] = statistics.median(early)


def replay(records, config: HealthConfig | None = None, saturates: bool = True) -> HealthRules:
    """Run the rules over ``records`` (e.g. a whole ``log.jsonl``); episodes in ``.episodes``."""
    rules = HealthRules(config, saturates)
    for record in records:
        rules.update(record)
    return rules


def pairwise_distance(x: torch.Tensor) -> float:
    """Mean L2 distance over all pairs i != j of the rows of ``x`` [N, ...] (N >= 2)."""
    flat = x.detach().flatten(1).double()
    n = flat.shape[0]
    return float(torch.cdist(flat, flat).sum() / (n * (n - 1)))


class HealthMonitor:
    """Measures the ``health/*`` signals of a :class:`~gankit.training.loop.Trainer` and
    applies :class:`HealthRules` to its log records.

    On resume the rules are brought up to date by replaying the run's ``log.jsonl`` (already
    truncated to the checkpoint), so a condition that began before the checkpoint is not
    reported twice and the references are those of the run's start.
    """

    def __init__(self, trainer, config: HealthConfig) -> None:
        s = trainer.state
        self.config = config
        self.rules = HealthRules(config, s.loss.saturates)
        self._real_distance: float | None = None
        self._mixture = None
        if s.info.kind == "points":
            from gankit.data import mixture_spec

            try:
                self._mixture = mixture_spec(trainer.data.name)
            except ValueError:
                pass
        if self._mixture is not None:  # a private generator: state.generator is untouched
            gen = stream(s.config.train.seed, "health_modes", s.device)
            n = config.mode_samples
            self._z_modes = torch.randn(n, s.config.z_dim, generator=gen, device=s.device)
            self._c_modes = (torch.arange(n, device=s.device) % s.info.num_classes
                             if s.conditional else None)
        log = trainer.run_dir / "log.jsonl" if trainer.run_dir is not None else None
        if log is not None and log.is_file():
            for record in read_jsonl(log):
                if record.get("step", 0) <= s.step:
                    self.rules.update(record)

    @torch.no_grad()
    def measure(self, trainer) -> dict[str, float]:
        """The ``health/*`` signals this monitor adds to a log record."""
        s = trainer.state
        out: dict[str, float] = {}
        n = min(len(trainer.data), s.z_fixed.shape[0])
        if n >= 2:  # a ratio of mean pairwise distances needs pairs
            if self._real_distance is None:  # a fixed real batch, measured once
                gen = stream(s.config.train.seed, "health_real")
                idx = torch.randperm(len(trainer.data), generator=gen)[:n]
                self._real_distance = pairwise_distance(trainer.data.x[idx])
            fake = trainer.generate_fixed()  # [num_samples, ...], eval mode, no random draw
            out["health/diversity_ratio"] = (pairwise_distance(fake)
                                             / max(self._real_distance, 1e-12))
        if self._mixture is not None:
            from gankit.metrics.mixture import mixture_metrics

            points = generate(s.sample_net(ema=True), self._z_modes, self._c_modes).numpy()
            if math.isfinite(float(points.sum())):
                m = mixture_metrics(points, *self._mixture)
                out.update({"health/modes": m["modes"], "health/hq": m["hq"]})
        return out

    def check(self, record: dict) -> list[dict]:
        """Apply the rules to a finished log record; returns the warning records to log."""
        return [self.rules.warning(e, record["step"]) for e in self.rules.update(record)]
