"""Labelled synthetic datasets from a class-conditional run (``gankit synth``), for data
augmentation and for training classifiers on synthetic data (CAS, Ravuri and Vinyals 2019).

`synthesize` draws ``per_class`` samples of every class from G_ema (seeded; optionally
truncated) and `write_dataset` writes them as an npz (``x`` uint8 [N, C, H, W], ``y``
int64) or as class folders (``DIR/<class>/<index>.png``), with a manifest beside them (the
run, its step, seed, truncation, per-class count and classes): ``FILE.manifest.json`` or
``DIR/manifest.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from gankit.utils.io import atomic_open, atomic_write_bytes, atomic_write_text


def synthesize(run, per_class: int, *, seed: int = 0, truncation: float | None = None,
               ema: bool = True, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """(x [K * per_class, C, H, W] in [-1, 1], y [K * per_class]) of a conditional run
    (a `gankit.api.LoadedRun`), classes in blocks 0, 0, ..., 1, 1, ...

    Raises:
        ValueError: the run is not class-conditional, or ``per_class`` < 1.
    """
    from gankit import api

    if not run.conditional:
        raise ValueError(f"{run.run_dir}: gankit synth needs a class-conditional run (cgan, "
                         f"acgan, sngan_projection, biggan); this one draws no classes")
    if per_class < 1:
        raise ValueError(f"--per-class must be at least 1, got {per_class}")
    k = run.info.num_classes
    y = torch.arange(k).repeat_interleave(per_class)
    api.check_sample_memory(run, len(y))
    x = api.sample(run, len(y), classes=y, seed=seed, ema=ema, device=device,
                   truncation=truncation)
    return x, y


def write_dataset(x: torch.Tensor, y: torch.Tensor, out: str | Path, manifest: dict) -> Path:
    """Write ``x``, ``y`` to ``out`` (``.npz``, or a folder of class folders) and the
    manifest beside it; atomic per file. Returns the manifest's path."""
    from PIL import Image

    out = Path(out)
    pixels = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    if out.suffix.lower() == ".npz":
        with atomic_open(out, "wb") as f:
            np.savez(f, x=pixels, y=y.numpy().astype(np.int64))
        where = out.with_suffix(".manifest.json")
    elif out.suffix == "":
        counts: dict[int, int] = {}
        for img, label in zip(pixels, y.tolist()):
            i = counts.get(label, 0)
            counts[label] = i + 1
            path = out / str(label) / f"{i:05d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            arr = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
            import io

            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format="PNG")
            atomic_write_bytes(path, buf.getvalue())
        where = out / "manifest.json"
    else:
        raise ValueError(f"--out {out}: use FILE.npz or a directory (class folders)")
    atomic_write_text(where, json.dumps({**manifest, "samples": len(y)}, indent=2) + "\n")
    return where
