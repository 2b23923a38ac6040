"""Spectral normalisation of every conv and linear layer, Miyato et al. 2018.

Uses PyTorch's parametrisation, which runs one power iteration per training forward pass
and keeps the singular vectors u, v as buffers (saved in the state_dict).
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

_TYPES = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.Embedding)


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Wrap the weight of every Linear/Conv/Embedding layer inside ``module`` in place."""
    for layer in list(module.modules()):
        if isinstance(layer, _TYPES):
            spectral_norm(layer)
    return module
