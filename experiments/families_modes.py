"""Modes and KL of Stacked MNIST under the VEEGAN/PacGAN protocol for a finished run:
26,000 samples of G_ema from the run's latent stream, each channel classified by the
shipped LeNet (`gankit.benchmarks.stacked_mnist.count_modes`); written to RUN/modes.json.

    PYTHONPATH=src python experiments/families_modes.py runs/families/dcgan
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from gankit import api
from gankit.benchmarks.stacked_mnist import NUM_SAMPLES, score_generator


def main() -> None:
    torch.set_num_threads(1)
    for run_dir in map(Path, sys.argv[1:]):
        t0 = time.perf_counter()
        run = api.load(run_dir)
        result = score_generator(run.net(True), run.config.z_dim, run.config.train.seed,
                                 NUM_SAMPLES)
        result["seconds"] = time.perf_counter() - t0
        (run_dir / "modes.json").write_text(json.dumps(result, indent=2) + "\n")
        print(run_dir.name, result)


if __name__ == "__main__":
    main()
