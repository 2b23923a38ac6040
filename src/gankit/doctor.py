"""``gankit doctor RUN_DIR``: a diagnosis of a run from its ``log.jsonl``.

Replays the training health rules (:mod:`gankit.training.health`, with the run's own
``health`` thresholds from ``config.yaml``) over the log, so it works on a finished run and
on one still training, and names for every problem the step it began (and ended), the numbers
behind it and the remedies to try as ``--set`` lines of gankit components.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from gankit.config import HealthConfig, build_dataclass, load_yaml, parse_override
from gankit.training.health import TITLES, Episode, HealthRules, is_training_record, replay

# (--set line, what it does and where it comes from); {d_lr} and {g_lr} are filled in from
# the run's config. Image-only remedies are marked with a leading "image:", those for a D
# with BatchNorm with "bn:".
_COLLAPSE = (
    ("--set pack=2", "PacGAN: D judges 2 samples jointly (Lin et al. 2018)"),
    ("--set discriminator.minibatch_discrimination=16",
     "minibatch discrimination (Salimans et al. 2016)"),
    ("--set discriminator.minibatch_stddev=4", "minibatch stddev feature (Karras et al. 2018)"),
    ("--set regularizers.feature_matching.weight=1",
     "feature matching for G (Salimans et al. 2016)"),
    ("--set augmentations.instance_noise.std=0.1",
     "instance noise on D's inputs (Sønderby et al. 2017)"),
    ("--set train.unrolled_steps=5", "G against a D unrolled 5 steps (Metz et al. 2017)"),
)
_DIVERGED = (
    ("--set g_optimizer.lr={g_lr} --set d_optimizer.lr={d_lr}",
     "halve both learning rates"),
    ("--set regularizers.gradient_penalty.weight=10",
     "gradient penalty on D (WGAN-GP, Gulrajani et al. 2017)"),
    ("--set discriminator.spectral_norm=true", "spectral norm in D (Miyato et al. 2018)"),
    ("--set regularizers.r1.gamma=1", "R1 penalty on real data (Mescheder et al. 2018)"),
)
REMEDIES: dict[str, tuple[tuple[str, str], ...]] = {
    "diversity_collapsed": _COLLAPSE,
    "d_saturated": (
        ("--set loss.real_label=0.9", "one-sided label smoothing (Salimans et al. 2016)"),
        ("--set augmentations.instance_noise.std=0.1",
         "instance noise on D's inputs (Sønderby et al. 2017)"),
        ("image:--set augmentations.diffaugment.policy=color,translation,cutout",
         "DiffAugment on real and fake (Zhao et al. 2020)"),
        ("--set regularizers.r1.gamma=1", "R1 penalty on real data (Mescheder et al. 2018)"),
        ("--set d_optimizer.lr={d_lr_slow}",
         "a slower D than G (two time-scale updates, TTUR, Heusel et al. 2017)"),
        ("bn:--set train.d_joint_batch=true",
         "a D with BatchNorm scores real and fake in one batch (shared statistics)"),
    ),
    "g_grad_vanished": (
        ("--set loss=non_saturating",
         "non-saturating G loss instead of minimax (Goodfellow et al. 2014)"),
        ("--set discriminator.spectral_norm=true", "spectral norm in D (Miyato et al. 2018)"),
        ("--set loss=wasserstein --set regularizers.gradient_penalty.weight=10",
         "WGAN-GP (Gulrajani et al. 2017; or the wgan_gp preset)"),
    ),
    "loss_diverged": _DIVERGED,
    "loss_nonfinite": _DIVERGED,
}
SUMMARY_KEYS = ("loss/D", "loss/G", "scores/real", "scores/fake", "health/d_acc_real",
                "health/d_acc_fake", "health/grad_G_output", "health/diversity_ratio",
                "health/modes", "health/hq")


@dataclass
class Diagnosis:
    """What ``gankit doctor`` found in a run."""

    run_dir: Path
    records: list[dict]  # the training records of log.jsonl, in order
    episodes: list[Episode]  # problems, by the step they began
    rules: HealthRules  # the replayed rules (thresholds in rules.config)
    config: dict | None  # the run's config.yaml as plain data (None when missing)

    @property
    def last(self) -> dict:
        return self.records[-1]


def diagnose(run_dir: str | Path) -> Diagnosis:
    """Replay the health rules over ``run_dir/log.jsonl``.

    Raises:
        FileNotFoundError: ``run_dir`` does not exist.
        ValueError: the run has no log, or the log holds no training record yet.
    """
    from gankit.viz.curves import read_log

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"doctor {run_dir}: no such run directory")
    records = [r for r in read_log(run_dir) if is_training_record(r)]
    if not records:
        raise ValueError(f"doctor {run_dir}: log.jsonl holds no training record yet "
                         "(records are written every train.log_interval steps)")
    config = None
    if (run_dir / "config.yaml").is_file():
        path = run_dir / "config.yaml"
        config = load_yaml(path.read_text(), str(path)) or {}
    health = build_dataclass(HealthConfig, (config or {}).get("health"), "health.")
    rules = replay(records, health, _loss(config).saturates)
    return Diagnosis(run_dir, records, sorted(rules.episodes, key=lambda e: e.begin), rules,
                     config)


def format_diagnosis(d: Diagnosis) -> str:
    """The report ``gankit doctor`` prints."""
    first, last = d.records[0]["step"], d.last["step"]
    total = ((d.config or {}).get("train") or {}).get("steps")
    state = "" if total is None else (" (finished)" if last >= total else
                                      f" of {total} (running, or stopped early)")
    lines = [f"gankit doctor: {d.run_dir}: {len(d.records)} log records, steps {first}-{last}"
             f"{state}", ""]
    if not d.episodes:
        lines.append("no problems found")
    else:
        n = len(d.episodes)
        lines.append(f"{n} problem{'s' if n > 1 else ''} found:")
    for i, e in enumerate(d.episodes, 1):
        span = (f"from step {e.begin} to step {e.end}" if e.end is not None
                else f"from step {e.begin}, still present at the last record (step {last})")
        lines += ["", f"{i}. {TITLES[e.kind]} ({e.kind}): {span}",
                  f"   evidence at step {e.begin}: {d.rules.evidence(e.kind, e.first)}"]
        if e.last is not e.first:
            lines.append(f"   last seen at step {e.last['step']}: "
                         f"{d.rules.evidence(e.kind, e.last)}")
        lines.append("   try:")
        options = remedies(e.kind, d.config)
        width = max(len(line) for line, _ in options)
        lines += [f"     {line:<{width}}  # {why}" for line, why in options]
    missing = [k for k in ("health/diversity_ratio", "health/grad_G_output") if k not in d.last]
    if missing:
        lines += ["", f"note: the log has no {', '.join(missing)} (health.enabled false, or an "
                  "older run): those checks were skipped"]
    lines += _loss_notes(d.config)
    lines += ["", f"last values (step {last}):"]
    lines += [f"  {k:<24} {_number(d.last[k])}" for k in SUMMARY_KEYS if k in d.last]
    return "\n".join(lines)


def _loss(config: dict | None):
    """The run's loss class (non_saturating when the config is unknown)."""
    from gankit.registry import LOSSES

    name = ((config or {}).get("loss") or {})
    name = name.get("name") if isinstance(name, dict) else name
    return LOSSES.get(name or "non_saturating")


