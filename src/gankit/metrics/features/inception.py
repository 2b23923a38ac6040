"""The FID Inception-v3: the TensorFlow Inception graph of the FID reference (Heusel et al. 2017,
TTUR code; Szegedy et al. 2016 for Inception-v3), as ported to PyTorch by pytorch-fid (mseitzer).

It differs from torchvision's Inception-v3 in ways that change FID: the average pools inside the
Mixed 5x/6x/7b blocks exclude zero padding from the mean (``count_include_pad=False``, as
TensorFlow), the last block (Mixed_7c) max-pools its pool branch, and the classifier has 1008
outputs. Features are the 2048-d pool3 activations (global average pool after Mixed_7c).
Preprocessing matches pytorch-fid: bilinear resize to 299x299 (``align_corners=False``) of
images in [-1, 1], grey images repeated to 3 channels. ``probs`` are softmax(pool3 Wᵀ) over the
1008 logits without the bias, as the openai/improved-gan Inception Score code and torch-fidelity.

Weights: ``pt_inception-2015-12-05-6726825d.pth`` (state-dict keys as torchvision's Inception3,
e.g. ``Mixed_5b.branch_pool.conv.weight``); the suffix is the first 8 hex digits of its sha256.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gankit.metrics.features import _download
from gankit.metrics.features._base import Extractor, resize, to_rgb
from gankit.registry import EXTRACTORS

WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + WEIGHTS_NAME
)
WEIGHTS_SHA256 = "6726825d"
WEIGHTS_ENV = "GANKIT_INCEPTION_WEIGHTS"


class _Conv(nn.Module):
    """Conv (no bias) + BatchNorm (eps 1e-3, TensorFlow's) + ReLU: torchvision's BasicConv2d."""

    def __init__(self, cin: int, cout: int, kernel, stride: int = 1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's 'SAME' average pool divides by the number of non-padding inputs.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _MixedA(nn.Module):  # Mixed_5b..5d
    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = _Conv(cin, 64, 1)
        self.branch5x5_1 = _Conv(cin, 48, 1)
        self.branch5x5_2 = _Conv(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _Conv(cin, 64, 1)
        self.branch3x3dbl_2 = _Conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _Conv(96, 96, 3, padding=1)
        self.branch_pool = _Conv(cin, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_tf_avg_pool(x))], 1)


class _MixedB(nn.Module):  # Mixed_6a: grid reduction 35 -> 17
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = _Conv(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = _Conv(cin, 64, 1)
        self.branch3x3dbl_2 = _Conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _Conv(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, stride=2)], 1)


class _MixedC(nn.Module):  # Mixed_6b..6e: factorised 7x7
    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = _Conv(cin, 192, 1)
        self.branch7x7_1 = _Conv(cin, c7, 1)
        self.branch7x7_2 = _Conv(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = _Conv(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = _Conv(cin, c7, 1)
        self.branch7x7dbl_2 = _Conv(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = _Conv(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = _Conv(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = _Conv(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = _Conv(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for i in range(1, 6):
            d = getattr(self, f"branch7x7dbl_{i}")(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_tf_avg_pool(x))], 1)


class _MixedD(nn.Module):  # Mixed_7a: grid reduction 17 -> 8
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = _Conv(cin, 192, 1)
        self.branch3x3_2 = _Conv(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _Conv(cin, 192, 1)
        self.branch7x7x3_2 = _Conv(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _Conv(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _Conv(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = x
        for i in range(1, 5):
            b7 = getattr(self, f"branch7x7x3_{i}")(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class _MixedE(nn.Module):  # Mixed_7b (average pool), Mixed_7c (max pool in the FID graph)
    def __init__(self, cin: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = _Conv(cin, 320, 1)
        self.branch3x3_1 = _Conv(cin, 384, 1)
        self.branch3x3_2a = _Conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _Conv(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _Conv(cin, 448, 1)
        self.branch3x3dbl_2 = _Conv(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _Conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _Conv(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _Conv(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        if self.max_pool:
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = _tf_avg_pool(x)
        return torch.cat([self.branch1x1(x), b3, d, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """The FID Inception-v3; ``forward``: [N, 3, 299, 299] in [-1, 1] -> pool3 [N, 2048].

    Attribute names follow torchvision's Inception3 so the reference weights load unchanged.
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = _Conv(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _Conv(32, 32, 3)
        self.Conv2d_2b_3x3 = _Conv(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _Conv(64, 80, 1)
        self.Conv2d_4a_3x3 = _Conv(80, 192, 3)
        self.Mixed_5b = _MixedA(192, 32)
        self.Mixed_5c = _MixedA(256, 64)
        self.Mixed_5d = _MixedA(288, 64)
        self.Mixed_6a = _MixedB(288)
        self.Mixed_6b = _MixedC(768, 128)
        self.Mixed_6c = _MixedC(768, 160)
        self.Mixed_6d = _MixedC(768, 160)
        self.Mixed_6e = _MixedC(768, 192)
        self.Mixed_7a = _MixedD(768)
        self.Mixed_7b = _MixedE(1280, max_pool=False)
        self.Mixed_7c = _MixedE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return x.mean(dim=(2, 3))  # pool3 [N, 2048]


def resolve_inception_weights(
    path: str | os.PathLike | None = None, *, download: bool = False, url: str = WEIGHTS_URL
) -> Path:
    """Find the weights file: ``path``, else $GANKIT_INCEPTION_WEIGHTS, else the cache folder
    ($GANKIT_CACHE_DIR or ~/.cache/gankit); with ``download=True`` a missing cached file is
    fetched from ``url``."""
    explicit = path if path is not None else os.environ.get(WEIGHTS_ENV) or None
    if explicit is not None:
        explicit = Path(explicit).expanduser()
        if not explicit.is_file():
            source = "weights argument" if path is not None else f"${WEIGHTS_ENV}"
            raise FileNotFoundError(
                f"FID Inception weights file {explicit} (from {source}) does not exist"
            )
        return explicit
    cached = _download.cache_dir() / WEIGHTS_NAME
    if cached.is_file():
        return cached
    if download:
        return _download.download(url, cached, WEIGHTS_SHA256)
    raise FileNotFoundError(
        f"FID Inception weights {WEIGHTS_NAME} not found: with internet, add --download "
        f"(download=True) to fetch it to {cached}, or put the file from {WEIGHTS_URL} there "
        f"(or at ${WEIGHTS_ENV}); offline, train a classifier on your data (gankit extractor "
        "train --data DATA --out lenet.safetensors) and pass --extractor lenet:lenet.safetensors"
    )


def load_inception_v3_fid(
    path: str | os.PathLike | None = None,
    *,
    download: bool = False,
    expected_sha256: str | None = WEIGHTS_SHA256,
) -> tuple[FIDInceptionV3, str]:
    """Build the FID Inception-v3 and load the reference weights.

    Args:
        path: weights file (default: see `resolve_inception_weights`).
        download: fetch the file into the cache when it is missing.
        expected_sha256: hex prefix the file's sha256 must start with; None skips the check
            (only for tests with synthetic weights).

    Returns:
        ``(network in eval mode, sha256 of the file)``.
    """
    file = resolve_inception_weights(path, download=download)
    digest = _download.sha256_file(file)
    if expected_sha256 is not None and not digest.startswith(expected_sha256.lower()):
        raise ValueError(
            f"checksum mismatch for {file}: sha256 {digest} does not start with "
            f"{expected_sha256}; it is not {WEIGHTS_NAME} (delete it and fetch it again)"
        )
    state = torch.load(file, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{file} does not hold a state dict (got {type(state).__name__})")
    net = FIDInceptionV3()
    _load_strict(net, state, file)
    return net.eval(), digest


def _load_strict(net: nn.Module, state: dict, file: Path) -> None:
    """load_state_dict with a readable error; BatchNorm ``num_batches_tracked`` is optional."""
    own = net.state_dict()
    optional = {k for k in own if k.endswith("num_batches_tracked")}
    missing = sorted(set(own) - set(state) - optional)
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(
        k
        for k in set(own) & set(state)
        if not isinstance(state[k], torch.Tensor) or state[k].shape != own[k].shape
    )
    if missing or unexpected or wrong:
        raise ValueError(
            f"{file} does not match the FID Inception-v3 layout of {WEIGHTS_NAME}: "
            f"missing keys {missing[:5]}, unexpected keys {unexpected[:5]}, "
            f"wrong shapes {wrong[:5]} ({len(missing)}/{len(unexpected)}/{len(wrong)} in all)"
        )
    net.load_state_dict({**own, **state}, strict=True)


@EXTRACTORS.register("inception_v3_fid", "FID Inception-v3 (TF-ported weights), 2048-d pool3")
class InceptionV3FIDExtractor(Extractor):
    """Standard FID features; ``probs`` over the 1008 ImageNet logits (Inception Score)."""

    name = "inception_v3_fid"
    key_name = "inception"
    channels_last = True
    feature_dim = 2048
    num_classes = 1008

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        *,
        download: bool = False,
        expected_sha256: str | None = WEIGHTS_SHA256,
        batch_size: int = 50,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(batch_size)
        net, digest = load_inception_v3_fid(
            weights, download=download, expected_sha256=expected_sha256
        )
        self.net = net.to(device, memory_format=torch.channels_last)
        self.preprocessing = (
            f"inception_v3_fid:rgb-repeat,bilinear299-align_corners=False,range[-1,1],"
            f"weights-sha256={digest}"
        )

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"{self.name}: expected images [N, C, H, W], got {tuple(x.shape)}")
        return resize(to_rgb(x), 299)

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pool3 = self.net(x)
        return pool3, pool3 @ self.net.fc.weight.T
