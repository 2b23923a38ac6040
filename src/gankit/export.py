"""Export a trained generator to ONNX or TorchScript, to run without gankit.

The exported network is the one ``gankit sample`` draws from: the run's G_ema when it kept
one (its BatchNorm layers in eval mode with the standing statistics saved in the
checkpoint, `gankit.hooks.ema`), else G; ``ema=False`` picks G. Its inputs are

- ``z``: [N, z_dim] float32, z ~ N(0, I);
- ``labels``: [N] int64 class labels in 0..K-1 (conditional generators only; an
  out-of-range label is not checked by the exported graph);

with a dynamic batch dimension N, and its output ``images`` [N, C, H, W] in [-1, 1] (or
``points`` [N, D], unbounded, for a 2D-points run); ``(x + 1) * 127.5``, rounded and
clipped to 0..255, gives uint8 pixels.

- ``onnx``: ``torch.onnx.export(dynamo=True)``, the torch.export-based exporter (the
  default since PyTorch 2.9; the TorchScript-based one is deprecated), opset `ONNX_OPSET`,
  one self-contained file. Needs ``pip install 'gankit[onnx]'`` (onnx, onnxscript, and
  onnxruntime for the check).
- ``torchscript``: ``torch.jit.trace``; ``torch.jit.load`` reads it without gankit.

Before the file is written (atomically), the serialised model is run on `CHECK_BATCH`
latents (a batch size other than the one traced, so the dynamic batch is exercised) and
compared with the PyTorch generator; a difference above `TOLERANCE` is refused. Both
files carry gankit's description of the model (inputs, output range, run, step) as JSON:
ONNX metadata ``gankit``, TorchScript extra file ``gankit.json``.
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from gankit.registry import closest
from gankit.sampling import eval_mode
from gankit.utils.extras import require
from gankit.utils.io import atomic_write_bytes

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}  # format -> default file suffix
ONNX_OPSET = 20  # what torch 2.13's exporter writes natively; onnxruntime >= 1.17 runs it
TRACE_BATCH = 2  # the example batch the graph is traced with
CHECK_BATCH = 5  # the batch the written model is checked on (not TRACE_BATCH: dynamic N)
# The largest max-abs difference from PyTorch accepted: onnxruntime's kernels round
# differently; TorchScript runs PyTorch's own kernels.
TOLERANCE = {"onnx": 1e-3, "torchscript": 1e-5}
_FOREIGN_SUFFIXES = {"onnx": {".pt", ".pth", ".ts"}, "torchscript": {".onnx"}}


@dataclass(frozen=True)
class ExportResult:
    """What `export_run` wrote."""

    path: Path
    format: str  # onnx or torchscript
    net: str  # "G_ema" or "G"
    step: int  # the checkpoint's generator step
    z_dim: int
    num_classes: int  # 0: unconditional (no labels input)
    output_shape: tuple[int, ...]  # one sample, e.g. (1, 28, 28)
    kind: str  # "image" ([-1, 1]) or "points" (unbounded)
    max_abs_diff: float | None  # the check against PyTorch; None when skipped


class _Unconditional(nn.Module):
    """G with the one input an exporter sees: z [N, z_dim] -> x."""

    def __init__(self, G: nn.Module) -> None:
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.G(z)


class _Conditional(nn.Module):
    """G with labels as a required input: (z [N, z_dim], labels [N] int64) -> x."""

    def __init__(self, G: nn.Module) -> None:
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.G(z, labels)


def check_format(fmt: str) -> str:
    """``fmt`` if it is a supported format, else a ValueError listing them."""
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r} is not supported; choose one of "
                         f"{', '.join(FORMATS)}.{closest(str(fmt), list(FORMATS))}")
    return fmt


def example_inputs(z_dim: int, num_classes: int, n: int,
                   seed: int = 0) -> tuple[torch.Tensor, ...]:
    """``(z,)`` or ``(z, labels)``: seeded z [n, z_dim] float32 and labels [n] int64."""
    z = torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))
    if not num_classes:
        return (z,)
    return z, torch.arange(n) % num_classes


def export_network(G: nn.Module, fmt: str, *, z_dim: int, num_classes: int = 0,
                   kind: str = "image", metadata: dict | None = None,
                   check: bool = True) -> tuple[bytes, float | None]:
    """Serialise the generator ``G`` (evaluated in eval mode) as ``fmt``.

    Args:
        G: a generator ``G(z) -> x`` or, when ``num_classes`` > 0, ``G(z, labels) -> x``.
        fmt: ``onnx`` or ``torchscript``.
        z_dim: width of z.
        num_classes: K of a conditional G (the model then takes labels); 0 otherwise.
        kind: ``image`` (output ``images``) or ``points`` (output ``points``).
        metadata: JSON-able description stored in the file (see the module docstring).
        check: run the serialised model on `CHECK_BATCH` inputs against ``G``.

    Returns:
        ``(file bytes, max abs difference from G)``; the difference is None without check.

    Raises:
        ValueError: unknown ``fmt``, or the check found a difference above `TOLERANCE`.
        MissingExtraError: ``onnx`` without the ``gankit[onnx]`` packages.
    """
    check_format(fmt)
    if fmt == "onnx":  # fail on a missing package before any work
        require(("onnx", "onnxscript") + (("onnxruntime",) if check else ()), "onnx",
                "--format onnx")
    wrapper = (_Conditional if num_classes else _Unconditional)(G)
    info = json.dumps(metadata or {}, sort_keys=True)
    with eval_mode(G), torch.no_grad():
        args = example_inputs(z_dim, num_classes, TRACE_BATCH)
        if fmt == "onnx":
            data = _onnx_bytes(wrapper, args, "images" if kind == "image" else "points", info)
        else:
            data = _torchscript_bytes(wrapper, args, info)
        if not check:
            return data, None
        inputs = example_inputs(z_dim, num_classes, CHECK_BATCH, seed=1)
        expected = wrapper(*inputs)
        got = run_onnx(data, inputs) if fmt == "onnx" else run_torchscript(data, inputs)
    if got.shape != expected.shape:
        raise ValueError(f"the exported {fmt} model gave shape {tuple(got.shape)} for a batch "
                         f"of {CHECK_BATCH}, PyTorch {tuple(expected.shape)}; please report it")
    diff = float((got - expected).abs().max())
    if not diff <= TOLERANCE[fmt]:
        raise ValueError(f"the exported {fmt} model differs from PyTorch by {diff:.3g} (max "
                         f"abs, above {TOLERANCE[fmt]:g}); nothing was written; please report "
                         "it, or try the other --format")
    return data, diff


@contextmanager
def _quiet_exporters() -> Iterator[None]:
    """Hide the exporters' deprecation notices and progress logging (torch.jit is
    deprecated, onnxscript notes skipped torchvision ops) from the user's console."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _onnx_bytes(wrapper: nn.Module, args: tuple[torch.Tensor, ...], output: str,
                info: str) -> bytes:
    """The ONNX model proto of ``wrapper``, batch dimension dynamic, with ``info`` stored
    as metadata ``gankit``."""
    names = ["z", "labels"][:len(args)]
    batch = torch.export.Dim("batch")
    with _quiet_exporters():
        program = torch.onnx.export(wrapper, args, None, dynamo=True, verbose=False,
                                    input_names=names, output_names=[output],
                                    opset_version=ONNX_OPSET,
                                    dynamic_shapes={n: {0: batch} for n in names})
        proto = program.model_proto
    entry = proto.metadata_props.add()
    entry.key, entry.value = "gankit", info
    proto.doc_string = "gankit generator: " + info
    return proto.SerializeToString()


