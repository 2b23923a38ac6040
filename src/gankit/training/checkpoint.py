"""Checkpoints: the full training state (``.pt``, loadable with ``weights_only=True``) and
G / G_ema weights (``.safetensors``), written atomically; the last K are kept.

A checkpoint ``step_00001000`` is complete only when both files exist; the ``.pt`` file is
written last, so a crash between the two leaves the previous checkpoint as the latest.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from gankit.utils.io import atomic_write_bytes

_NAME = re.compile(r"^step_(\d{8,})\.pt$")


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def checkpoint_stem(run_dir: str | Path, step: int) -> Path:
    """``RUN_DIR/checkpoints/step_XXXXXXXX``: add ``.pt`` or ``.safetensors``."""
    return checkpoint_dir(run_dir) / f"step_{step:08d}"


def save_checkpoint(run_dir: str | Path, state, keep: int, name: str | None = None) -> Path:
    """Write ``checkpoints/step_XXXXXXXX.{safetensors,pt}`` and prune to the last ``keep``.

    With ``name`` (e.g. ``"best"``) the files are ``checkpoints/NAME.*``, never pruned.
    """
    folder = checkpoint_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / name if name else checkpoint_stem(run_dir, state.step)
    full = state.state_dict()
    tensors = {f"G.{k}": v.detach().cpu().contiguous() for k, v in full["G"].items()}
    if full["G_ema"] is not None:
        tensors.update({f"G_ema.{k}": v.detach().cpu().contiguous()
                        for k, v in full["G_ema"].items()})
    meta = {"config": json.dumps(full["config"]), "data_info": json.dumps(full["data_info"]),
            "step": str(state.step)}
    atomic_write_bytes(stem.with_suffix(".safetensors"), st_save(tensors, metadata=meta))
    buf = io.BytesIO()
    torch.save(full, buf)
    atomic_write_bytes(stem.with_suffix(".pt"), buf.getvalue())
    prune(folder, keep)
    return stem.with_suffix(".pt")


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints (``.pt`` files), oldest first."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def prune(folder: Path, keep: int) -> None:
    for old in list_checkpoints(folder.parent)[:-keep]:
        old.unlink(missing_ok=True)
        old.with_suffix(".safetensors").unlink(missing_ok=True)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    return torch.load(path, map_location=map_location, weights_only=True)


def load_latest(run_dir: str | Path, map_location="cpu") -> tuple[dict, Path]:
    """Load the newest readable checkpoint; a corrupt newest one falls back to the one before."""
    paths = list_checkpoints(run_dir)
    if not paths:
        raise FileNotFoundError(
            f"{run_dir}: no checkpoint found under {checkpoint_dir(run_dir)}; "
            "is this a gankit run directory (gankit train ... --out RUN_DIR)?")
    errors = []
    for path in reversed(paths):
        try:
            return load_checkpoint(path, map_location), path
        except Exception as exc:  # a torn or corrupt file: try the previous one
            errors.append(f"{path.name}: {exc}")
    raise ValueError(f"{run_dir}: every checkpoint is unreadable: {'; '.join(errors)}")


def load_weights(path: str | Path) -> tuple[dict, dict]:
    """Read a ``.safetensors`` weights file: (tensors, metadata)."""
    data = Path(path).read_bytes()
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    return st_load(data), meta
