"""The one training loop. Every GAN variant is a config: the loop never asks which loss,
regulariser or hook is active, it only calls them.

One iteration: ``d_steps`` discriminator updates (each on a fresh real batch and fresh
fakes), then one generator update. All randomness comes from ``state.generator`` and the
data order is a pure function of (seed, step), which makes resume bitwise exact.
Only the main process writes files (``is_main``), so the loop can later run under DDP.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch.func import functional_call

from gankit.data import BatchSampler
from gankit.data._sampler import epoch_seed
from gankit.layers.minibatch import MinibatchDiscrimination, MinibatchStdDev
from gankit.sampling import generate
from gankit.training.checkpoint import NonFiniteStateError, save_checkpoint
from gankit.training.context import StepContext
from gankit.training.faults import DivergenceGuard, TrainingInterrupted, stop_on_signals
from gankit.training.health import HealthMonitor
from gankit.training.schedule import lr_factor, schedule_for
from gankit.training.self_condition import SelfConditioner
from gankit.training.unroll import Unroller
from gankit.utils.images import save_grid, scatter_png
from gankit.utils.io import append_jsonl, truncate_log
from gankit.utils.precision import autocast, check_bf16

_STAGE_SEED = 1 << 41  # seeds of the batch_schedule stages' data orders, apart from epochs'


class Trainer:
    """Runs G and D updates on ``data`` (a gankit Dataset) and writes the run directory."""

    def __init__(self, state, data, run_dir: str | Path | None, *, is_main: bool = True,
                 progress: bool = True, callbacks=(), evaluator=None) -> None:
        self.state, self.data, self.is_main = state, data, is_main
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.progress = progress and is_main
        self.callbacks = list(callbacks)  # called as cb(trainer) after each logged step
        self.evaluator = evaluator  # a TrainingEvaluator or None
        cfg = state.config.train
        self.real_x = data.x.to(state.device)
        self.real_y = data.y.to(state.device) if data.y is not None else None
        # one sampler per stage of train.batch_schedule; stage 0 is the plain run's
        self.stages = [(0, cfg.batch_size), *cfg.batch_schedule]
        for start, size in cfg.batch_schedule:
            if size > len(data):
                raise ValueError(f"train.batch_schedule: the batch size {size} from step {start} "
                                 f"is larger than the dataset ({len(data)} samples); use sizes "
                                 f"<= {len(data)}")
        self.samplers = [BatchSampler(len(data), size, cfg.seed if k == 0 else
                                      epoch_seed(cfg.seed, _STAGE_SEED + k))
                         for k, (_, size) in enumerate(self.stages)]
        regs = list(state.regularizers.values())
        self.d_regs = [r for r in regs if "D" in r.phases]
        self.g_regs = [r for r in regs if "G" in r.phases]
        self.real_grad = any(r.needs_real_grad for r in self.d_regs)
        # G-step terms that compare fakes with D's view of real data (feature matching)
        self.g_real_features = any(r.needs_real_features for r in self.g_regs)
        self.hooks = list(state.hooks.values())
        self.augment = list(state.augmentations.values())
        self.conditional = state.conditional
        self.bf16 = cfg.precision == "bf16"
        if self.bf16:
            check_bf16(state.device, "train.precision")
        self.joint_from = cfg.d_joint_batch_from if cfg.d_joint_batch else None
        if cfg.d_joint_batch and any(isinstance(m, (MinibatchStdDev, MinibatchDiscrimination))
                              for m in state.D.modules()):
            raise ValueError("train.d_joint_batch=true cannot be combined with D's minibatch "
                             "stddev or minibatch discrimination layers, which would compare "
                             "real with fake samples; turn one of them off")
        self.last_real_view: tuple | None = None  # (D's input, labels) of the latest real batch
        self.last: dict[str, torch.Tensor] = {}
        self.step_losses: dict[str, torch.Tensor] = {}  # this step's losses, checked finite
        self.guard = DivergenceGuard(cfg)
        self.unroller = (Unroller(cfg.unrolled_steps, cfg.unrolled_order)
                         if cfg.unrolled_steps else None)
        state.extra["lr_schedule"] = schedule_for(cfg, state.step, state.extra.get("lr_schedule"))
        health = state.config.health
        self.health = HealthMonitor(self, health) if health.enabled else None
        sc = state.config.self_condition
        self.self_cond = (SelfConditioner(sc.clusters, sc.dim, sc.iters, cfg.seed)
                          if sc.clusters else None)
        if self.self_cond is not None:
            if state.cluster_labels is None:  # a fresh run: cluster with the initial D
                self._write_log(self._recluster(previous=None))
            self._use_clusters()

    # -- one update each ---------------------------------------------------------------
    def _stage(self) -> int:
        """Index of the train.batch_schedule stage the current step is in (0 before any)."""
        return sum(start <= self.state.step for start, _ in self.stages) - 1

    def batch_size(self) -> int:
        """The batch size at the current step."""
        return self.stages[self._stage()][1]

    def _batch(self, data_step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        # a stage's own data stream starts at its first step: a pure function of the step,
        # so a resumed run draws the same batches
        k = self._stage()
        offset = self.stages[k][0] * self.state.config.train.d_steps
        idx = self.samplers[k].indices(data_step - offset).to(self.real_x.device)
        real = self.real_x.index_select(0, idx)
        labels = self.real_y.index_select(0, idx) if self.real_y is not None else None
        return real, labels

    def _z(self, n: int) -> torch.Tensor:
        s = self.state
        return torch.randn(n, s.config.z_dim, generator=s.generator, device=s.device)

    def _fake_labels(self, n: int) -> torch.Tensor | None:
        """Class labels for generated samples (conditional only): uniform over the classes,
        or in proportion to G's label prior (self-conditioning's cluster sizes)."""
        if not self.conditional:
            return None
        s = self.state
        return s.G.cond.draw_labels(n, s.generator, s.device)

    # -- self-conditioning ----------------------------------------------------------------
    def _recluster(self, previous: torch.Tensor | None) -> dict:
        """Cluster the real data with the current D; returns a log record."""
        s, t = self.state, time.perf_counter()
        labels = self.self_cond.cluster(s.D, self.real_x, s.step, previous).to(s.device)
        sizes = torch.bincount(labels, minlength=self.self_cond.clusters)
        record = {"step": s.step, "self_condition/seconds": time.perf_counter() - t,
                  "self_condition/smallest": int(sizes.min()),
                  "self_condition/largest": int(sizes.max())}
        if previous is not None:
            record["self_condition/relabelled"] = float((labels != previous).float().mean())
        s.cluster_labels, s.cluster_step = labels, s.step
        return record

    def _use_clusters(self) -> None:
        """Train on the current cluster labels, and draw G's labels in their proportions."""
        s = self.state
        self.real_y = s.cluster_labels
        prior = self.self_cond.prior(s.cluster_labels).to(s.device)
        for net in (s.G, s.G_ema):
            if net is not None:
                net.cond.label_prior.copy_(prior)

    def _autocast(self):
        """The context of G's and D's forward passes: bfloat16 autocast under
        ``train.precision=bf16``, nothing otherwise."""
        return autocast(self.state.device, self.bf16)

    @property
    def joint(self) -> bool:
        """Whether D scores real and fake in one batch at the current step."""
        return self.joint_from is not None and self.state.step >= self.joint_from

    def _score_pair(self, D, real: torch.Tensor, real_labels, fake: torch.Tensor,
                    fake_labels) -> tuple[dict, dict]:
        """D's outputs (in float32) on a real and a fake batch: two calls, or under
        ``train.d_joint_batch`` one call on both, split back (BatchNorm statistics shared)."""
        if not self.joint:
            return _as_float(D.score(real, real_labels)), _as_float(D.score(fake, fake_labels))
        labels = None if real_labels is None else torch.cat([real_labels, fake_labels])
        out = _as_float(D.score(torch.cat([real, fake]), labels))
        rows = out["logits"].shape[0] * len(real) // (len(real) + len(fake))  # packed rows
        return ({k: v[:rows] for k, v in out.items()}, {k: v[rows:] for k, v in out.items()})

    def _d_view(self, x: torch.Tensor) -> torch.Tensor:
        """What D sees: the input after every augmentation (applied to real and fake alike)."""
        for aug in self.augment:
            x = aug(x, self.state.step, self.state.generator)
        return x

    def d_objective(self, D, data_step: int, update: int, g_grad: bool = False) -> tuple:
        """D's loss on a fresh real batch and fresh fakes, with the D-phase penalties due at
        D update number ``update`` (a term runs on every ``interval``-th one).

        ``D`` is a module or any object with its ``score``/``__call__`` (the unrolled
        critic's functional view). With ``g_grad`` the fakes keep G's graph (second-order
        unrolling). Returns (loss, real_out, fake_out, (real view, labels) detached).
        """
        s = self.state
        real, labels = self._batch(data_step)
        if not self.conditional:
            labels = None
        fake_labels = self._fake_labels(real.shape[0])
        with torch.set_grad_enabled(g_grad), self._autocast():
            z = self._z(real.shape[0])
            if g_grad:  # G's graph is kept: its BatchNorm statistics go to copies
                buffers = {n: b.clone() for n, b in s.G.named_buffers()}
                fake = _full(functional_call(s.G, buffers, (z, fake_labels)))
            else:
                fake = _full(s.G(z, fake_labels))
        if self.real_grad:
            real.requires_grad_(True)
        real_view = self._d_view(real)
        with self._autocast():
            real_out, fake_out = self._score_pair(D, real_view, labels, self._d_view(fake),
                                                  fake_labels)
        loss = s.loss.d_loss(real_out["logits"], fake_out["logits"])
        ctx = StepContext(s.G, D, real, fake, labels, real_out["logits"], fake_out["logits"],
                          s.step, s.generator, phase="D", fake_labels=fake_labels,
                          real_out=real_out, fake_out=fake_out, real_view=real_view,
                          pack=s.config.pack, low_precision=self.bf16)
        for reg in self.d_regs:
            if update % reg.interval == 0:
                loss = loss + reg(ctx)
        return loss, real_out, fake_out, (real_view.detach(), labels)

    def d_update(self, D, opt, data_step: int, update: int, log: bool = False,
                 main: bool = True) -> tuple:
        """One optimiser step of module ``D`` on `d_objective` (the main D, or the unrolled
        critic's copy when not ``main``); returns the real batch's (view, labels)."""
        s = self.state
        loss, real_out, fake_out, real_view = self.d_objective(D, data_step, update)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if main:
            self.step_losses["loss/D"] = loss.detach()
            self.last_real_view = real_view
            if log:
                r, f = real_out["logits"].detach(), fake_out["logits"].detach()
                self.last.update({"loss/D": loss.detach(), "scores/real": r.mean(),
                                  "scores/fake": f.mean(), "grad/D": _grad_norm(D)})
                cut = s.loss.real_threshold  # what "D says real" means for this loss
                if cut is not None:
                    self.last.update({"health/d_acc_real": (r > cut).float().mean(),
                                      "health/d_acc_fake": (f <= cut).float().mean()})
        opt.step()
        for hook in self.hooks:  # constraints hold for every D, the unrolled copy included
            hook.constrain_d(D)
        if main:
            for hook in self.hooks:
                hook.after_d_step(s, s.step)
        return real_view

    def d_step(self, data_step: int, log: bool) -> None:
        """The main D update number ``data_step`` (= G step * d_steps + i)."""
        self.d_update(self.state.D, self.state.d_opt, data_step, data_step, log)

    def g_step(self, log: bool) -> None:
        s = self.state
        batch = self.batch_size()
        D, real_view = s.D, self.last_real_view
        if self.unroller is not None:
            D, real_view = self.unroller.critic(self)
        D.requires_grad_(False)
        fake_labels = self._fake_labels(batch)
        with self._autocast():
            fake = s.G(self._z(batch), fake_labels)
        fake = _full(fake)
        if log:
            fake.retain_grad()
        real_out: dict = {}
        with self._autocast():
            if self.joint and real_view is not None:
                joint_real, fake_out = self._score_pair(D, *real_view, self._d_view(fake),
                                                        fake_labels)
                real_out = {k: v.detach() for k, v in joint_real.items()}
            else:
                fake_out = _as_float(D.score(self._d_view(fake), fake_labels))
                if self.g_real_features and real_view is not None:
                    # the D that scores the fakes scores the real batch too: feature
                    # matching compares both in one feature space (Salimans et al. 2016)
                    with torch.no_grad():
                        real_out = _as_float(D.score(*real_view))
        loss = s.loss.g_loss(fake_out["logits"])
        if self.g_regs:
            ctx = StepContext(s.G, D, None, fake, None, None, fake_out["logits"], s.step,
                              s.generator, phase="G", fake_labels=fake_labels,
                              real_out=real_out, fake_out=fake_out, pack=s.config.pack,
                              low_precision=self.bf16)
            for reg in self.g_regs:
                if s.step % reg.interval == 0:
                    loss = loss + reg(ctx)
        s.g_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.step_losses["loss/G"] = loss.detach()
        D.requires_grad_(True)
        if log:
            out_grad = fake.grad.flatten(1).norm(dim=1).mean() if fake.grad is not None else (
                torch.zeros((), device=s.device))
            self.last.update({"loss/G": loss.detach(), "grad/G": _grad_norm(s.G),
                              "health/grad_G_output": out_grad})
        s.g_opt.step()
        s.step += 1
        for hook in self.hooks:
            hook.after_g_step(s, s.step)

    # -- the loop ------------------------------------------------------------------------
    def run(self, total_steps: int) -> dict:
        """Train until ``state.step == total_steps``; returns the last log record.

        Raises:
            TrainingInterrupted: SIGINT or SIGTERM; the step reached is checkpointed.
            TrainingDiverged: a loss stayed non-finite (`gankit.training.faults`).
        """
        s = self.state
        bar = _progress(s.step, total_steps) if self.progress else None
        with stop_on_signals() as stop:
            self.guard.snapshot(s)
            record = self._steps(total_steps, bar, stop)
            self.save_samples()
            self.save_checkpoint()
        if bar is not None:
            bar.close()
        return record

    def _steps(self, total_steps: int, bar, stop) -> dict:
        s, cfg = self.state, self.state.config.train
        s.G.train()
        s.D.train()
        record: dict = {}
        t0, steps_timed = time.perf_counter(), 0
        while s.step < total_steps:
            self._set_learning_rates()
            interval = s.config.self_condition.interval
            if self.self_cond is not None and interval and s.step - s.cluster_step >= interval:
                self._write_log(self._recluster(previous=s.cluster_labels))
                self._use_clusters()
            log = (s.step + 1) % cfg.log_interval == 0 or s.step + 1 == total_steps
            for i in range(cfg.d_steps):
                self.d_step(s.step * cfg.d_steps + i, log)
            self.g_step(log)
            steps_timed += 1
            if not bool(torch.isfinite(torch.stack(list(self.step_losses.values()))).all()):
                self._rollback(bar, ", ".join(f"{k} = {float(v)}" for k, v in
                                              self.step_losses.items()
                                              if not bool(torch.isfinite(v))))
                t0, steps_timed = time.perf_counter(), 0
                continue
            if log:
                record = self._log_record(t0, steps_timed)
                t0, steps_timed = time.perf_counter(), 0
                for cb in self.callbacks:
                    record.update(cb(self) or {})
                warnings = []
                if self.health is not None:
                    record.update(self.health.measure(self))
                    warnings = self.health.check(record)
                self._write_log(record)
                for warning in warnings:
                    self._write_log(warning)
                    self._warn(warning["message"], bar)
                if bar is not None:
                    bar.set_postfix(D=f"{record['loss/D']:.3f}", G=f"{record['loss/G']:.3f}")
            if cfg.sample_interval and s.step % cfg.sample_interval == 0:
                self.save_samples()
            if self.evaluator is not None and s.step % self.evaluator.interval == 0:
                self.evaluate()
            if cfg.checkpoint_interval and s.step % cfg.checkpoint_interval == 0:
                try:
                    self.save_checkpoint()
                except NonFiniteStateError as exc:
                    self._rollback(bar, f"{exc.tensor} is not finite")
                    t0, steps_timed = time.perf_counter(), 0
                    continue
            if bar is not None:
                bar.update(1)
            if stop.signum is not None:
                raise TrainingInterrupted(stop.signum, s.step, self.save_checkpoint())
        return record

    def _warn(self, message: str, bar) -> None:
        if self.is_main:
            hint = f"; remedies: gankit doctor {self.run_dir}" if self.run_dir else ""
            lead = "\n" if bar is not None else ""  # off the progress bar's line
            print(f"{lead}gankit: warning: {message}{hint}", file=sys.stderr)

    def _rollback(self, bar, bad: str) -> None:
        """A loss or a weight is NaN or infinite (``bad`` says which): back to the last good
        state with lower rates (or raise `TrainingDiverged`)."""
        event = self.guard.rollback(self.state, bad)
        self.last_real_view, self.last, self.step_losses = None, {}, {}
        if self.self_cond is not None:
            self._use_clusters()
        if self.is_main and self.run_dir is not None:  # drop the failed attempt's records
            truncate_log(self.run_dir / "log.jsonl", self.state.step)
        self._write_log(event)
        if self.health is not None:  # its rules replay the log up to the restored step
            self.health = HealthMonitor(self, self.state.config.health)
        self._warn(f"non-finite values at step {event['failed_step']} ({bad}); rolled back to "
                   f"step {event['step']} with the learning rates scaled by "
                   f"{event['lr_scale']:g}", bar)
        if bar is not None:
            bar.n = self.state.step
            bar.refresh()

    def _set_learning_rates(self) -> None:
        """Both optimisers' rates for the coming step: the configured rate times
        `lr_factor` (a pure function of the step, so resume needs no scheduler state) times
        the scale that divergence rollbacks left (``extra["lr_scale"]``)."""
        s = self.state
        factor = lr_factor(s.step, s.config.train, s.extra["lr_schedule"])
        factor *= s.extra.get("lr_scale", 1.0)
        for opt, comp in ((s.g_opt, s.config.g_optimizer), (s.d_opt, s.config.d_optimizer)):
            for group in opt.param_groups:
                group["lr"] = comp.options["lr"] * factor

    def _log_record(self, t0: float, steps: int) -> dict:
        values = {k: float(v) for k, v in self.last.items()}  # one host sync per log step
        values["time/step_ms"] = (time.perf_counter() - t0) * 1000.0 / max(1, steps)
        record = {"step": self.state.step, **values}
        return record

    def evaluate(self) -> dict:
        """Metrics on the EMA generator: logged, and the best checkpoint kept."""
        s = self.state
        results = self.evaluator(s)
        self._write_log({"step": s.step, **results})
        key = self.evaluator.best_key(results)
        if key is not None:
            from gankit.evaluation import lower_is_better

            value, best = results[key], s.extra.get("best_value")
            if best is None or (value < best if lower_is_better(key) else value > best):
                s.extra.update(best_value=value, best_key=key, best_step=s.step)
                if self.is_main and self.run_dir is not None:
                    save_checkpoint(self.run_dir, s, s.config.train.keep_checkpoints, "best")
        if self.is_main:
            shown = ", ".join(f"{k} {v:.4g}" for k, v in results.items())
            lead = "\n" if self.progress else ""
            print(f"{lead}gankit: step {s.step}: {shown}", file=sys.stderr)
        return results

    # -- outputs (main process only) -------------------------------------------------------
    def _write_log(self, record: dict) -> None:
        """Append ``record`` to ``log.jsonl`` as one line of strict JSON, a NaN or infinite
        value as the string "nan", "inf" or "-inf" (`gankit.utils.io.json_record`)."""
        if self.is_main and self.run_dir is not None:
            append_jsonl(self.run_dir / "log.jsonl", record)

    def generate_fixed(self) -> torch.Tensor:
        """G_ema's (or G's) samples of the grid's fixed latents, on the run's device."""
        s = self.state
        return generate(s.sample_net(ema=True), s.z_fixed, s.c_fixed, cpu=False)

    def save_samples(self) -> Path | None:
        if not self.is_main or self.run_dir is None:
            return None
        folder = self.run_dir / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"step_{self.state.step:08d}.png"
        fake = self.generate_fixed()
        if self.state.info.kind == "image":
            # a conditional grid has one class per column (c_fixed cycles through them)
            nrow = self.state.info.num_classes if self.state.c_fixed is not None else None
            save_grid(fake, path, nrow=nrow)
        else:
            scatter_png(fake.cpu().numpy(), path, real=self.data.x.numpy())
        return path

    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint of the current step (main process, with a run directory); the
        state also becomes the rollback point of divergence (`DivergenceGuard`).

        Raises:
            NonFiniteStateError: a tensor of the state is NaN or infinite; nothing is kept.
        """
        bad = self.guard.snapshot(self.state)
        if bad is not None:
            raise NonFiniteStateError(f"step {self.state.step}: {bad} holds non-finite "
                                      "values (NaN or inf); not saved", tensor=bad)
        if not self.is_main or self.run_dir is None:
            return None
        return save_checkpoint(self.run_dir, self.state, self.state.config.train.keep_checkpoints)


def _full(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 when autocast left it in a 16-bit type; other dtypes as they are."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def _as_float(out: dict) -> dict:
    """D's outputs (logits, features, ...) in float32, whatever precision D ran in."""
    return {k: _full(v) if torch.is_tensor(v) else v
            for k, v in out.items()}


def _grad_norm(net: torch.nn.Module) -> torch.Tensor:
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def _progress(start: int, total: int):
    from tqdm import tqdm

    return tqdm(total=total, initial=start, unit="step", dynamic_ncols=True, mininterval=0.5,
                file=sys.stderr)