def _torchscript_bytes(wrapper: nn.Module, args: tuple[torch.Tensor, ...], info: str) -> bytes:
    """A traced TorchScript archive of ``wrapper`` with ``info`` as extra file gankit.json."""
    with _quiet_exporters():
        traced = torch.jit.trace(wrapper, args, check_trace=False)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer, _extra_files={"gankit.json": info})
    return buffer.getvalue()


def run_onnx(data: bytes | str | Path, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Run an exported ONNX generator (bytes or a path) in onnxruntime on CPU."""
    (ort,) = require(("onnxruntime",), "onnx", "running an ONNX model")
    source = str(data) if isinstance(data, (str, Path)) else data
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    feed = {i.name: x.numpy() for i, x in zip(session.get_inputs(), inputs)}
    return torch.from_numpy(session.run(None, feed)[0])


def run_torchscript(data: bytes | str | Path, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Run an exported TorchScript generator (bytes or a path)."""
    source = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    with torch.no_grad():
        return torch.jit.load(source, map_location="cpu")(*inputs)


def default_path(run_dir: str | Path, fmt: str) -> Path:
    """RUN_DIR/export/generator.onnx (or .pt)."""
    return Path(run_dir) / "export" / f"generator{FORMATS[check_format(fmt)]}"


def check_out(out: str | Path, fmt: str) -> Path:
    """``out`` as a Path, refused when it is a directory or has another format's suffix."""
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"--out {out} is a directory; give a file name, e.g. "
                         f"{out / ('generator' + FORMATS[fmt])}")
    if out.suffix.lower() in _FOREIGN_SUFFIXES[fmt]:
        raise ValueError(f"--out {out}: the suffix {out.suffix} is not a {fmt} file's; use "
                         f"{out.with_suffix(FORMATS[fmt])} (or --format "
                         f"{'torchscript' if fmt == 'onnx' else 'onnx'})")
    return out


