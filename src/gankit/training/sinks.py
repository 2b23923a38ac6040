"""Log sinks: copies of a run's log in other tools (``log.sinks`` in the config).

``log.jsonl`` stays the source of truth; a sink mirrors what goes into it: every numeric
value of every record (same keys, at the record's step; the training-time evaluations are
records too) and the sample grids (as images, at their step). A sink is a small `Sink`
object in the ``SINKS`` registry; `gankit.training.outputs.RunOutputs` opens the
configured ones, feeds them and closes them.

- ``tensorboard``: event files under ``RUN/tensorboard/`` (``torch.utils.tensorboard``'s
  SummaryWriter; extra ``gankit[tensorboard]``). A resumed run appends a new event file
  to the same folder whose purge step hides what the first run logged after the
  checkpoint, as ``log.jsonl`` drops it.
- ``wandb``: a Weights & Biases run in ``RUN/wandb/`` (extra ``gankit[wandb]``), offline
  unless ``WANDB_MODE`` is set (``wandb sync RUN/wandb/offline-run-*`` uploads it later);
  a resume continues the same W&B run.
"""

from __future__ import annotations

import importlib
import os
import uuid
from pathlib import Path
from typing import Protocol

import numpy as np

from gankit.registry import SINKS
from gankit.utils.io import atomic_write_text


class Sink(Protocol):
    """What `RunOutputs` calls; a registered sink is built as ``cls(run_dir, start_step,
    config)`` (``config`` the run's as a plain dict) and declares its ``package`` and
    ``extra``."""

    package: str  # the module it imports, checked before any work
    extra: str  # the pip extra that installs it: gankit[EXTRA]

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """The numbers of one log record at ``step``."""

    def image(self, tag: str, step: int, image: np.ndarray) -> None:
        """An image [H, W, 3] uint8 at ``step``."""

    def rewind(self, step: int | None) -> None:
        """Hide what was logged after ``step`` (a rollback continues there)."""

    def close(self) -> None:
        """Flush and close."""


def check_sink_names(names) -> None:
    """Refuse an unknown or repeated sink name (``log.sinks``), listing the valid ones."""
    for name in names:
        try:
            SINKS.get(name)
        except ValueError as exc:  # it lists the valid names and the closest one
            raise ValueError(f"log.sinks: {exc}") from None
    if len(set(names)) != len(names):
        raise ValueError(f"log.sinks names a sink twice: {list(names)}")


def check_sinks_installed(names) -> None:
    """Fail before any work when a sink's package is missing, naming the extra.

    Raises:
        ValueError: ``log.sinks`` names a sink whose package cannot be imported.
    """
    for name in names:
        sink = SINKS.get(name)
        try:
            importlib.import_module(sink.package)
        except ImportError:
            # the wording of gankit.utils.extras.require on main, which can replace this
            raise ValueError(f"log.sinks={name} needs {sink.package} (not installed): "
                             f"pip install 'gankit[{sink.extra}]'") from None


def open_sinks(names, run_dir: Path, start_step: int | None, config: dict) -> list[Sink]:
    """The sinks ``names`` of the run in ``run_dir``, continuing after ``start_step``: what
    they hold of later steps is hidden (None: nothing is)."""
    check_sinks_installed(names)
    return [SINKS.get(name)(run_dir, start_step, config) for name in names]


def scalar_values(record: dict) -> dict[str, float]:
    """The numbers of a log record other than its step (strings and flags are not scalars)."""
    return {k: float(v) for k, v in record.items()
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}


@SINKS.register("tensorboard", "TensorBoard event files in RUN/tensorboard/ "
                "(pip install 'gankit[tensorboard]')")
class TensorBoardSink:
    """TensorBoard event files in ``RUN/tensorboard/``."""

    package, extra = "tensorboard", "tensorboard"

    def __init__(self, run_dir: Path, start_step: int | None = 0,
                 config: dict | None = None) -> None:
        self.folder = Path(run_dir) / "tensorboard"
        self._writer = None
        self.rewind(start_step)

    def rewind(self, step: int | None) -> None:
        """Hide what was logged after ``step`` (a resume or a rollback continues there):
        a new event file whose purge step makes TensorBoard drop the later events of the
        files before it (None: a new file that hides nothing)."""
        from torch.utils.tensorboard import SummaryWriter

        if self._writer is not None:
            self._writer.close()
        self._writer = SummaryWriter(str(self.folder),
                                     purge_step=None if step is None else step + 1)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self._writer.add_scalar(key, value, global_step=step)

    def image(self, tag: str, step: int, image: np.ndarray) -> None:
        """``image``: uint8 [H, W, 3]."""
        self._writer.add_image(tag, image, global_step=step, dataformats="HWC")

    def close(self) -> None:
        self._writer.close()  # flushes


@SINKS.register("wandb", "a Weights & Biases run in RUN/wandb/, offline unless WANDB_MODE is "
                "set (pip install 'gankit[wandb]')")
class WandbSink:
    """A W&B run in ``RUN/wandb/``; its id is kept in ``RUN/wandb/gankit_run_id`` so that a
    resume continues it."""

    package, extra = "wandb", "wandb"

    def __init__(self, run_dir: Path, start_step: int | None = 0,
                 config: dict | None = None) -> None:
        import wandb

        self._wandb = wandb
        folder = Path(run_dir) / "wandb"
        folder.mkdir(parents=True, exist_ok=True)
        id_file = folder / "gankit_run_id"
        if id_file.is_file():
            run_id = id_file.read_text().strip()
        else:
            run_id = uuid.uuid4().hex[:12]
            atomic_write_text(id_file, run_id + "\n")
        # offline by default: training never waits on (or fails for) the network
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "gankit"),
                              name=Path(run_dir).resolve().name, id=run_id, resume="allow",
                              dir=str(run_dir), config=config or {},
                              mode=os.environ.get("WANDB_MODE", "offline"))

    def rewind(self, step: int) -> None:
        """Nothing: W&B cannot rewind a run, and may ignore the steps logged again (online
        it drops a step below its current one with a warning)."""

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def image(self, tag: str, step: int, image: np.ndarray) -> None:
        self.run.log({tag: self._wandb.Image(image)}, step=step)

    def close(self) -> None:
        self.run.finish()
