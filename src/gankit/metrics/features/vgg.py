"""VGG19 (Simonyan and Zisserman 2015) convolutional features for perceptual losses: SRGAN's
"VGG54" content loss (Ledig et al. 2017: the 4th conv of the 5th block, after its ReLU) and
ESRGAN's variant before the activation (Wang et al. 2018, sec. 3.3).

The ImageNet weights are torchvision's ``vgg19-dcbb9e9d.pth`` (only ``features.*`` is read),
found like the Inception weights: ``vgg19:PATH``, else $GANKIT_VGG19_WEIGHTS, else
``vgg19-dcbb9e9d.pth`` in the cache folder ($GANKIT_CACHE_DIR or ~/.cache/gankit); they are
not shipped. Inputs in [-1, 1] are mapped to [0, 1], normalised with ImageNet's mean and
std, grey images repeated to RGB; sides below 32 are upscaled (bilinear) to 32.
As an extractor for metrics, the feature vector is the spatial mean of conv5_4 (512-d).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gankit.metrics.features import _download
from gankit.metrics.features._base import Extractor, to_rgb
from gankit.registry import EXTRACTORS

WEIGHTS_NAME = "vgg19-dcbb9e9d.pth"
WEIGHTS_ENV = "GANKIT_VGG19_WEIGHTS"
# torchvision's VGG19 "E" configuration: channels, "M" = 2x2 max pooling
LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M")
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def vgg19_features() -> nn.Sequential:
    """torchvision's ``vgg19().features`` layer for layer (so its state dict loads)."""
    layers: list[nn.Module] = []
    prev = 3
    for item in LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(prev, item, 3, padding=1), nn.ReLU(inplace=False)]
            prev = item
    return nn.Sequential(*layers)


CONV5_4 = 34  # index of conv5_4 in vgg19_features(); its ReLU is 35


def resolve_vgg19_weights(path: str | os.PathLike | None = None) -> Path:
    """The weights file: ``path``, else $GANKIT_VGG19_WEIGHTS, else the cache folder."""
    explicit = path if path is not None else os.environ.get(WEIGHTS_ENV) or None
    if explicit is not None:
        explicit = Path(explicit).expanduser()
        if not explicit.is_file():
            raise FileNotFoundError(f"VGG19 weights file {explicit} does not exist")
        return explicit
    cached = _download.cache_dir() / WEIGHTS_NAME
    if cached.is_file():
        return cached
    raise FileNotFoundError(
        f"VGG19 weights {WEIGHTS_NAME} not found: put torchvision's file at {cached} or "
        f"${WEIGHTS_ENV}; or pick other features: --set regularizers.perceptual.features=d "
        f"(D's own) or an extractor")


class VGG19Extractor(Extractor):
    """conv5_4 features of ImageNet VGG19 (after ReLU, or before with ``before_relu``)."""

    key_name = "vgg19"

    def __init__(self, weights: str | os.PathLike | None = None, *, before_relu: bool = False,
                 batch_size: int = 64, device: str | torch.device = "cpu") -> None:
        super().__init__(batch_size)
        file = resolve_vgg19_weights(weights)
        state = torch.load(file, map_location="cpu", weights_only=True)
        net = vgg19_features()
        net.load_state_dict({k[len("features."):]: v for k, v in state.items()
                             if k.startswith("features.")})
        self.net = net[:CONV5_4 + (1 if before_relu else 2)].to(device).eval()
        self.net.requires_grad_(False)
        self.name = "vgg19"
        self.feature_dim = 512
        self.sha256 = _download.sha256_file(file)
        self.preprocessing = (f"vgg19:rgb,min32,imagenet-norm,conv5_4"
                              f"{'-pre' if before_relu else ''},sha256={self.sha256}")
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1))

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = to_rgb(x)
        if min(x.shape[-2:]) < 32:
            x = F.interpolate(x, size=(max(32, x.shape[-2]), max(32, x.shape[-1])),
                              mode="bilinear", align_corners=False)
        return ((x + 1) / 2 - self.mean) / self.std

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable conv5_4 maps [N, 512, H/16, W/16] of images in [-1, 1]."""
        return self.net(self._prepare(x))

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.net(x).mean((2, 3)), None


@EXTRACTORS.register("vgg19", "ImageNet VGG19 conv5_4 features (weights not shipped: "
                              "torchvision's vgg19-dcbb9e9d.pth)")
def vgg19(weights=None, **kwargs) -> VGG19Extractor:
    return VGG19Extractor(weights, **kwargs)
