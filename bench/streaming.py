"""Streaming a large image folder: peak memory and training throughput against memory.

Generates a folder of ``--images`` PNGs (default 100,000 at 64x64; kept in ``--dir`` and
reused when complete), then trains a small dcgan on ``folder:`` in three ways, each in its
own process so that each peak resident memory (ru_maxrss of the process and of its
decode workers) is its own:

- ``stream``: the images decoded per batch in ``--workers`` DataLoader processes;
- ``cache``: read from the decoded uint8 cache (``gankit data cache``, memory-mapped);
- ``memory``: the in-memory reader on the first ``--memory-images`` (default 10,000; 100,000
  decoded float32 64x64 RGB images take 4.9 GB) through symlinks.

Prints a table of steps/s and peak memory, and the ratios stream / memory and cache /
memory. Targets: streaming peak memory below 2 GiB; ratios >= 0.9.

    python bench/streaming.py [--dir DIR] [--images 100000] [--steps 300] [--workers N]
                              [--device cuda]
    python bench/streaming.py --quick   # a tiny smoke run
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gankit import api
from gankit.data import default_workers
from gankit.training.loop import Trainer
from gankit.training.state import build_state

MARKER = "complete.json"


def _write_images(task: tuple[str, int, int, int]) -> None:
    folder, start, stop, resolution = task
    for i in range(start, stop):
        rng = np.random.default_rng(i)
        # smooth colour gradients plus noise: PNGs that compress and decode like photos do
        yy, xx = np.mgrid[0:resolution, 0:resolution] / resolution
        base = np.stack([yy, xx, (yy + xx) / 2], -1) * rng.uniform(0, 255, 3)
        img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(Path(folder) / f"{i:06d}.png", compress_level=1)


def make_folder(root: Path, n: int, resolution: int) -> Path:
    """``root/images`` with ``n`` PNGs, generated in parallel unless already complete."""
    images = root / "images"
    marker = root / MARKER
    want = {"images": n, "resolution": resolution}
    if marker.is_file() and json.loads(marker.read_text()) == want:
        return images
    images.mkdir(parents=True, exist_ok=True)
    step = 1000
    tasks = [(str(images), s, min(n, s + step), resolution) for s in range(0, n, step)]
    t = time.perf_counter()
    with multiprocessing.Pool(max(1, os.cpu_count() or 1)) as pool:
        pool.map(_write_images, tasks)
    marker.write_text(json.dumps(want))
    print(f"generated {n} images in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return images


def subset(images: Path, root: Path, n: int) -> Path:
    """A folder of symlinks to the first ``n`` images."""
    out = root / f"first_{n}"
    if not out.is_dir() or len(list(out.iterdir())) != n:
        out.mkdir(exist_ok=True)
        for path in sorted(images.iterdir())[:n]:
            link = out / path.name
            if not link.exists():
                link.symlink_to(path)
    return out


def run_case(args) -> dict:
    """Train in this process; returns steps/s and peak memory (MiB)."""
    torch.set_num_threads(args.threads)
    stream = args.case != "memory"
    sets = [f"data.resolution={args.resolution}", f"data.stream={str(stream).lower()}",
            f"data.workers={args.workers if args.case == 'stream' else 0}",
            f"train.batch_size={args.batch}", "generator.width=32", "discriminator.width=32",
            "hooks.ema=null", "train.sample_interval=0", "train.checkpoint_interval=0",
            "train.log_interval=50"]
    cfg = api.make_config("dcgan", data=f"folder:{args.folder}", overrides=sets)
    t = time.perf_counter()
    ds = api.dataset_for(cfg)
    load_s = time.perf_counter() - t
    state = build_state(cfg, api.data_info(ds), torch.device(args.device))
    trainer = Trainer(state, ds, None, progress=False)
    trainer.run(args.warmup)
    t = time.perf_counter()
    trainer.run(args.warmup + args.steps)
    seconds = time.perf_counter() - t
    trainer.batches.close()
    del trainer
    time.sleep(0.5)  # the workers exit; their peak then counts in RUSAGE_CHILDREN
    self_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"case": args.case, "images": len(ds), "load_s": load_s,
            "steps_per_s": args.steps / seconds, "rss_main_mib": self_mib,
            "rss_worker_mib": child_mib}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dir", help="where the images are kept (default: a temp dir, removed)")
    p.add_argument("--images", type=int, default=100_000)
    p.add_argument("--memory-images", type=int, default=10_000)
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--workers", type=int, default=default_workers())
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--device", default="cpu", help="cpu or cuda (batches are pinned there)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.case:  # a child process: one case, one JSON line
        print(json.dumps(run_case(args)))
        return
    if args.quick:
        args.images, args.memory_images, args.resolution = 256, 128, 16
        args.steps, args.warmup, args.batch, args.workers = 4, 2, 16, min(args.workers, 1)
    tmp = tempfile.TemporaryDirectory() if args.dir is None else None
    root = Path(args.dir or tmp.name)
    images = make_folder(root, args.images, args.resolution)
    # the stream case keeps only its folder index in its own cache directory: a decoded
    # cache there (the cache case's) would be memory-mapped instead of decoding files
    envs = {case: {**os.environ, "GANKIT_CACHE": str(root / sub)}
            for case, sub in (("memory", "cache"), ("stream", "index-only"), ("cache", "cache"))}
    env = envs["cache"]
    rows = []
    for case, folder in (("memory", subset(images, root, args.memory_images)),
                         ("stream", images), ("cache", images)):
        if case == "cache":
            t = time.perf_counter()
            os.environ["GANKIT_CACHE"] = env["GANKIT_CACHE"]
            api.cache_data(f"folder:{images}", resolution=args.resolution, workers=args.workers)
            print(f"cache built in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        cmd = [sys.executable, __file__, "--case", case, "--folder", str(folder)] + [
            f"--{k}={getattr(args, k)}" for k in ("resolution", "steps", "warmup", "batch",
                                                   "workers", "threads", "device")]
        out = subprocess.run(cmd, env=envs[case], check=True, capture_output=True,
                             text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    print(f"{'case':<8} {'images':>8} {'load s':>8} {'steps/s':>8} {'main MiB':>9} "
          f"{'worker MiB':>10}")
    for r in rows:
        print(f"{r['case']:<8} {r['images']:>8} {r['load_s']:>8.1f} {r['steps_per_s']:>8.2f} "
              f"{r['rss_main_mib']:>9.0f} {r['rss_worker_mib']:>10.0f}")
    base = rows[0]["steps_per_s"]
    print(f"ratio stream/memory={rows[1]['steps_per_s'] / base:.3f} "
          f"cache/memory={rows[2]['steps_per_s'] / base:.3f} "
          f"(workers={args.workers}, threads={args.threads}, batch={args.batch}, {args.device}, "
          f"{args.resolution}x{args.resolution})")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
