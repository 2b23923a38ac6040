"""Low-precision autocast, as training (``train.precision``: bf16 or fp16) and refined
sampling (``RefineOptions.precision``: bf16) use it."""

from __future__ import annotations

import contextlib

import torch


def check_bf16(device: torch.device, option: str) -> None:
    """Refuse bfloat16 on a GPU without it.

    Raises:
        ValueError: naming ``option`` (e.g. ``"train.precision"``), when ``device`` is a
            CUDA device that has no bfloat16 support.
    """
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"{option}=bf16: this GPU has no bfloat16 support; use "
                         f"{option}=fp32")


LOW_PRECISION = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, dtype: torch.dtype | bool | None):
    """The context of a forward pass: autocast to ``dtype`` on ``device`` (True means
    bfloat16), or nothing for None / False."""
    if dtype is None or dtype is False:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if dtype is True else dtype)
