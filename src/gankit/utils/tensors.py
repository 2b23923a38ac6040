"""Small tensor helpers of the training loop."""

from __future__ import annotations

import torch


def full_precision(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 when autocast left it in a 16-bit type; other dtypes as they are."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def as_float(out: dict) -> dict:
    """D's outputs (logits, features, ...) in float32, whatever precision D ran in."""
    return {k: full_precision(v) if torch.is_tensor(v) else v for k, v in out.items()}


def grad_norm(net: torch.nn.Module) -> torch.Tensor:
    """The L2 norm of all of ``net``'s parameter gradients together (0 when there are none)."""
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
