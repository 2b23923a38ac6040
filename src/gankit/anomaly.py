"""Anomaly detection with GANs: ``gankit anomaly fit | score | heatmap``.

A method is a preset of the one training loop plus the scoring function of its generator
(``G.anomaly_score(x, D)``, higher = more anomalous): ``ganomaly`` (Akcay et al. 2018),
``fanogan`` (Schlegl et al. 2019: a ``wgan_gp`` run on the normal data in ``OUT/gan``, then
the ``fanogan`` preset's izi_f encoder in ``OUT``), ``egbad`` (Zenati et al. 2018: a BiGAN
whose score reads the run's D).
`fit` trains the preset on the normal classes only (``data.classes``); `score` scores
images (a file, a folder or an npz), resized to the run's resolution and channels;
`heatmap` draws the pixel-level residual |x - G(x)| beside the image.

Tables: ``fit ganomaly --data csv:normal.csv`` (or any table spec) treats every row as
normal. Its rows become feature vectors (numbers standardised by the training rows, a
missing value 0 plus an indicator, categories one-hot) and the ``ganomaly_points`` preset
trains on them; the training rows and their column types are kept in the run
(``anomaly_reference.csv``, ``anomaly_table.json``) so that `score_csv` encodes new rows
the same way.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

METHODS = ("ganomaly", "fanogan", "egbad")


def fit(method: str, out: str | Path, data: str | None = None,
        normal: Sequence[int] | None = None, steps: int | None = None,
        overrides: Sequence[str] = (), seed: int | None = None, progress: bool = True):
    """Train ``method``'s preset on the ``normal`` classes of ``data``."""
    from gankit import api

    if method not in METHODS:
        raise ValueError(f"anomaly method {method!r}: choose one of {', '.join(METHODS)}")
    extra = [f"data.classes=[{','.join(str(c) for c in normal)}]"] if normal else []
    preset = method
    dataset = _load(data) if data is not None else None
    kind = "images" if dataset is None else "table" if dataset.table is not None \
        else dataset.kind
    if kind in ("points", "table"):  # feature vectors: the fully connected variant
        if method != "ganomaly":
            raise ValueError(f"anomaly method {method} scores images; for points or table "
                             f"rows use ganomaly")
        preset = "ganomaly_points"
    if kind == "table":
        if normal:
            raise ValueError(f"--normal {','.join(map(str, normal))}: {data} is a table, "
                             f"whose rows are all normal; give a CSV of the normal rows only")
        if out is None:
            raise ValueError("gankit anomaly fit on a table needs --out (its encoding is "
                             "kept in the run)")
        data = _table_features(dataset.table.table, data, Path(out))
    if method == "fanogan":  # f-AnoGAN's first stage: a WGAN-GP on the same normal data
        if out is None:
            raise ValueError("gankit anomaly fit fanogan needs --out (the first stage's run "
                             "is kept in OUT/gan)")
        data_spec = data or "mnist5k:train"
        api.train("wgan_gp", out=Path(out) / "gan", data=data_spec, steps=steps, seed=seed,
                  progress=progress, overrides=[*extra, "data.resolution=32",
                                                *[o for o in overrides if o.startswith(
                                                    ("data.", "train.batch_size"))]])
        extra.append(f"generator.gan_run={Path(out) / 'gan'}")
    return api.train(preset, out=out, data=data, steps=steps, seed=seed, progress=progress,
                     overrides=[*extra, *overrides])


def _load(spec: str):
    from gankit.data import load_dataset

    return load_dataset(spec)


