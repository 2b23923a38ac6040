"""Benchmark: sampling from an exported generator (`gankit export`) in onnxruntime and
TorchScript against the same generator in PyTorch eager mode, in one process.

    PYTHONPATH=src python bench/export_runtime.py [--preset dcgan] [--n 500] [--threads 1]

Builds the preset's G for its data (dcgan: 1x28x28, z 100, width 64) from seed 0 in eval
mode (untrained weights time the same), exports it with `gankit.export.export_network`
(prints each export's seconds and file size), then times G(z) on ``--n`` latents in each
runtime, best of ``--repeats``, all on ``--threads`` intra-op threads. Needs
``pip install 'gankit[onnx]'``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from gankit import api, export
from gankit.training.state import build_networks


def best_of(repeats: int, f) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="dcgan")
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    import onnxruntime as ort

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = api.make_config(args.preset, device="cpu")
    info = api.data_info(api.dataset_for(config), config)
    G, _ = build_networks(config, info)
    G.eval().requires_grad_(False)
    K = info.num_classes if G.conditional else 0
    inputs = export.example_inputs(config.z_dim, K, args.n, seed=1)
    folder = Path(tempfile.mkdtemp())
    runtimes = {"pytorch": lambda: G(*inputs)}
    for fmt in export.FORMATS:
        start = time.perf_counter()
        data, diff = export.export_network(G, fmt, z_dim=config.z_dim, num_classes=K,
                                           kind=info.kind)
        path = folder / f"g{export.FORMATS[fmt]}"
        path.write_bytes(data)
        print(f"{fmt}: export {time.perf_counter() - start:.1f} s, {len(data) / 1e6:.2f} MB, "
              f"max abs diff {diff:.1e}")
    ts = torch.jit.load(str(folder / "g.pt"))
    runtimes["torchscript"] = lambda: ts(*inputs)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
    session = ort.InferenceSession(str(folder / "g.onnx"), options,
                                   providers=["CPUExecutionProvider"])
    feed = dict(zip(["z", "labels"], (x.numpy() for x in inputs)))
    runtimes["onnxruntime"] = lambda: session.run(None, feed)
    with torch.no_grad():
        for name, f in runtimes.items():
            f()  # warm-up
            print(f"{name:12s} {args.n} samples: {best_of(args.repeats, f) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
