"""Which DCGAN recipe should `make demo` train? Each variant trains on mnist5k and is scored
by the share of 1,000 G_ema samples the shipped classifier recognises at p >= 0.9 (real
digits: 99.5 %) and by FID (5,000 samples, LeNet), with its training time.

    PYTHONPATH=src python experiments/demo_recipe.py --out runs/demo_recipes [--variants a,b]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from gankit import api
from gankit.evaluation import evaluate

VARIANTS = {
    "default_1500": ["train.steps=1500"],
    "scale_1500": ["train.steps=1500", "generator.output_scale=1.5"],
    "bf16_2500": ["train.steps=2500", "train.precision=bf16"],
    "fast_b32_3000": ["train.steps=3000", "train.batch_size=32", "g_optimizer.lr=1e-3",
                      "d_optimizer.lr=1e-3"],
    "fast_b32_fm_3000": ["train.steps=3000", "train.batch_size=32", "g_optimizer.lr=1e-3",
                         "d_optimizer.lr=1e-3", "regularizers.feature_matching.weight=0.3"],
    "fast_scale_bf16_3000": ["train.steps=3000", "train.batch_size=32", "g_optimizer.lr=1e-3",
                             "d_optimizer.lr=1e-3", "generator.output_scale=1.5",
                             "train.precision=bf16"],
    "fast_scale_bf16_4500": ["train.steps=4500", "train.batch_size=32", "g_optimizer.lr=1e-3",
                             "d_optimizer.lr=1e-3", "generator.output_scale=1.5",
                             "train.precision=bf16"],
    "w32_scale_bf16_6000": ["train.steps=6000", "train.batch_size=32", "g_optimizer.lr=1e-3",
                            "d_optimizer.lr=1e-3", "generator.output_scale=1.5",
                            "train.precision=bf16", "generator.width=32",
                            "discriminator.width=32"],
    "cgan_fast_2500": ["preset=cgan", "train.steps=2500", "train.batch_size=32",
                       "g_optimizer.lr=1e-3", "d_optimizer.lr=1e-3",
                       "generator.output_scale=1.5", "train.precision=bf16"],
    "cgan_fast_2000": ["preset=cgan", "train.steps=2000", "train.batch_size=32",
                       "g_optimizer.lr=1e-3", "d_optimizer.lr=1e-3",
                       "generator.output_scale=1.5", "train.precision=bf16"],
    "cgan_fast_fp32_2000": ["preset=cgan", "train.steps=2000", "train.batch_size=32",
                            "g_optimizer.lr=1e-3", "d_optimizer.lr=1e-3",
                            "generator.output_scale=1.5"],
    "ema99_fast_2500": ["train.steps=2500", "train.batch_size=32", "g_optimizer.lr=1e-3",
                        "d_optimizer.lr=1e-3", "generator.output_scale=1.5",
                        "train.precision=bf16", "hooks.ema.beta=0.99"],
    "noema_fast_2500": ["train.steps=2500", "train.batch_size=32", "g_optimizer.lr=1e-3",
                        "d_optimizer.lr=1e-3", "generator.output_scale=1.5",
                        "train.precision=bf16", "hooks.ema=null"],
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/demo_recipes")
    p.add_argument("--variants", default=",".join(VARIANTS))
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    for name in args.variants.split(","):
        if name in results:
            continue
        t = time.perf_counter()
        sets = [v for v in VARIANTS[name] if not v.startswith("preset=")]
        preset = next((v[7:] for v in VARIANTS[name] if v.startswith("preset=")), "dcgan")
        api.train(preset, data="mnist5k", out=out / name, overrides=sets + [
            "train.sample_interval=0", "train.checkpoint_interval=0"], progress=False)
        minutes = (time.perf_counter() - t) / 60
        rec = evaluate(out / name, metrics=["recognized"], against="mnist5k", n=1000)
        fid = evaluate(out / name, metrics=["fid"], against="mnist5k", n=5000)
        results[name] = {"minutes": minutes, **rec, **fid}
        print(name, results[name], flush=True)
        path.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