def _table_features(table, spec: str, out: Path) -> str:
    """Keep ``table``'s rows and column types in ``out`` and write their feature vectors to
    ``out/anomaly_features.npz``; returns that npz's data spec. Refuses an ``out`` that
    already holds a run (whose encoding this would replace)."""
    from gankit.tabular.metrics import design
    from gankit.tabular.table import write_csv
    from gankit.training.checkpoint import list_checkpoints
    from gankit.utils.io import atomic_open, atomic_write_json

    if list_checkpoints(out):
        raise ValueError(f"{out} already holds a run; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_csv(table, out / "anomaly_reference.csv")
    atomic_write_json(out / "anomaly_table.json",
                      {"data": spec, "types": {c.name: c.type for c in table.columns}})
    with atomic_open(out / "anomaly_features.npz") as f:
        np.savez(f, x=design(table, table).astype(np.float32))
    return f"npz:{(out / 'anomaly_features.npz').resolve()}"


def score_csv(run, path: str | Path) -> torch.Tensor:
    """Anomaly scores [N] of the rows of the CSV ``path``, encoded as the run's training
    table (a run fitted with ``--data csv:...`` or another table)."""
    import json

    from gankit.tabular.metrics import design
    from gankit.tabular.table import read_csv

    meta = Path(run.run_dir) / "anomaly_table.json"
    if not meta.is_file():
        raise ValueError(f"{path}: CSV rows need a run fitted on a table (gankit anomaly fit "
                         f"ganomaly --data csv:NORMAL.csv); {run.run_dir} was fitted on "
                         f"{run.config.data.name}")
    types = json.loads(meta.read_text())["types"]
    reference = read_csv(Path(run.run_dir) / "anomaly_reference.csv", types)
    absent = [n for n in reference.names if n not in read_csv(path).names]
    if absent:
        raise ValueError(f"{path}: no column {absent[0]!r}; the run was fitted on the columns "
                         f"{', '.join(reference.names)}")
    rows = read_csv(path, types)
    return score(run, torch.from_numpy(design(rows, reference)).float())


def _scorer(run):
    G = run.net(True)
    if not hasattr(G, "anomaly_score"):
        raise ValueError(f"{run.run_dir}: generator {run.config.generator.name} has no "
                         f"anomaly score; fit one with gankit anomaly fit "
                         f"{'|'.join(METHODS)}")
    return G


def prepare(run, x: torch.Tensor) -> torch.Tensor:
    """Images [N, C, H, W] in [-1, 1] at the run's resolution and channels (points as
    they are)."""
    from gankit.data._common import convert_channels, resize_images

    if len(run.info.sample_shape) == 1:
        return x.float()
    c, side = run.info.sample_shape[0], run.info.sample_shape[-1]
    return convert_channels(resize_images(x.float(), side), c)


def critic(run):
    """The run's trained D (newest checkpoint), in eval mode."""
    from gankit.training.checkpoint import list_checkpoints, load_checkpoint
    from gankit.training.state import build_networks

    ckpt = load_checkpoint(list_checkpoints(run.run_dir)[-1])
    _, D = build_networks(run.config, run.info)
    D.load_state_dict(ckpt["D"])
    return D.eval().requires_grad_(False)


@torch.no_grad()
def score(run, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Anomaly scores [N] of images ``x`` [N, C, H, W] in [-1, 1]."""
    G = _scorer(run)
    D = critic(run) if getattr(G, "needs_critic", False) else None
    x = prepare(run, x)
    return torch.cat([G.anomaly_score(x[i:i + batch_size], D).cpu()
                      for i in range(0, len(x), batch_size)])


@torch.no_grad()
def residual_map(run, image: torch.Tensor) -> torch.Tensor:
    """|x - G(x)| averaged over channels [H, W] of one image [C, H, W] at the run's size."""
    G = _scorer(run)
    x = prepare(run, image[None])
    return (x - G(x)).abs().mean(1)[0].cpu()


def heatmap_png(run, image: torch.Tensor) -> bytes:
    """A PNG: the image (as the run sees it) beside its residual map, scaled so that the
    largest residual is white-hot (black, red, yellow, white)."""
    from PIL import Image

    x = prepare(run, image[None])[0]
    r = residual_map(run, image)
    r = (r / r.max().clamp_min(1e-8)).numpy()
    hot = np.stack([np.clip(3 * r, 0, 1), np.clip(3 * r - 1, 0, 1), np.clip(3 * r - 2, 0, 1)],
                   -1)
    img = ((x.clamp(-1, 1) + 1) / 2).expand(3, -1, -1).permute(1, 2, 0).numpy()
    both = np.concatenate([img, np.ones((img.shape[0], 2, 3)), hot], 1)
    pil = Image.fromarray((both * 255).round().astype(np.uint8))
    scale = max(1, 256 // pil.height)
    pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def write_scores(names: list[str], scores: torch.Tensor, out: str | Path) -> Path:
    """``name,score`` rows as CSV, atomically."""
    from gankit.utils.io import atomic_write_text

    lines = ["name,score"] + [f"{n},{float(s)!r}" for n, s in zip(names, scores)]
    atomic_write_text(out, "\n".join(lines) + "\n")
    return Path(out)
