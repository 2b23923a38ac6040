"""bfloat16 autocast, as training (``train.precision``) and refined sampling
(``RefineOptions.precision``) use it."""

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


def autocast(device: torch.device, bf16: bool):
    """The context of a forward pass: bfloat16 autocast on ``device`` if ``bf16``, else
    nothing."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
