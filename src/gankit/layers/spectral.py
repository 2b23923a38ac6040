"""Spectral normalisation of every conv and linear layer, Miyato et al. 2018.

Uses PyTorch's parametrisation, which runs one power iteration per training forward pass
and keeps the singular vectors u, v as buffers (saved in the state_dict).
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

_TYPES = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.Embedding)


def apply_spectral_norm(module: nn.Module, embeddings: bool = True) -> nn.Module:
    """Wrap the weight of every Linear/Conv/Embedding layer inside ``module`` in place;
    ``embeddings=False`` leaves embedding tables alone (BigGAN's G: its shared class
    embedding and conditional-BN tables are not normalised)."""
    types = _TYPES if embeddings else _TYPES[:-1]
    for layer in list(module.modules()):
        if isinstance(layer, types):
            spectral_norm(layer)
    return module