def _loss_notes(config: dict | None) -> list[str]:
    """What the loss leaves unchecked: D's accuracy, and D saturation."""
    loss = _loss(config)
    name = ((config or {}).get("loss") or {}).get("name", "non_saturating")
    notes = []
    if loss.real_threshold is None:
        notes.append(f"note: D's accuracy is not measured for loss {name}: a critic's "
                     "scores have no real/fake threshold")
    if not loss.saturates:
        notes.append(f"note: D saturation is not checked for loss {name}: G's gradient "
                     "does not vanish when D is confident")
    return ["", *notes] if notes else []


def remedies(kind: str, config: dict | None) -> list[tuple[str, str]]:
    """The remedies of ``kind`` for a run with ``config`` (plain data; None: unknown)."""
    config = config or {}
    image = ((config.get("data") or {}).get("name") or "") not in ("ring", "grid")
    lrs = {"g_lr": _lr(config, "g_optimizer", 0.5), "d_lr": _lr(config, "d_optimizer", 0.5),
           "d_lr_slow": _lr(config, "d_optimizer", 0.25)}
    out = []
    for line, why in REMEDIES[kind]:
        if line.startswith("image:"):
            if not image:
                continue
            line = line[len("image:"):]
        if line.startswith("bn:"):
            if config and not _d_batch_norm(config):
                continue
            line = line[len("bn:"):]
        line = line.format(**lrs)
        if config and _already_set(line, config):
            why += " [already set in this run]"
        out.append((line, why))
    return out


def _d_batch_norm(config: dict) -> bool:
    """Whether the run's D has BatchNorm layers (dcgan's D unless switched off or SN)."""
    d = config.get("discriminator") or {}
    options = d.get("options") or {}
    return (d.get("name") == "dcgan" and bool(options.get("batch_norm", True))
            and not options.get("spectral_norm", False))


def _lr(config: dict, optimizer: str, factor: float) -> str:
    lr = ((config.get(optimizer) or {}).get("options") or {}).get("lr")
    return f"{lr * factor:.2g}" if isinstance(lr, (int, float)) else "1e-4"


def _already_set(line: str, config: dict) -> bool:
    """Whether every ``--set`` pair of ``line`` already holds in ``config``."""
    pairs = [parse_override(p.strip()) for p in line.split("--set") if p.strip()]
    return all(_lookup(config, keys) == _plain(value) for keys, value in pairs)


def _lookup(node, keys: list[str]):
    for key in keys:
        if isinstance(node, dict) and key not in node and "options" in node:
            node = node["options"]  # generator.width -> generator.options.width
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node["name"] if isinstance(node, dict) and "name" in node else node


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def _number(value) -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"
