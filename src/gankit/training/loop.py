"""The one training loop. Every GAN variant is a config: the loop never asks which loss,
regulariser or hook is active, it only calls them (`gankit.components`).

One iteration: ``d_steps`` discriminator updates (each on a fresh real batch and fresh
fakes), then one generator update. All randomness comes from ``state.generator`` and the
data order is a pure function of (seed, step), which makes resume bitwise exact. Batches,
files, faults, learning rates, joint D scoring, unrolling and self-conditioning live in
the modules beside.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch.func import functional_call

from gankit.sampling import generate
from gankit.training.batches import BatchSource
from gankit.training.checkpoint import NonFiniteStateError
from gankit.training.context import StepContext
from gankit.training.faults import DivergenceGuard, TrainingInterrupted, stop_on_signals
from gankit.training.health import HealthMonitor
from gankit.training.joint import PairScoring
from gankit.training.outputs import RunOutputs, progress_bar, write_step_record
from gankit.training.schedule import schedule_for, set_learning_rates
from gankit.training.self_condition import SelfConditioning
from gankit.training.speed import deterministic, prepare_networks
from gankit.training.task import task_for
from gankit.training.unroll import Unroller
from gankit.training.updates import Updates
from gankit.utils.distributed import World
from gankit.utils.tensors import as_float, full_precision, grad_norm


class Trainer:
    """Runs G and D updates on ``data`` (a gankit Dataset) and writes the run directory."""

    def __init__(self, state, data, run_dir: str | Path | None, *, is_main: bool = True,
                 progress: bool = True, callbacks=(), evaluator=None, sync=None, world=None):
        self.state, self.data = state, data
        self.world = world = world or World()  # data parallelism (gankit.utils.distributed)
        is_main = is_main and world.is_main
        self.out = RunOutputs(run_dir, is_main, progress and is_main, state)
        self.run_dir = self.out.run_dir
        self.callbacks = list(callbacks)  # called as cb(trainer) after each logged step
        self.evaluator = evaluator  # a TrainingEvaluator or None
        cfg = state.config.train
        self.batches = BatchSource(data, cfg, state.device, state.conditional, world.shard)
        self.task = task_for(self)  # what a batch is and how G is fed (z or sources)
        self.task.fixed_inputs(state)
        regs = list(state.regularizers.values())
        self.d_regs = [r for r in regs if "D" in r.phases]
        self.g_regs = [r for r in regs if "G" in r.phases]
        # lazy regularisation (StyleGAN2): a term with interval k > 1 runs in its own
        # optimiser step after every k-th main update, scaled by k
        self.d_lazy = [r for r in self.d_regs if r.interval > 1]
        self.g_lazy = [r for r in self.g_regs if r.interval > 1]
        self.real_grad = any(r.needs_real_grad for r in self.d_regs)
        self.g_real_features = any(r.needs_real_features for r in self.g_regs) or \
            state.loss.g_needs_real  # e.g. the relativistic loss compares with real logits
        for note in prepare_networks(state, self.real_grad):  # compile, channels_last
            self.out.say(note)
        self.hooks = list(state.hooks.values())
        self.augment = list(state.augmentations.values())
        # autocast of G's and D's passes; backward + step: fp16 loss scaling, ``sync``
        # (gradient averaging across processes)
        self.updates = Updates(cfg.precision, state.device, sync or world.sync)
        self.updates.load_state_dict(state.extra.get("updates"))
        self._autocast, self.low_precision = self.updates.autocast, self.updates.low_precision
        self.pair = PairScoring(cfg, state.D)
        self.adversarial = cfg.d_steps > 0  # 0: G trains on its other terms, D idle
        self.last_real_view: tuple | None = None  # (D's input, labels) of the latest real batch
        self.last: dict[str, torch.Tensor] = {}  # the values of the next log record
        self.step_losses: dict[str, torch.Tensor] = {}  # this step's losses, checked finite
        self.guard = DivergenceGuard(cfg)
        self.unroller = Unroller(cfg.unrolled_steps, cfg.unrolled_order) \
            if cfg.unrolled_steps else None
        state.extra["lr_schedule"] = schedule_for(cfg, state.step, state.extra.get("lr_schedule"))
        self.health = HealthMonitor(self, state.config.health) \
            if state.config.health.enabled and is_main else None
        sc = state.config.self_condition
        self.strategies = [SelfConditioning(sc, cfg.seed)] if sc.clusters else []
        for strategy in self.strategies:
            strategy.start(self)

    # -- one update each ---------------------------------------------------------------
    def _d_view(self, x: torch.Tensor) -> torch.Tensor:
        """What D sees: the input after every augmentation (applied to real and fake alike)."""
        for aug in self.augment:  # per-sample draws of the global batch, as in one process
            x = self.batches.per_sample(aug, x, self.state.step, self.state.generator)
        return x

    def d_objective(self, D, data_step: int, update: int, g_grad: bool = False,
                    regs=None, gan: bool = True, main: bool = False) -> tuple:
        """D's loss on real batch ``data_step`` and fresh fakes: the GAN loss (without
        ``gan``: none) plus the penalties ``regs`` (default: every D-phase term due at D update
        number ``update``, a term running on every ``interval``-th one).

        ``D`` is a module or the unrolled critic's functional view. With ``g_grad`` the fakes
        keep G's graph (their BatchNorm statistics go to copies). In the ``main`` D's update
        the hooks may swap fakes (CycleGAN's image pool). Returns (loss, real_out, fake_out,
        (real view, labels) detached).
        """
        s = self.state
        if regs is None:
            regs = [r for r in self.d_regs if update % r.interval == 0]
        real, labels = self.task.real(data_step, s.step)  # labels: D's condition of reals
        for hook in self.hooks:  # e.g. progressive growing's current resolution
            real = hook.prepare_real(s, real)
        with torch.set_grad_enabled(g_grad), self._autocast():
            g_in, g_c, fake_labels = self.task.fake_inputs(data_step, s.step,
                                                           self.batches.size(s.step))
            buffers = {n: b.clone() for n, b in s.G.named_buffers()} if g_grad else None
            fake = full_precision(functional_call(s.G, buffers, (g_in, g_c)) if g_grad
                                  else s.G(g_in, g_c))
        for hook in self.hooks if main else ():
            fake = hook.prepare_fake(s, fake)
        if any(r.needs_real_grad for r in regs):
            real.requires_grad_(True)
        real_view = self._d_view(real)
        with self._autocast():
            real_out, fake_out = self.pair.score(D, real_view, labels, self._d_view(fake),
                                                 fake_labels, s.step)
        loss = s.loss.d_loss(real_out["logits"], fake_out["logits"]) if gan else 0.0
        ctx = StepContext(s.G, D, real, fake, labels, real_out["logits"], fake_out["logits"],
                          s.step, s.generator, phase="D", fake_labels=fake_labels,
                          real_out=real_out, fake_out=fake_out, real_view=real_view,
                          pack=s.config.pack, low_precision=self.low_precision,
                          shard=self.batches.shard)
        for reg in regs:
            loss = loss + reg(ctx)
        return loss, real_out, fake_out, (real_view.detach(), labels)

    def d_update(self, D, opt, data_step: int, update: int, log: bool = False,
                 main: bool = True) -> tuple:
        """One optimiser step of module ``D`` on `d_objective` (the main D, or the unrolled
        critic's copy when not ``main``); returns the real batch's (view, labels)."""
        s = self.state
        regs = [r for r in self.d_regs if update % r.interval == 0
                and not (main and r in self.d_lazy)]  # the main D's lazy terms: own step
        loss, real_out, fake_out, real_view = self.d_objective(D, data_step, update,
                                                               regs=regs, main=main)
        opt.zero_grad(set_to_none=True)
        self.updates.backward(loss, opt, "D")
        if main:
            self.step_losses["loss/D"], self.last_real_view = loss.detach(), real_view
            if log:
                r, f = real_out["logits"].detach(), fake_out["logits"].detach()
                self.last.update({"loss/D": loss.detach(), "scores/real": r.mean(),
                                  "scores/fake": f.mean(), "grad/D": grad_norm(D)})
                cut = s.loss.real_threshold  # what "D says real" means for this loss
                if cut is not None:
                    self.last.update({"health/d_acc_real": (r > cut).float().mean(),
                                      "health/d_acc_fake": (f <= cut).float().mean()})
        self.updates.step(opt, D, "D")
        for hook in self.hooks:  # constraints hold for every D, the unrolled copy included
            hook.constrain_d(D)
        if due := [r for r in self.d_lazy if main and update % r.interval == 0]:
            self._lazy_step("D", D, opt, self.d_objective(D, data_step, update, regs=due,
                                                          gan=False)[0])
        for hook in self.hooks if main else ():
            hook.after_d_step(s, s.step)
        return real_view

    def _lazy_step(self, net: str, module, opt, loss: torch.Tensor) -> None:
        """The optimiser step of ``net``'s due lazy terms (``loss``), after its main update."""
        opt.zero_grad(set_to_none=True)
        self.updates.backward(loss, opt, net)
        self.step_losses[f"loss/{net}_reg"] = loss.detach()
        self.updates.step(opt, module, net)
        for hook in self.hooks if net == "D" else ():
            hook.constrain_d(module)

    def d_step(self, data_step: int, log: bool) -> None:
        """The main D update number ``data_step`` (= G step * d_steps + i)."""
        self.d_update(self.state.D, self.state.d_opt, data_step, data_step, log)

    def g_step(self, log: bool) -> None:
        s = self.state
        D, real_view = s.D, self.last_real_view
        if self.unroller is not None:
            D, real_view = self.unroller.critic(self)
        D.requires_grad_(False)
        regs = [r for r in self.g_regs if s.step % r.interval == 0 and r not in self.g_lazy]
        loss, fake = self.g_objective(D, real_view, regs, gan=self.adversarial, log=log)
        s.g_opt.zero_grad(set_to_none=True)
        self.updates.backward(loss, s.g_opt, "G")
        self.step_losses["loss/G"] = loss.detach()
        if log:
            out_grad = fake.grad.flatten(1).norm(dim=1).mean() if fake.grad is not None else (
                torch.zeros((), device=s.device))
            self.last.update({"loss/G": loss.detach(), "grad/G": grad_norm(s.G),
                              "health/grad_G_output": out_grad})
        self.updates.step(s.g_opt, s.G, "G")
        if due := [r for r in self.g_lazy if s.step % r.interval == 0]:
            self._lazy_step("G", s.G, s.g_opt,
                            self.g_objective(D, real_view, due, gan=False)[0])
        D.requires_grad_(True)
        s.step += 1
        for hook in self.hooks:
            hook.after_g_step(s, s.step)

    def g_objective(self, D, real_view, regs, gan: bool = True, log: bool = False) -> tuple:
        """G's loss on fresh fakes scored by ``D`` (without ``gan``: none) plus the
        G-phase terms ``regs``; returns (loss, fakes), the fakes' gradient kept with ``log``.
        A translator's fakes come from the batch of the step's last D update."""
        s = self.state
        n = self.batches.size(s.step)
        stride = self.batches.d_steps  # D updates per step (at least 1)
        data_step = s.step * stride + stride - 1
        with self._autocast():
            g_in, g_c, fake_labels = self.task.fake_inputs(data_step, s.step, n)
            fake = full_precision(s.G(g_in, g_c))
        if log:
            fake.retain_grad()
        real_out: dict = {}
        fake_out: dict = {"logits": None}  # no D (train.d_steps=0): nothing scores the fakes
        with self._autocast():
            if not self.adversarial:
                pass
            elif self.pair.joint(s.step) and real_view is not None:
                real_out, fake_out = self.pair.score(D, *real_view, self._d_view(fake),
                                                     fake_labels, s.step)
                real_out = {k: v.detach() for k, v in real_out.items()}
            else:
                fake_out = as_float(D.score(self._d_view(fake), fake_labels))
                if self.g_real_features and real_view is not None:
                    with torch.no_grad():  # the D that scores the fakes scores the reals too
                        real_out = as_float(D.score(*real_view))
        loss = s.loss.g_loss(fake_out["logits"], real_out.get("logits")) if gan else 0.0
        ctx = StepContext(s.G, D, self.task.target(data_step, s.step), fake, None, None,
                          fake_out["logits"], s.step, s.generator, phase="G",
                          fake_labels=fake_labels, real_out=real_out, fake_out=fake_out,
                          pack=s.config.pack, low_precision=self.low_precision,
                          source=self.task.source(data_step, s.step))
        for reg in regs:
            loss = loss + reg(ctx)
        return loss, fake

    # -- the loop ------------------------------------------------------------------------
    def run(self, total_steps: int) -> dict:
        """Train until ``state.step == total_steps``; returns the last log record.

        Raises:
            TrainingInterrupted: SIGINT or SIGTERM; the step reached is checkpointed.
            TrainingDiverged: a loss stayed non-finite (`gankit.training.faults`).
        """
        s, cfg = self.state, self.state.config.train
        bar = progress_bar(s.step, total_steps) if self.out.progress else None
        record: dict = {}
        with stop_on_signals() as stop, deterministic(cfg.deterministic):
            if self.guard.good_step != s.step:  # a trainer run again keeps its last one
                self.guard.snapshot(s)
            s.G.train()
            s.D.train()
            t0, timed = time.perf_counter(), 0
            deadline = time.monotonic() + 60.0 * cfg.time_limit if cfg.time_limit else None
            while s.step < total_steps:
                set_learning_rates(s)
                for strategy in self.strategies:
                    strategy.before_step(self)
                log = (s.step + 1) % cfg.log_interval == 0 or s.step + 1 == total_steps
                for i in range(cfg.d_steps):
                    self.d_step(s.step * cfg.d_steps + i, log)
                self.g_step(log)
                timed += 1
                bad = {k: float(v) for k, v in self.world.mean(self.step_losses).items()
                       if not bool(torch.isfinite(v))}
                if bad:
                    self.guard.recover(self, ", ".join(f"{k} = {v}" for k, v in bad.items()),
                                       bar)
                    t0, timed = time.perf_counter(), 0
                    continue
                if log:
                    record = write_step_record(self, t0, timed, bar)
                    t0, timed = time.perf_counter(), 0
                if cfg.sample_interval and s.step % cfg.sample_interval == 0:
                    self.save_samples()
                if self.evaluator is not None and s.step % self.evaluator.interval == 0:
                    self.out.evaluation(s, self.evaluator)
                if cfg.checkpoint_interval and s.step % cfg.checkpoint_interval == 0:
                    try:
                        self.save_checkpoint()
                    except NonFiniteStateError as exc:
                        self.guard.recover(self, f"{exc.tensor} is not finite", bar)
                        t0, timed = time.perf_counter(), 0
                        continue
                if bar is not None:
                    bar.update(1)
                if (signum := self.world.stop_signal(stop.signum)) is not None:  # all at once
                    raise TrainingInterrupted(signum, s.step, self.save_checkpoint())
                if deadline is not None and self.world.stop_signal(
                        int(time.monotonic() >= deadline) or None) and s.step < total_steps:
                    self.out.say(f"train.time_limit: {cfg.time_limit:g} minutes reached at "
                                 f"step {s.step} of {total_steps}; --resume continues")
                    break
            if self.out.samples_step != s.step:  # not written by the last sample_interval
                self.save_samples()
            self.save_checkpoint()
        if bar is not None:
            bar.close()
        return record

    # -- outputs ---------------------------------------------------------------------------
    def generate_fixed(self) -> torch.Tensor:
        """G_ema's (or G's) samples of the grid's fixed latents, on the run's device."""
        s = self.state
        return generate(s.sample_net(ema=True), s.z_fixed, s.c_fixed, cpu=False)

    def save_samples(self) -> Path | None:
        if not self.out.writes:
            return None
        points = self.data.x.numpy() if self.state.info.kind == "points" else None
        images, nrow = self.task.grid(self.generate_fixed())
        return self.out.samples(self.state, images, points, nrow=nrow)

    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint of the current step; the state also becomes the rollback point
        of divergence (`DivergenceGuard`).

        Raises:
            NonFiniteStateError: a tensor of the state is NaN or infinite; nothing is kept.
        """
        self.state.extra["updates"] = self.updates.state_dict()
        self.guard.snapshot(self.state, strict=True)
        return self.out.checkpoint(self.state)
