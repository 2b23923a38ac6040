"""What a run writes to its directory: the log, warnings, sample grids, checkpoints and the
metrics evaluated during training. Only the main process writes (``is_main``), so the loop
can run under data parallelism; without a run directory nothing is written."""

from __future__ import annotations

import sys
from pathlib import Path

from gankit.training.checkpoint import save_checkpoint
from gankit.utils.images import save_grid, scatter_png
from gankit.utils.io import append_jsonl


class RunOutputs:
    """The files of one run.

    Args:
        run_dir: the run directory, or None (an in-memory run writes nothing).
        is_main: whether this process writes.
        progress: whether a progress bar shares stderr (messages then start a new line).
    """

    def __init__(self, run_dir: str | Path | None, is_main: bool = True,
                 progress: bool = False) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.writes = is_main and self.run_dir is not None
        self.is_main, self.progress = is_main, progress

    def log(self, record: dict) -> None:
        """Append ``record`` to ``log.jsonl`` as one line of strict JSON, a NaN or infinite
        value as the string "nan", "inf" or "-inf" (`gankit.utils.io.json_record`)."""
        if self.writes:
            append_jsonl(self.run_dir / "log.jsonl", record)

    def say(self, message: str) -> None:
        """Print ``gankit: MESSAGE`` on stderr (main process), off a progress bar's line."""
        if self.is_main:
            lead = "\n" if self.progress else ""
            print(f"{lead}gankit: {message}", file=sys.stderr)

    def warn(self, message: str) -> None:
        """A warning on stderr, pointing at ``gankit doctor`` for remedies."""
        hint = f"; remedies: gankit doctor {self.run_dir}" if self.run_dir else ""
        self.say(f"warning: {message}{hint}")

    def samples(self, state, fake, real_points=None) -> Path | None:
        """``samples/step_*.png``: a grid of ``fake`` (one class per column for a
        conditional run), or a scatter plot of 2D points over ``real_points``."""
        if not self.writes:
            return None
        path = self.run_dir / "samples" / f"step_{state.step:08d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if state.info.kind == "image":
            nrow = state.info.num_classes if state.c_fixed is not None else None
            save_grid(fake, path, nrow=nrow)
        else:
            scatter_png(fake.cpu().numpy(), path, real=real_points)
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
    """A tqdm bar of training steps on stderr."""
    from tqdm import tqdm

    return tqdm(total=total, initial=start, unit="step", dynamic_ncols=True, mininterval=0.5,
                file=sys.stderr)
