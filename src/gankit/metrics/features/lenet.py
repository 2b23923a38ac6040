"""A small LeNet-style digit classifier (after LeCun et al. 1998) trained by gankit itself, used as
feature extractor (128-d penultimate layer) and classifier (IS, mode counting) for MNIST-like
data where the FID Inception cannot be used.

Architecture: conv 5x5 (32) - ReLU - maxpool 2 - conv 5x5 (64) - ReLU - maxpool 2 - fc 128 -
ReLU (features) - dropout 0.3 - fc K. Input: grey 28x28 in [-1, 1]; RGB is turned to grey (BT.601
luma), other sizes are resized bilinearly. Weights are safetensors files whose header metadata
holds the architecture and provenance; a JSON file beside each holds the held-out accuracy, the
sha256 of the weights and the training settings. Shipped: ``lenet_mnist5k`` and
``lenet_digits`` (see ``weights/*.json``), reproducible with
``python -m gankit.metrics.features._make_weights``.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save as safetensors_save
from torch import nn

from gankit.metrics.features import _download
from gankit.metrics.features._base import Extractor, resize, to_grey
from gankit.registry import EXTRACTORS
from gankit.utils.io import atomic_write_bytes, atomic_write_json

WEIGHTS_DIR = Path(__file__).parent / "weights"
FORMAT = "gankit-lenet-v1"
SIZE = 28


def prepare(x: torch.Tensor) -> torch.Tensor:
    """Images [N, C, H, W] in [-1, 1] -> grey [N, 1, 28, 28] in [-1, 1]."""
    if x.ndim != 4:
        raise ValueError(f"LeNet expects images [N, C, H, W], got shape {tuple(x.shape)}")
    return resize(to_grey(x.float()), SIZE)


class LeNet(nn.Module):
    """The classifier; ``meta`` holds its provenance (dataset, accuracy, settings) as strings."""

    def __init__(self, num_classes: int = 10, channels=(32, 64), feature_dim: int = 128) -> None:
        super().__init__()
        c1, c2 = channels
        self.conv1 = nn.Conv2d(1, c1, 5, padding=2)
        self.conv2 = nn.Conv2d(c1, c2, 5, padding=2)
        self.fc1 = nn.Linear(c2 * (SIZE // 4) ** 2, feature_dim)
        self.fc2 = nn.Linear(feature_dim, num_classes)
        self.config = {
            "num_classes": num_classes,
            "channels": list(channels),
            "feature_dim": feature_dim,
        }
        self.meta: dict[str, str] = {}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Prepared images [N, 1, 28, 28] -> penultimate activations [N, feature_dim] (>= 0)."""
        # ReLU after max-pooling: the same values (both are monotone), on 4x fewer elements.
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        return F.relu(self.fc1(x.flatten(1)))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.dropout(features, 0.3, self.training))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Prepared images -> logits [N, K]."""
        return self.head(self.features(x))


def stratified_split(y, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``round(fraction * n_c)`` (at least 1) random samples of every class c.

    Returns:
        ``(train_indices sorted, heldout_indices in a seeded random order)``.
    """
    y = np.asarray(y)
    if not 0 < fraction < 1:
        raise ValueError(f"holdout fraction must lie in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        held.append(idx[: max(1, round(fraction * len(idx)))])
    heldout = rng.permutation(np.concatenate(held))
    return np.setdiff1d(np.arange(len(y)), heldout), heldout


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random rotation (±12°), scale (±10 %) and shift (±2.5 px) of [N, 1, 28, 28] in [-1, 1]."""
    n = len(x)
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(12)
    scale = 1 + (torch.rand(n, generator=gen) * 2 - 1) * 0.1
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * (2.5 / (SIZE / 2))
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # Sample x + 1 so that the zero padding of grid_sample is the -1 background.
    return F.grid_sample(x + 1, grid, align_corners=False) - 1


@torch.inference_mode()
def accuracy(model: LeNet, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy of ``model`` on images [N, C, H, W] in [-1, 1] with labels [N]."""
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += int(
            (model(prepare(x[i : i + batch_size])).argmax(1) == y[i : i + batch_size]).sum()
        )
    return correct / len(x)


def train_classifier(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    *,
    seed: int = 0,
    epochs: int = 30,
    batch_size: int = 64,
    max_lr: float = 3e-3,
    holdout: float = 0.1,
    augment: bool = True,
    dataset_name: str = "custom",
    log: Callable[[str], None] | None = None,
) -> LeNet:
    """Train a LeNet classifier deterministically on CPU.

    Adam with a one-cycle learning-rate schedule peaking at ``max_lr``; random affine
    augmentation; a stratified ``holdout`` fraction (seeded) is never trained on and gives the
    held-out accuracy. Seeds: ``torch.manual_seed(seed)`` inside ``torch.random.fork_rng`` (the
    caller's global RNG is untouched) for initialisation and dropout, a ``torch.Generator``
    seeded with ``seed`` for shuffling and augmentation, deterministic algorithms on. The
    result is bit-identical for the same inputs, settings, torch build and thread count.

    Args:
        x: images [N, C, H, W] in [-1, 1] (converted to grey 28x28 as the extractor does).
        y: labels [N] in 0..num_classes-1.
        num_classes: K.
        seed: seed of the split, the initialisation, shuffling and augmentation.
        epochs, batch_size, max_lr: optimisation settings.
        holdout: fraction of each class held out for the accuracy estimate; 0 trains on
            every sample (no held-out accuracy: NaN).
        augment: random rotation/scale/shift of training batches.
        dataset_name: recorded in the model's metadata (names its result keys).
        log: called with a progress line after every epoch.

    Returns:
        The trained `LeNet` in eval mode; ``model.meta`` records ``heldout_accuracy``, the
        dataset, the split and every setting.
    """
    x = torch.as_tensor(x)
    y = torch.as_tensor(y, dtype=torch.long)
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    if int(y.min()) < 0 or int(y.max()) >= num_classes:
        raise ValueError(
            f"labels must lie in 0..{num_classes - 1}, got {int(y.min())}..{int(y.max())}"
        )
    if holdout == 0:
        train_idx, held_idx = np.arange(len(y)), np.arange(0)
    else:
        train_idx, held_idx = stratified_split(y.numpy(), holdout, seed)
    x = prepare(x)
    x_train, y_train = x[train_idx], y[train_idx]
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            gen = torch.Generator().manual_seed(seed)
            model = LeNet(num_classes)
            opt = torch.optim.Adam(model.parameters(), lr=max_lr)
            sched = torch.optim.lr_scheduler.OneCycleLR(
                opt, max_lr, total_steps=epochs * steps_per_epoch
            )
            for epoch in range(epochs):
                model.train()
                order = torch.randperm(len(x_train), generator=gen)
                for i in range(0, len(x_train), batch_size):
                    idx = order[i : i + batch_size]
                    xb = _augment(x_train[idx], gen) if augment else x_train[idx]
                    loss = F.cross_entropy(model(xb), y_train[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                if log is not None and len(held_idx):
                    acc = accuracy(model, x[held_idx], y[held_idx])
                    log(f"epoch {epoch + 1}/{epochs} loss {loss.item():.4f} held-out acc {acc:.4f}")
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
    model.eval()
    settings = {
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "max_lr": max_lr,
        "holdout": holdout,
        "augment": augment,
        "optimizer": "adam+onecycle",
        "torch": torch.__version__,
        "num_threads": torch.get_num_threads(),
    }
    model.meta = {
        "dataset": dataset_name,
        "heldout_accuracy": repr(accuracy(model, x[held_idx], y[held_idx])
                                 if len(held_idx) else float("nan")),
        "num_train": str(len(train_idx)),
        "num_heldout": str(len(held_idx)),
        "settings": json.dumps(settings, sort_keys=True),
    }
    return model


def _canonical(data: bytes) -> bytes:
    """Rewrite a safetensors header with sorted keys, so equal weights give equal bytes.

    safetensors serialises its header maps in hash order, which varies between processes.
    """
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # keep the tensor data 8-byte aligned, as safetensors does
    return len(text).to_bytes(8, "little") + text + data[8 + n :]


def save_lenet(model: LeNet, path: str | os.PathLike) -> dict:
    """Write ``model`` as safetensors (atomically) plus a JSON report beside it.

    Returns:
        The JSON report: dataset, held-out accuracy, sha256 of the weights file, settings.
    """
    path = Path(path)
    metadata = {"format": FORMAT, "config": json.dumps(model.config, sort_keys=True), **model.meta}
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(path, _canonical(safetensors_save(tensors, metadata=metadata)))
    report = {
        "file": path.name,
        "sha256": _download.sha256_file(path),
        "format": FORMAT,
        "config": model.config,
        "dataset": model.meta.get("dataset"),
        "heldout_accuracy": float(model.meta["heldout_accuracy"])
        if "heldout_accuracy" in model.meta
        else None,
        "num_train": int(model.meta.get("num_train", 0)),
        "num_heldout": int(model.meta.get("num_heldout", 0)),
        "settings": json.loads(model.meta.get("settings", "{}")),
    }
    atomic_write_json(path.with_suffix(".json"), report)
    return report


def load_lenet(path: str | os.PathLike, *, verify: bool = True) -> LeNet:
    """Load a LeNet written by `save_lenet`.

    Args:
        path: the ``.safetensors`` file.
        verify: if a JSON report lies beside it, check the file's sha256 against it.

    Raises:
        FileNotFoundError: no such file. ValueError: not a gankit LeNet file, or checksum or
        tensor mismatch.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"LeNet weights file {path} does not exist")
    report_path = path.with_suffix(".json")
    if verify and report_path.is_file():
        expected = json.loads(report_path.read_text()).get("sha256")
        _download.verify_sha256(path, expected)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(f"{path} is not a readable safetensors file: {err}") from err
    if meta.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a gankit LeNet file (format {meta.get('format')!r}, "
            f"expected {FORMAT!r}); train one with train_and_save_extractor"
        )
    config = json.loads(meta["config"])
    model = LeNet(config["num_classes"], tuple(config["channels"]), config["feature_dim"])
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path}: tensors do not match the LeNet architecture: {err}") from err
    model.meta = {k: v for k, v in meta.items() if k not in ("format", "config")}
    return model.eval()


def train_and_save_extractor(
    dataset_x: torch.Tensor,
    dataset_y: torch.Tensor,
    num_classes: int,
    out_path: str | os.PathLike,
    seed: int = 0,
    *,
    dataset_name: str = "custom",
    **train_options,
) -> dict:
    """Train a LeNet (see `train_classifier`) and save it for ``EXTRACTORS`` spec
    ``lenet:out_path``. Returns the JSON report (held-out accuracy, sha256, settings)."""
    model = train_classifier(
        dataset_x, dataset_y, num_classes, seed=seed, dataset_name=dataset_name, **train_options
    )
    return save_lenet(model, out_path)


@EXTRACTORS.register("lenet", "a gankit-trained LeNet classifier from a weights path (lenet:PATH)")
class LeNetExtractor(Extractor):
    """128-d penultimate features and K-way probabilities of a `LeNet`."""

    key_name = "lenet"
    channels_last = True

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        *,
        name: str | None = None,
        batch_size: int = 256,
        device: str | torch.device = "cpu",
        verify: bool = True,
    ) -> None:
        super().__init__(batch_size)
        if weights is None:
            raise ValueError(
                "extractor 'lenet' needs a weights file: use the spec 'lenet:PATH' (a file from "
                "train_and_save_extractor) or a shipped one, 'lenet_mnist5k' / 'lenet_digits'"
            )
        self.net = load_lenet(weights, verify=verify).to(device, memory_format=torch.channels_last)
        self.name = name or f"lenet:{weights}"
        self.feature_dim = self.net.config["feature_dim"]
        self.num_classes = self.net.config["num_classes"]
        self.trained_on = self.net.meta.get("dataset", "custom")
        self.sha256 = _download.sha256_file(weights)
        self.shipped = name is not None and not name.startswith("lenet:")
        self.preprocessing = (
            f"lenet:grey-luma,bilinear{SIZE}-align_corners=False,range[-1,1],"
            f"weights-sha256={self.sha256}"
        )

    def result_key(self, dataset: str) -> str:
        """``lenet`` (a shipped classifier on the data it was trained on), else ``lenet_`` and
        its training data; a classifier of yours adds its weights' sha256 prefix
        (``lenet_1a2b3c4d``), so its numbers never share keys with the shipped one's."""
        key = "lenet" if self.shipped else f"lenet_{self.sha256[:8]}"
        if dataset == self.trained_on:
            return key
        return key + "_" + re.sub(r"[^a-z0-9]+", "_", self.trained_on.lower()).strip("_")

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return prepare(x)

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.net.features(x)
        return features, self.net.head(features)


@EXTRACTORS.register("lenet_mnist5k", "shipped LeNet trained on mnist5k: 128-d features, 10 probs")
def lenet_mnist5k(**kwargs) -> LeNetExtractor:
    return LeNetExtractor(WEIGHTS_DIR / "lenet_mnist5k.safetensors", name="lenet_mnist5k", **kwargs)


@EXTRACTORS.register("lenet_digits", "shipped LeNet trained on sklearn digits: 128-d, 10 probs")
def lenet_digits(**kwargs) -> LeNetExtractor:
    return LeNetExtractor(WEIGHTS_DIR / "lenet_digits.safetensors", name="lenet_digits", **kwargs)
