"""What a run writes to its directory: the log, warnings, sample grids, checkpoints and the
metrics evaluated during training, and their copies in the log sinks of ``log.sinks``
(`gankit.training.sinks`: TensorBoard, W&B). Only the main process writes (``is_main``), so
the loop can run under data parallelism; without a run directory nothing is written."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from gankit.training.checkpoint import save_checkpoint
from gankit.training.sinks import Sink, open_sinks, scalar_values
from gankit.utils import progress as _progress
from gankit.utils.images import save_grid, scatter_png
from gankit.utils.io import append_jsonl, truncate_log


class RunOutputs:
    """The files of one run.

    Args:
        run_dir: the run directory, or None (an in-memory run writes nothing).
        is_main: whether this process writes.
        progress: whether a progress bar is wanted; it shows when stderr is a terminal
            (`gankit.utils.progress`), and messages are then printed above it.
        state: the run's TrainState: its config's ``log.sinks`` are opened, continuing
            after its step (a resume's). None: no sinks.
    """

    def __init__(self, run_dir: str | Path | None, is_main: bool = True,
                 progress: bool = False, state=None) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.writes = is_main and self.run_dir is not None
        self.is_main = is_main
        self.progress = is_main and _progress.shows_progress(progress)
        self.sinks: list[Sink] = []
        self._sink_setup = None  # (names, config) to open the sinks again after close()
        self._image_step = -1  # the step of the last grid sent to the sinks
        self.samples_step = -1  # the step of the last grid written
        if self.writes and state is not None and state.config.log.sinks:
            names, config = state.config.log.sinks, state.config.to_dict()
            self._sink_setup = (names, config)
            self.sinks = open_sinks(names, self.run_dir, state.step, config)

    def _open_sinks(self) -> list[Sink]:
        """The sinks, opened again when a closed run writes more (a trainer run again)."""
        if not self.sinks and self._sink_setup is not None:
            names, config = self._sink_setup
            self.sinks = open_sinks(names, self.run_dir, None, config)
        return self.sinks

    def log(self, record: dict) -> None:
        """Append ``record`` to ``log.jsonl`` as one line of strict JSON, a NaN or infinite
        value as the string "nan", "inf" or "-inf" (`gankit.utils.io.json_record`); its
        numbers go to the sinks at its step."""
        if self.writes:
            append_jsonl(self.run_dir / "log.jsonl", record)
            values = scalar_values(record)
            if values and "step" in record:
                for sink in self._open_sinks():
                    sink.scalars(int(record["step"]), values)

    def rewind(self, step: int) -> None:
        """Drop what was logged after ``step`` (a rollback continues from there): from
        ``log.jsonl``, and hidden in the sinks."""
        if self.writes:
            truncate_log(self.run_dir / "log.jsonl", step)
            for sink in self._open_sinks():
                sink.rewind(step)

    def close(self) -> None:
        """Flush and close the sinks (at the end of training, and when it stops early)."""
        sinks, self.sinks = self.sinks, []
        for sink in sinks:
            sink.close()

    def say(self, message: str) -> None:
        """Print ``gankit: MESSAGE`` on stderr (main process), above a progress bar."""
        if self.is_main:
            _progress.write(f"gankit: {message}")

    def warn(self, message: str) -> None:
        """A warning on stderr, pointing at ``gankit doctor`` for remedies."""
        hint = f"; remedies: gankit doctor {self.run_dir}" if self.run_dir else ""
        self.say(f"warning: {message}{hint}")

    def samples(self, state, fake, real_points=None, nrow: int | None = None) -> Path | None:
        """``samples/step_*.png``: a grid of ``fake`` (``nrow`` images per row; by default
        one class per column for a conditional run), a scatter plot of 2D points over
        ``real_points``, or for a table ``samples/step_*.csv``: the rows decoded."""
        if not self.writes:
            return None
        path = self.run_dir / "samples" / f"step_{state.step:08d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if state.info.table is not None:  # a table: the decoded rows as CSV
            from gankit.tabular.table import write_csv
            from gankit.tabular.transform import TableTransform

            transform = TableTransform.from_state(state.info.table)
            path = path.with_suffix(".csv")
            write_csv(transform.decode(fake[:, :transform.dim], seed=0), path)
            self.samples_step = state.step
            return path
        if state.info.kind == "image":
            if nrow is None and state.c_fixed is not None:
                nrow = state.info.num_classes
            save_grid(fake, path, nrow=nrow)
        else:  # points of more than 2 dims: their first two coordinates
            real = real_points[:, :2] if real_points is not None else None
            scatter_png(fake[:, :2].cpu().numpy(), path, real=real)
        self.samples_step = state.step
        # once per step: the end of training may save the last step's grid again
        if self._open_sinks() and self._image_step != state.step:
            from PIL import Image

            self._image_step = state.step
            with Image.open(path) as img:  # the sinks get exactly the grid of the file
                pixels = np.asarray(img.convert("RGB"))  # [H, W, 3] uint8
            for sink in self.sinks:
                sink.image("samples", state.step, pixels)
        return path

    def checkpoint(self, state, name: str | None = None) -> Path | None:
        """Write a checkpoint of ``state`` (``checkpoints/NAME.*`` when named, else the
        step's, pruned to the last ``train.keep_checkpoints``)."""
        if not self.writes:
            return None
        return save_checkpoint(self.run_dir, state, state.config.train.keep_checkpoints, name)

    def evaluation(self, state, evaluator) -> dict:
        """Score G_ema with ``evaluator``: logged, printed, and ``checkpoints/best.*`` kept
        by ``eval.best``."""
        from gankit.evaluation import lower_is_better

        results = evaluator(state)
        self.log({"step": state.step, **results})
        key = evaluator.best_key(results)
        if key is not None:
            value, best = results[key], state.extra.get("best_value")
            if best is None or (value < best if lower_is_better(key) else value > best):
                state.extra.update(best_value=value, best_key=key, best_step=state.step)
                self.checkpoint(state, "best")
        self.say(f"step {state.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in results.items()))
        return results


def progress_bar(start: int, total: int):
    """A bar of training steps on stderr (`gankit.utils.progress.progress_bar`)."""
    return _progress.progress_bar(total, initial=start, unit="step")


def write_step_record(trainer, t0: float, timed: int, bar) -> dict:
    """The log record of ``trainer``'s step (its losses averaged over processes, the step
    time since ``t0`` over ``timed`` steps, callbacks' and health values), written with any
    health warning; the progress bar shows the losses."""
    record = {"step": trainer.state.step,
              **{k: float(v) for k, v in trainer.world.mean(trainer.last).items()}}
    record["time/step_ms"] = (time.perf_counter() - t0) * 1000.0 / max(1, timed)
    record.update(trainer.updates.log_values())
    for cb in trainer.callbacks:
        record.update(cb(trainer) or {})
    warnings = []
    if trainer.health is not None:
        record.update(trainer.health.measure(trainer))
        warnings = trainer.health.check(record)
    trainer.out.log(record)
    for warning in warnings:
        trainer.out.log(warning)
        trainer.out.warn(warning["message"])
    if bar is not None:
        bar.set_postfix({k[len("loss/"):]: f"{record[k]:.3f}" for k in ("loss/D", "loss/G")
                         if k in record})
    return record
