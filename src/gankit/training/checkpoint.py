"""Checkpoints: the full training state (``.pt``, loadable with ``weights_only=True``) and
G / G_ema weights (``.safetensors``), written atomically; the last K are kept.

A checkpoint ``step_00001000`` is complete when both files exist, both open (the ``.pt``
as a torch archive, the ``.safetensors`` header) and both hold step 1000.
`list_checkpoints` lists the complete ones and warns about any other ``step_*.pt``, so
resume (`load_latest`) and sampling (`gankit.api.load`) use the same checkpoints. Both
files go to temp files before either is renamed into place, the ``.pt`` last, so a crash
or a full disk leaves the previous checkpoint the newest complete one. A state holding a
NaN or infinite tensor is never written (`NonFiniteStateError`).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from safetensors import safe_open
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from gankit.utils.console import warn
from gankit.utils.io import atomic_write_all, remove_stale_temps

_NAME = re.compile(r"^step_(\d{8,})\.pt$")
_WEIGHTS_NAME = re.compile(r"^step_\d{8,}\.safetensors$")
T = TypeVar("T")


class NonFiniteStateError(ValueError):
    """A training state or a weights file holds a NaN or infinite tensor (``tensor`` names
    it, when known)."""

    def __init__(self, message: str, tensor: str | None = None) -> None:
        super().__init__(message)
        self.tensor = tensor


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def checkpoint_stem(run_dir: str | Path, step: int) -> Path:
    """``RUN_DIR/checkpoints/step_XXXXXXXX``: add ``.pt`` or ``.safetensors``."""
    return checkpoint_dir(run_dir) / f"step_{step:08d}"


def checkpoint_step(path: Path) -> int:
    """The step in a checkpoint's name (``step_00001000.pt`` -> 1000)."""
    return int(path.stem[len("step_"):])


def kept_steps(paths: list[Path]) -> str:
    """``"2, 4"``: the steps of ``paths``, for messages."""
    return ", ".join(str(checkpoint_step(p)) for p in paths) or "none"


def nonfinite_tensor(tree, prefix: str = "") -> str | None:
    """The dotted name (e.g. ``D.main.0.weight``, ``d_opt.state.0.exp_avg``) of the first
    floating tensor in ``tree`` (a tensor, or dicts and lists of them) holding a NaN or an
    infinity; None when every one is finite."""
    if torch.is_tensor(tree):
        finite = not tree.is_floating_point() or bool(torch.isfinite(tree).all())
        return None if finite else prefix
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, (list, tuple)):
        items = enumerate(tree)
    else:
        return None
    for key, value in items:
        name = nonfinite_tensor(value, f"{prefix}.{key}" if prefix else str(key))
        if name is not None:
            return name
    return None


def save_checkpoint(run_dir: str | Path, state, keep: int, name: str | None = None) -> Path:
    """Write ``checkpoints/step_XXXXXXXX.{safetensors,pt}`` and prune to the last ``keep``.

    With ``name`` (e.g. ``"best"``) the files are ``checkpoints/NAME.*``, never pruned. Stale
    temp files of killed writes in ``checkpoints/`` are removed first.

    Raises:
        NonFiniteStateError: a floating tensor of the state (G, D, G_ema, optimisers, ...)
            holds a NaN or an infinity; nothing is written.
    """
    folder = checkpoint_dir(run_dir)
    stem = folder / name if name else checkpoint_stem(run_dir, state.step)
    full = state.state_dict()
    bad = nonfinite_tensor(full)
    if bad is not None:
        saved = list_checkpoints(run_dir, quiet=True)
        fix = (f"the last checkpoint, step {checkpoint_step(saved[-1])}, is kept: see gankit "
               f"doctor {run_dir}, then continue from it with --resume {run_dir}" if saved else
               f"no checkpoint was saved before: see gankit doctor {run_dir}")
        raise NonFiniteStateError(
            f"not saving checkpoint {stem}: {bad} holds non-finite values (NaN or inf), the "
            f"run diverged by step {state.step}; {fix}", tensor=bad)
    tensors = {f"G.{k}": v.detach().cpu().contiguous() for k, v in full["G"].items()}
    if full["G_ema"] is not None:
        tensors.update({f"G_ema.{k}": v.detach().cpu().contiguous()
                        for k, v in full["G_ema"].items()})
    meta = {"config": json.dumps(full["config"]), "data_info": json.dumps(full["data_info"]),
            "step": str(state.step)}
    buf = io.BytesIO()
    torch.save(full, buf)
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(folder)
    atomic_write_all([(stem.with_suffix(".safetensors"), st_save(tensors, metadata=meta)),
                      (stem.with_suffix(".pt"), buf.getvalue())])
    prune(folder, keep)
    return stem.with_suffix(".pt")


