"""Helpers shared by the viz modules: loading an image run and choosing the PNG scale."""

from __future__ import annotations

from pathlib import Path

from gankit import api


def load_image_run(run_dir: str | Path, device: str, what: str) -> api.LoadedRun:
    """Load a run's generators; a points run raises a ValueError naming ``what``."""
    run = api.load(run_dir, device)
    if run.info.kind != "image":
        raise ValueError(
            f"{what} is for image data, but {run_dir} was trained on {run.info.kind} "
            f"{tuple(run.info.sample_shape)}; for 2D points plot samples with "
            f"`gankit sample {run_dir} --out points.png` instead")
    return run


def auto_scale(width: int) -> int:
    """The upscale factor ``save_grid`` uses, so viz sheets match the sample grids."""
    return max(1, 4 // max(1, width // 16)) if width < 64 else 1