def export_run(run, fmt: str, out: str | Path | None = None, *, ema: bool = True,
               check: bool = True) -> ExportResult:
    """Export a loaded run's generator (`gankit.api.LoadedRun`) to ``out`` (default
    `default_path`); see `export_network` for ``check``."""
    from gankit import __version__

    check_format(fmt)
    out = check_out(out if out is not None else default_path(run.run_dir, fmt), fmt)
    G = run.net(ema)
    net = "G_ema" if G is run.G_ema else "G"
    num_classes = run.info.num_classes if run.conditional else 0
    shape = tuple(run.info.sample_shape)
    metadata = {
        "gankit_version": __version__, "run": str(run.run_dir), "step": run.step, "net": net,
        "generator": run.config.generator.name, "z_dim": run.config.z_dim,
        "num_classes": num_classes, "kind": run.info.kind,
        "inputs": {"z": ["N", run.config.z_dim], **({"labels": ["N"]} if num_classes else {})},
        "output": {"name": "images" if run.info.kind == "image" else "points",
                   "shape": ["N", *shape],
                   "range": [-1, 1] if run.info.kind == "image" else None},
    }
    data, diff = export_network(G, fmt, z_dim=run.config.z_dim, num_classes=num_classes,
                                kind=run.info.kind, metadata=metadata, check=check)
    atomic_write_bytes(out, data)
    return ExportResult(out, fmt, net, run.step, run.config.z_dim, num_classes, shape,
                        run.info.kind, diff)


def describe(result: ExportResult) -> str:
    """The CLI's line about ``result``."""
    labels = (f", labels [N] int64 in 0..{result.num_classes - 1}" if result.num_classes
              else "")
    output = ("images [N, " + ", ".join(map(str, result.output_shape)) + "] in [-1, 1]"
              if result.kind == "image" else f"points [N, {result.output_shape[0]}]")
    what = f"ONNX opset {ONNX_OPSET}" if result.format == "onnx" else "TorchScript"
    check = (f"; matches PyTorch to {result.max_abs_diff:.1e} (max abs, {CHECK_BATCH} samples)"
             if result.max_abs_diff is not None else "; not checked")
    return (f"exported {result.net} (step {result.step}) as {what} to {result.path}: "
            f"inputs z [N, {result.z_dim}] float32{labels}; output {output}{check}")