def checkpoint_problem(path: Path) -> str | None:
    """Why ``path`` (a ``step_N.pt``) is not a complete checkpoint; None when it is."""
    step = checkpoint_step(path)
    weights = path.with_suffix(".safetensors")
    if not weights.is_file():
        return f"no {weights.name} beside it"
    try:
        with safe_open(str(weights), framework="pt") as f:
            held = (f.metadata() or {}).get("step")
    except Exception as exc:  # a torn or foreign file
        return f"{weights.name} is unreadable ({_first_line(exc)})"
    if held != str(step):
        return f"{weights.name} holds step {held}"
    try:  # mmap: reads the pickled structure, not the tensors
        held = torch.load(path, map_location="cpu", weights_only=True, mmap=True)["step"]
    except Exception as exc:
        return f"unreadable ({_first_line(exc)})"
    return None if held == step else f"it holds step {held}"


def list_checkpoints(run_dir: str | Path, *, quiet: bool = False) -> list[Path]:
    """Complete checkpoints (``.pt`` files), oldest first.

    Any other ``step_*.pt`` (without its ``.safetensors``, unreadable, or holding another
    step) is left out with a warning naming it and why, unless ``quiet``.
    """
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name)))
    complete = []
    for _, path in found:
        problem = checkpoint_problem(path)
        if problem is None:
            complete.append(path)
        elif not quiet:
            warn(f"{path}: skipped, not a complete checkpoint: {problem}")
    return complete


def prune(folder: Path, keep: int) -> None:
    """Keep the newest ``keep`` (at least 1) complete checkpoints in ``folder``.

    An older one loses its ``.pt`` first, which makes it incomplete at once (a kill before
    its ``.safetensors`` goes leaves an orphan, not a checkpoint); then every
    ``step_*.safetensors`` without its ``.pt`` is removed. Other files are left alone.
    """
    for old in list_checkpoints(folder.parent, quiet=True)[:-max(1, keep)]:
        old.unlink(missing_ok=True)
        old.with_suffix(".safetensors").unlink(missing_ok=True)
    for weights in folder.glob("step_*.safetensors"):
        if _WEIGHTS_NAME.match(weights.name) and not weights.with_suffix(".pt").exists():
            weights.unlink(missing_ok=True)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    return torch.load(path, map_location=map_location, weights_only=True)


def load_newest(run_dir: str | Path, read: Callable[[Path], T],
                paths: list[Path] | None = None) -> tuple[T, Path]:
    """``(read(path), path)`` for the newest of ``paths`` (default: the run's complete
    checkpoints) that ``read`` can read; each failure warns and falls back to the one before.

    Raises:
        FileNotFoundError: the run has no checkpoint.
        ValueError: none can be read.
    """
    paths = list_checkpoints(run_dir) if paths is None else paths
    if not paths:
        raise no_checkpoint_error(run_dir)
    errors = []
    for path in reversed(paths):
        try:
            return read(path), path
        except Exception as exc:  # a corrupt file that still opens: try the previous one
            warn(f"{path}: skipped, unreadable ({_first_line(exc)})")
            errors.append(f"{path.name}: {_first_line(exc)}")
    raise ValueError(f"{run_dir}: no readable checkpoint: {'; '.join(errors)}")


def load_latest(run_dir: str | Path, map_location="cpu") -> tuple[dict, Path]:
    """Load the newest readable complete checkpoint (see `load_newest`).

    Raises:
        FileNotFoundError: the run has no checkpoint.
        ValueError: none can be read.
        NonFiniteStateError: the checkpoint holds a NaN or infinite tensor.
    """
    paths = list_checkpoints(run_dir)
    ckpt, path = load_newest(run_dir, lambda p: load_checkpoint(p, map_location), paths)
    bad = nonfinite_tensor(ckpt)
    if bad is not None:
        raise NonFiniteStateError(
            f"{path}: {bad} holds non-finite values (NaN or inf), so training cannot continue "
            f"from it; to continue from an earlier checkpoint (kept steps: "
            f"{kept_steps(paths)}), move {path.stem}.pt and {path.stem}.safetensors out of "
            f"{path.parent}")
    return ckpt, path


def no_checkpoint_error(run_dir: str | Path) -> FileNotFoundError:
    """The error for a run directory without a complete checkpoint."""
    run_dir = Path(run_dir)
    if (run_dir / "config.yaml").is_file():
        return FileNotFoundError(
            f"{run_dir}: no checkpoint found under {checkpoint_dir(run_dir)}: the run has "
            f"saved none yet; if it was stopped before its first save, start it again with "
            f"gankit train PRESET --out {run_dir} (which replaces it)")
    return FileNotFoundError(
        f"{run_dir}: no checkpoint found under {checkpoint_dir(run_dir)}; "
        "is this a gankit run directory (gankit train ... --out RUN_DIR)?")


def load_weights(path: str | Path) -> tuple[dict, dict]:
    """Read a ``.safetensors`` weights file: (tensors, metadata)."""
    data = Path(path).read_bytes()
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    return st_load(data), meta


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
