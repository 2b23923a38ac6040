"""Command line: parses arguments, calls the public API, prints. No training logic here.

User errors (bad names, values, paths) print one line ``gankit: error: ...`` and exit 2.
"""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path

from gankit.utils.extras import MissingExtraError

# What user input raises (the guide's convention); anything else is a bug and keeps its
# traceback. A KeyError is never a user error: a user-facing lookup raises ValueError.
# MissingExtraError: an optional package is missing (the message names the extra).
USER_ERRORS = (ValueError, TypeError, FileNotFoundError, NotADirectoryError, MissingExtraError)


def _refine_arguments(parser: argparse.ArgumentParser, whose: str = "") -> None:
    parser.add_argument("--refine", action="store_true",
                        help=f"critic-guided rejection sampling of {whose}G: fit critics on "
                        "the training images (less a fixed 20 %% held out as eval --refine's "
                        "reference) against G's samples (about 1.5 minutes on 2 "
                        "threads for 50,000 28x28 stacks), keep each sample with probability "
                        "min(1, exp(alpha * logit - M)); unconditional runs")
    parser.add_argument("--refine-set", action="append", default=[], metavar="KEY=VALUE",
                        help="a refine option (view, threshold, pool, epochs, fit_samples, "
                        "holdout, batch_size, lr, decay, ensemble, alpha, quantile, "
                        "seed, precision=fp32|bf16: G's forward passes, bf16 about 2x faster "
                        "where the CPU has AVX-512 BF16 or AMX); implies --refine")


def _progress_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true",
                        help="hide the progress bars (shown with rate and ETA on stderr when "
                        "it is a terminal)")


def _say(message: str) -> None:
    """``gankit: MESSAGE`` on stderr, above any progress bar."""
    from gankit.utils.progress import write

    write(f"gankit: {message}")


def _refine_options(args):
    """The parsed RefineOptions when --refine or --refine-set was given, else None."""
    if not (args.refine or args.refine_set):
        return None
    from gankit.refine import RefineOptions

    return RefineOptions.parse(args.refine_set)  # bad options fail before any work


def _parser() -> argparse.ArgumentParser:
    from gankit import __version__

    p = argparse.ArgumentParser(prog="gankit", description="Train, sample and inspect GANs.")
    p.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a preset, or resume a run")
    t.add_argument("preset", nargs="?", help="preset name (see `gankit list`)")
    t.add_argument("--data", help="ring, grid, mnist5k, digits, folder:PATH, npz:PATH")
    t.add_argument("--steps", type=int, help="generator steps in total")
    t.add_argument("--out", help="run directory to create")
    t.add_argument("--seed", type=int, help="random seed (default 0)")
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default auto")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.batch_size=128")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    t.add_argument("--dry-run", action="store_true", help="print the resolved config and stop")
    _progress_argument(t)
    t.add_argument("--nproc", type=int, metavar="N",
                   help="train with N processes on this machine (one per GPU, or gloo on "
                   "the CPU): runs torchrun for you; train.batch_size stays the global "
                   "batch. Several machines: torchrun ... -m gankit train (docs/scaling.md)")

    s = sub.add_parser("sample", help="draw samples from a trained run")
    s.add_argument("run_dir")
    s.add_argument("--n", type=int, help="number of samples (default 64); with --class-grid "
                   "samples per class (default 10)")
    s.add_argument("--out", required=True, help="FILE.png (grid), FILE.npz (x and labels y) "
                   "or DIR/")
    s.add_argument("--class", dest="class_label", type=int, metavar="K",
                   help="conditional runs: every sample of class K (default: uniform classes)")
    s.add_argument("--class-grid", action="store_true",
                   help="conditional runs: one grid row of --n samples per class")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--ema", dest="ema", action="store_true", default=True,
                   help="use the EMA generator when the run has one (default)")
    s.add_argument("--no-ema", dest="ema", action="store_false", help="use the raw generator")
    s.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    s.add_argument("--truncation", type=float, metavar="PSI",
                   help="the truncation trick (biggan and stylegan2 runs): BigGAN keeps each z "
                   "component within [-PSI, PSI] (0: every z at 0)")
    _refine_arguments(s)
    _progress_argument(s)

    e = sub.add_parser("eval", help="compute metrics of a run or a samples file")
    e.add_argument("source", help="RUN_DIR or samples.npz (an array 'x')")
    e.add_argument("--metrics", help="comma-separated, e.g. fid,kid,is,pr,dc,modes,"
                   "memorization (default fid,kid; mixture for 2D data)")
    e.add_argument("--against", help="real dataset spec (default: the run's training data)")
    e.add_argument("-n", "--n", type=int, help="generated samples (a run: 10000; a file: all)")
    e.add_argument("--extractor", help="feature extractor (default: lenet_mnist5k for "
                   "mnist5k, lenet_digits for digits, raw for 2D, else inception_v3_fid)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--out", help="JSON file for the results (default RUN_DIR/metrics/...)")
    e.add_argument("--no-ema", dest="ema", action="store_false", default=True)
    e.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    e.add_argument("--no-cache", action="store_true", help="do not cache real statistics")
    e.add_argument("--resize", action="store_true",
                   help="resize the --against images to the samples' resolution and "
                   "channels when they differ (else an error); keys name it, e.g. "
                   "digits_at32x3")
    e.add_argument("--no-quantize", dest="quantize", action="store_false", default=True,
                   help="feed the extractor float images instead of rounding them to 8-bit "
                   "levels first (the default, as StyleGAN2-ADA and clean-fid); keys end "
                   "in _float")
    e.add_argument("--reference", action="store_true",
                   help="also score real data against itself (two disjoint halves of the "
                   "reference, keys real_*): what a perfect generator would get")
    e.add_argument("--download", action="store_true",
                   help="fetch the FID Inception weights when they are missing (internet)")
    e.add_argument("--target", help="table runs: the column ML efficacy predicts (default: "
                   "the last)")
    e.add_argument("--truncation", type=float, metavar="PSI",
                   help="score a run's samples drawn with the truncation trick (biggan and "
                   "stylegan2 runs); keys end in _truncPSI")
    _refine_arguments(e, "a run's ")
    _progress_argument(e)

    x = sub.add_parser("extractor", help="train a feature extractor (a small classifier)")
    x_sub = x.add_subparsers(dest="action", required=True)
    xt = x_sub.add_parser("train", help="train a LeNet classifier on labelled data")
    xt.add_argument("--data", required=True, help="mnist5k, digits, folder:PATH, npz:PATH")
    xt.add_argument("--out", required=True, help="weights file to write (.safetensors)")
    xt.add_argument("--seed", type=int, default=0)
    xt.add_argument("--epochs", type=int, help="training epochs (default 30)")

    w = sub.add_parser("show", help="look at a run: nearest neighbours, interpolations, curves")
    w.add_argument("run_dir")
    w.add_argument("--nearest", action="store_true", help="samples beside nearest training images")
    w.add_argument("--interpolate", action="store_true", help="lerp/slerp and traversal grids")
    w.add_argument("--curves", action="store_true", help="loss and metric curves")
    w.add_argument("--style-mix", action="store_true",
                   help="style-mixing grid (stylegan2 runs): coarse styles by row, fine by column")
    w.add_argument("--out", help="output folder (default RUN_DIR/show)")
    w.add_argument("--seed", type=int, default=0)

    an = sub.add_parser("anomaly", help="anomaly detection: fit a method on normal data, "
                        "score inputs, draw residual heatmaps")
    an_sub = an.add_subparsers(dest="action", required=True)
    af = an_sub.add_parser("fit", help="train a method's preset on the normal classes")
    af.add_argument("method", help="ganomaly")
    af.add_argument("--data", help="dataset (default: the preset's, mnist5k:train)")
    af.add_argument("--normal", help="comma-separated normal classes, e.g. 0,1,2,3,4,5,6,7,8")
    af.add_argument("--out", required=True)
    af.add_argument("--steps", type=int)
    af.add_argument("--seed", type=int)
    af.add_argument("--set", dest="overrides", action="append", default=[],
                    metavar="KEY=VALUE")
    _progress_argument(af)
    asc = an_sub.add_parser("score", help="anomaly scores of images (file, folder, npz) "
                                "or of CSV rows (a run fitted on a table)")
    asc.add_argument("run_dir")
    asc.add_argument("input")
    asc.add_argument("--out", required=True, help="scores.csv (name,score)")
    ah = an_sub.add_parser("heatmap", help="an image beside its pixel residual map")
    ah.add_argument("run_dir")
    ah.add_argument("image")
    ah.add_argument("--out", required=True, help="map.png")

    sy = sub.add_parser("synth", help="a labelled synthetic dataset from a conditional run: "
                        "class folders or an npz, with a manifest")
    sy.add_argument("run_dir")
    sy.add_argument("--per-class", type=int, required=True, metavar="N",
                    help="samples of every class")
    sy.add_argument("--out", required=True, help="FILE.npz (x uint8, y) or a directory")
    sy.add_argument("--seed", type=int, default=0)
    sy.add_argument("--truncation", type=float, metavar="PSI",
                    help="truncation trick (biggan runs)")
    sy.add_argument("--no-ema", dest="ema", action="store_false", default=True)

    tr = sub.add_parser("translate", help="run a translation run's G on images: a file, a "
                        "folder or an npz; OUT mirrors INPUT")
    tr.add_argument("run_dir")
    tr.add_argument("input", help="an image, a folder of images or an npz with 'x'")
    tr.add_argument("out", help="output image, folder or npz (the input's layout)")
    tr.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"],
                    help="cyclegan runs: A to B (default) or B to A")
    tr.add_argument("--no-ema", dest="ema", action="store_false", default=True)
    up = sub.add_parser("upscale", help="super-resolve images of any size in overlapping "
                        "tiles (srresnet, srgan, esrgan runs)")
    up.add_argument("run_dir")
    up.add_argument("input", help="an image, a folder of images or an npz with 'x'")
    up.add_argument("out", help="output image, folder or npz (the input's layout)")
    up.add_argument("--tile", type=int, default=48,
                    help="low-resolution tile side (memory grows with its square)")
    up.add_argument("--overlap", type=int, default=8, help="tile overlap, blended")
    up.add_argument("--no-ema", dest="ema", action="store_false", default=True)

    o = sub.add_parser("export", help="export a run's generator to ONNX or TorchScript")
    o.add_argument("run_dir")
    o.add_argument("--format", required=True, metavar="FORMAT",
                   help="onnx (needs pip install 'gankit[onnx]') or torchscript")
    o.add_argument("--out", help="file to write (default RUN_DIR/export/generator.onnx or .pt)")
    o.add_argument("--no-ema", dest="ema", action="store_false", default=True,
                   help="export the raw G instead of G_ema (the default when the run has one)")
    o.add_argument("--step", type=int, help="export the checkpoint of this step (default newest)")
    o.add_argument("--no-check", dest="check", action="store_false", default=True,
                   help="skip running the exported model against PyTorch before writing "
                   "it (onnx: then onnxruntime is not needed)")

    h = sub.add_parser("doctor", help="diagnose a run from its log: problems and remedies")
    h.add_argument("run_dir", help="a run directory (finished or still training)")

    r = sub.add_parser("report", help="one self-contained HTML page about a run: samples "
                       "by step, curves, metrics, diagnosis, config")
    r.add_argument("run_dir", help="a run directory (finished or still training)")
    r.add_argument("--out", help="HTML file to write (default RUN_DIR/report.html)")
    r.add_argument("--no-class-grid", dest="class_grid", action="store_false", default=True,
                   help="conditional runs: do not draw the class grid from the checkpoint")
    r.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu",
                   help="where the class grid is sampled (default cpu)")
    r.add_argument("--max-grids", type=int, default=50, metavar="N",
                   help="inline at most N sample grids, evenly spaced over the saved steps "
                   "(first and last included; default 50, 0 = all)")

    b = sub.add_parser("bench", help="reproduce a published benchmark table")
    b_sub = b.add_subparsers(dest="benchmark", required=True)
    bm = b_sub.add_parser("mixture", help="PacGAN Table 1 on the 2D ring or grid")
    bm.add_argument("--dataset", choices=["ring", "grid"], default="ring")
    bm.add_argument("--recipes", default="gan,pacgan2,pacgan4,recommended",
                    help="comma-separated recipe names (presets/bench/mixture.yaml)")
    bs = b_sub.add_parser("stacked-mnist", help="Stacked MNIST mode counting (1,000 modes)")
    bs.add_argument("--recipes", default="dcgan,pacdcgan2,recommended",
                    help="comma-separated recipe names (presets/bench/stacked_mnist.yaml)")
    bs.add_argument("--samples", type=int, default=26_000, help="samples counted (26000)")
    for parser, seeds in ((bm, 10), (bs, 1)):
        parser.add_argument("--seeds", type=int, default=seeds,
                            help=f"number of seeds ({seeds}): FIRST..FIRST+N-1")
        parser.add_argument("--first-seed", type=int, default=0, metavar="FIRST",
                            help="first seed (0); e.g. --first-seed 1 --seeds 2 runs seeds 1, 2")
        parser.add_argument("--steps", type=int, help="generator steps per run (default: "
                            "the preset's)")
        parser.add_argument("--out", help="folder for the runs and results.json")
        _progress_argument(parser)

    bn = b_sub.add_parser("anomaly", help="mnist5k leave-one-digit-out AUROC of an anomaly "
                          "method beside IsolationForest and OneClassSVM")
    bn.add_argument("--method", default="ganomaly", help="ganomaly or fanogan")
    bn.add_argument("--data", default="mnist5k", choices=["mnist5k", "breast_cancer"])
    bn.add_argument("--digits", default="0,1,2,3,4,5,6,7,8,9", help="left-out digits")
    _run_bench_arguments(bn, 3, "method")

    bt = b_sub.add_parser("tabular", help="gankit's ctgan against the ctgan PyPI package "
                          "(pip install 'gankit[bench-tabular]') on the same splits")
    bt.add_argument("--tables", default="breast_cancer,wine",
                    help="comma-separated: breast_cancer, wine, grunfeld")
    bt.add_argument("--seeds", type=int, default=3, help="number of seeds (3)")
    bt.add_argument("--first-seed", type=int, default=0, metavar="FIRST")
    bt.add_argument("--epochs", type=int, default=300, help="epochs for both (300)")
    bt.add_argument("--out", help="folder for the runs and results.json")
    _progress_argument(bt)

    bd = b_sub.add_parser("domain-adaptation", help="MNIST -> MNIST-M: a classifier on "
                          "source digits vs on pixelda's translations, tested on MNIST-M")
    _run_bench_arguments(bd, 3, "pixelda")
    bd.add_argument("--epochs", type=int, default=10, help="classifier epochs (10)")

    ba = b_sub.add_parser("augment", help="classification accuracy score and augmentation "
                          "gain of a conditional GAN's samples (Ravuri and Vinyals 2019)")
    ba.add_argument("--data", default="mnist5k", choices=["mnist5k", "digits"])
    ba.add_argument("--preset", default="cgan", help="a class-conditional preset (cgan)")
    _run_bench_arguments(ba, 5, "GAN")
    ba.add_argument("--epochs", type=int, default=10, help="classifier epochs (10)")

    bc = b_sub.add_parser("combine", help="one table from several results.json of a "
                          "benchmark (seeds run apart)")
    bc.add_argument("results", nargs="+", metavar="RESULTS_JSON",
                    help="results.json files that gankit bench --out wrote")
    bc.add_argument("--out", help="write the combined report here: a .json file, or a "
                    "folder (then FOLDER/results.json)")

    sub.add_parser("list", help="list presets and registered components")

    d = sub.add_parser("data", help="prepare a dataset on disk")
    d_sub = d.add_subparsers(dest="action", required=True)
    dc = d_sub.add_parser("cache", help="decode a folder's images once into a memory-mapped "
                          "uint8 cache ($GANKIT_CACHE/data, default ~/.cache/gankit/data) that "
                          "streamed training and evaluation read instead of the image files "
                          "(npz: decompress a compressed archive's x there)")
    dc.add_argument("spec", help="folder:PATH or npz:PATH")
    dc.add_argument("--resolution", type=int, help="image side in pixels (default 64); use "
                    "the run's data.resolution")
    dc.add_argument("--channels", type=int, choices=[1, 3], help="checked only: the cache "
                    "holds RGB and serves 1 or 3 channels")
    dc.add_argument("--workers", type=int, help="decode processes (default: cores - 1, <= 8)")
    return p


def _run_bench_arguments(parser, seeds: int, what: str) -> None:
    """--seeds, --first-seed, --steps, --set, --out and the progress flag of a benchmark
    that trains runs of a preset."""
    parser.add_argument("--seeds", type=int, default=seeds, help=f"number of seeds ({seeds})")
    parser.add_argument("--first-seed", type=int, default=0, metavar="FIRST")
    parser.add_argument("--steps", type=int, help=f"{what} steps per run (default: the "
                        "preset's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help=f"a {what} config override")
    parser.add_argument("--out", help="folder for the runs and results.json")
    _progress_argument(parser)


def cmd_train(args) -> int:
    from gankit import api
    from gankit.config import dump_yaml

    if args.resume:
        if args.preset or args.data or args.out or args.seed is not None:
            raise ValueError("--resume RUN_DIR continues a run with its own preset, data, seed "
                             "and directory; only --steps, --set and --device may be given")
        if args.dry_run:
            raise ValueError("--dry-run cannot be combined with --resume")
        if args.nproc is not None:
            return _launch_train(args)
        result = api.resume(args.resume, steps=args.steps, overrides=args.overrides,
                            device=args.device, progress=not args.no_progress)
        api.print_summary(result)
        return 0
    if not args.preset:
        raise ValueError("train needs a PRESET (see `gankit list`) or --resume RUN_DIR")
    config = api.make_config(args.preset, data=args.data, steps=args.steps, seed=args.seed,
                             device=args.device, overrides=args.overrides)
    if args.dry_run:
        print(dump_yaml(config), end="")
        return 0
    if not args.out:
        raise ValueError("train needs --out RUN_DIR (where samples and checkpoints go)")
    if args.nproc is not None:
        return _launch_train(args, config)
    result = api.train(config=config, out=args.out, progress=not args.no_progress)
    api.print_summary(result)
    return 0


def _launch_train(args, config=None) -> int:
    """``train --nproc N``: check what can be checked here (``config``: a fresh run's),
    then run torchrun."""
    import os

    from gankit.training.parallel import check_launch
    from gankit.utils.launch import launch

    if args.nproc < 1:
        raise ValueError(f"--nproc must be at least 1, got {args.nproc}")
    if "WORLD_SIZE" in os.environ:
        raise ValueError("--nproc starts torchrun itself; under torchrun leave --nproc out")
    if config is not None:
        check_launch(config, args.nproc)
    if args.nproc == 1:
        args.nproc = None
        return cmd_train(args)
    code, interrupted = launch(args.argv, args.nproc)
    if interrupted:
        run = args.resume or args.out
        print(f"gankit: interrupted; continue with: gankit train --resume {run} --nproc "
              f"{args.nproc}", file=sys.stderr)
        return 130
    if code != 0:
        print(f"gankit: error: training with {args.nproc} processes failed (torchrun exit "
              f"status {code}); the failed rank's error is printed above", file=sys.stderr)
    return code


def cmd_sample(args) -> int:
    from gankit import api

    run = api.load(args.run_dir, device=args.device)
    if run.info.table is not None or str(args.out).lower().endswith(".csv"):
        from gankit.tabular.sampler import sample_table
        from gankit.tabular.table import write_csv

        if not str(args.out).lower().endswith(".csv"):
            raise ValueError(f"--out {args.out}: a table run writes rows: use FILE.csv")
        table = sample_table(run, args.n if args.n is not None else _table_rows(run), args.seed,
                             args.ema)
        write_csv(table, args.out)
        print(f"wrote {len(table)} rows to {args.out}")
        return 0
    if args.ema and run.G_ema is None:
        print("gankit: note: this run kept no EMA generator; sampling the raw G",
              file=sys.stderr)
    if args.class_grid and args.class_label is not None:
        raise ValueError("--class and --class-grid cannot be combined")
    n, classes, nrow = args.n if args.n is not None else 64, args.class_label, None
    row_labels = None
    if args.class_grid:
        nrow = args.n if args.n is not None else 10
        classes = api.class_grid_labels(run, nrow)
        n = len(classes)
        row_labels = [str(k) for k in range(run.info.num_classes)]
    options = _refine_options(args)
    if options is not None:
        if classes is not None:
            raise ValueError("--refine cannot be combined with --class or --class-grid: "
                             "refined sampling supports unconditional runs only")
        if args.truncation is not None:
            raise ValueError("--refine cannot be combined with --truncation")
        api.check_sample_memory(run, n)  # before the critic's fit
        sampler = api.refined_sampler(run, options, ema=args.ema, device=args.device,
                                      log=_say, progress=not args.no_progress)
        x, y = sampler.sample(n, seed=args.seed), None
        r = sampler.report
        print(f"refine: critic held-out accuracy {r['heldout_accuracy']:.3f}, "
              f"acceptance {r['acceptance']:.3f}", file=sys.stderr)
    else:
        x, y = api.sample(run, n, classes=classes, seed=args.seed, ema=args.ema,
                          device=args.device, return_labels=True,
                          progress=not args.no_progress, truncation=args.truncation)
    out = api.write_samples(x, args.out, run.info.kind, y=y, nrow=nrow, row_labels=row_labels)
    print(f"wrote {n} samples to {out}")
    return 0


def cmd_list(args) -> int:
    import gankit

    for section, entries in gankit.list_components().items():
        if not entries:
            continue
        print(f"{section}:")
        width = max(len(n) for n in entries)
        for name, desc in entries.items():
            print(f"  {name:<{width}}  {desc}")
    return 0


def cmd_eval(args) -> int:
    from gankit.evaluation import evaluate, format_table

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    if metrics and set(metrics) & {"psnr", "ssim"}:
        return _eval_fidelity(args, metrics)
    if Path(args.source).is_dir() and (Path(args.source) / "checkpoints").is_dir():
        from gankit import api

        run = api.load(args.source)
        if run.info.table is not None:
            return _eval_table(args, run)
        if getattr(run.G, "takes", "latent") == "image":
            raise ValueError(f"{args.source} is a translation run: gankit eval scores it with "
                             f"--metrics psnr,ssim (paired ground truth); for fid or kid of "
                             f"its outputs, write them with gankit translate and evaluate "
                             f"that npz")
    refine = _refine_options(args)
    out = args.out
    source = Path(args.source)
    if out is None:
        tag = ("_refined" if refine is not None else "") + ("" if args.quantize else "_float")
        tag += f"_trunc{args.truncation:g}" if args.truncation is not None else ""
        out = (source / "metrics" / f"eval_n{args.n or 10_000}{tag}.json" if source.is_dir()
               else source.with_name(f"{source.stem}{tag}.metrics.json"))
    results = evaluate(args.source, metrics=metrics, against=args.against, n=args.n,
                       extractor=args.extractor, seed=args.seed, ema=args.ema,
                       device=args.device, cache=None if args.no_cache else "default", out=out,
                       refine=refine, quantize=args.quantize, resize=args.resize,
                       reference=args.reference, download=args.download, log=_say,
                       progress=not args.no_progress, truncation=args.truncation)
    print(format_table(results))
    print(f"wrote {out}")
    return 0


def _eval_table(args, run) -> int:
    """``gankit eval RUN`` of a table run (`gankit.tabular.metrics`)."""
    from gankit import api
    from gankit.evaluation import format_table
    from gankit.tabular import metrics as tm
    from gankit.tabular.sampler import sample_table
    from gankit.utils.io import atomic_write_json

    train = api.dataset_for(run.config).table.table
    synth = sample_table(run, args.n or len(train), args.seed, args.ema)
    results = {**tm.column_fidelity(train, synth),
               "association_difference": tm.association_difference(train, synth)}
    if args.against:
        from gankit.data import load_dataset

        held = load_dataset(args.against, columns=run.config.data.columns)
        if held.table is None:
            raise ValueError(f"--against {args.against}: a table run is compared with "
                             f"held-out rows of a table (e.g. breast_cancer:test)")
        test = held.table.table
        target = args.target or train.names[-1]
        if target not in train.names:
            raise ValueError(f"--target {target}: no such column; columns: "
                             f"{', '.join(train.names)}")
        results.update(tm.ml_efficacy(train, test, synth, target, args.seed))
        results["efficacy_target"] = target
        results.update(tm.dcr(train, test, synth))
    out = Path(args.out or Path(args.source) / "metrics" / "eval_table.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, results)
    print(format_table({k: v for k, v in results.items() if isinstance(v, float)}))
    print(f"wrote {out}")
    return 0


def _eval_fidelity(args, metrics: list[str]) -> int:
    """``gankit eval RUN --metrics psnr,ssim``: paired fidelity of a translation run."""
    from gankit import api, translation
    from gankit.evaluation import format_table
    from gankit.utils.io import atomic_write_json

    if not set(metrics) <= {"psnr", "ssim"}:
        raise ValueError(f"--metrics {args.metrics}: psnr and ssim compare outputs with "
                         f"ground truth and run apart from the other metrics; call gankit "
                         f"eval twice")
    run = api.load(args.source)
    results = translation.evaluate_pairs(run, args.against, args.ema)
    results = {k: v for k, v in results.items() if k.split("_")[0] in metrics}
    out = Path(args.out or Path(args.source) / "metrics" / "eval_fidelity.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, results)
    print(format_table(results))
    print(f"wrote {out}")
    return 0


def cmd_extractor(args) -> int:
    from gankit.data import as_tensor, load_dataset
    from gankit.metrics.features.lenet import train_and_save_extractor

    ds = load_dataset(args.data)
    if ds.y is None or ds.kind != "image":
        raise ValueError(f"--data {args.data}: training a classifier needs labelled images "
                         "(mnist5k, digits, a folder with class subfolders, or npz with 'y')")
    options = {"epochs": args.epochs} if args.epochs else {}
    print(f"gankit: training a LeNet classifier on {args.data} ({len(ds)} images)",
          file=sys.stderr)
    report = train_and_save_extractor(as_tensor(ds.x), ds.y, ds.num_classes, args.out,
                                      seed=args.seed,
                                      dataset_name=args.data, **options,
                                      log=lambda m: print(f"gankit: {m}", file=sys.stderr))
    print(f"held-out accuracy {report['heldout_accuracy']:.4f}, sha256 {report['sha256']}")
    print(f"wrote {args.out}; use it with --extractor lenet:{args.out}")
    return 0


def cmd_show(args) -> int:
    from gankit import viz

    if not (args.nearest or args.interpolate or args.curves or args.style_mix):
        raise ValueError("show needs at least one of --nearest, --interpolate, --curves, "
                         "--style-mix")
    out = Path(args.out) if args.out else Path(args.run_dir) / "show"
    if args.nearest or args.interpolate or args.style_mix:
        from gankit import api

        api.load(args.run_dir).require_latent("gankit show --nearest/--interpolate")
    written = []
    if args.curves:
        written.append(viz.curves_png(args.run_dir, out / "curves.png"))
    if args.nearest:
        written.append(viz.nearest_sheet(args.run_dir, out / "nearest.png", seed=args.seed))
    if args.interpolate:
        written += viz.interpolation_grids(args.run_dir, out, seed=args.seed)
    if args.style_mix:
        written.append(viz.style_mix_grid(args.run_dir, out / "style_mix.png", seed=args.seed))
    for path in written:
        note = " (linear interpolation in W)" if path.name == "interpolate_w_lerp.png" else ""
        print(f"wrote {path}{note}")
    return 0


def cmd_export(args) -> int:
    from gankit import api
    from gankit.export import describe

    api.load(args.run_dir).require_latent("gankit export")
    result = api.export_generator(args.run_dir, args.format, args.out, ema=args.ema,
                                  step=args.step, check=args.check)
    if args.ema and result.net == "G":
        print("gankit: note: this run kept no EMA generator; exported the raw G",
              file=sys.stderr)
    print(describe(result))
    return 0


def _table_rows(run, default: int = 1000) -> int:
    """The default number of table rows to sample: the training table's."""
    blocks = run.info.table["columns"] if run.info.table else []
    counts = [sum(c["counts"]) for c in blocks if "counts" in c]
    return counts[0] if counts else default


def cmd_anomaly(args) -> int:
    from gankit import anomaly, api

    if args.action == "fit":
        normal = [int(c) for c in args.normal.split(",")] if args.normal else None
        result = anomaly.fit(args.method, args.out, data=args.data, normal=normal,
                             steps=args.steps, overrides=args.overrides, seed=args.seed,
                             progress=not args.no_progress)
        print(f"fitted {args.method} on {result.state.config.data.name} "
              f"(classes {list(result.state.config.data.classes) or 'all'}): {args.out}")
        return 0
    run = api.load(args.run_dir)
    if args.action == "score":
        from gankit.translation import read_images

        if str(args.input).lower().endswith(".csv"):
            scores = anomaly.score_csv(run, args.input)
            names = [f"row{i}" for i in range(1, len(scores) + 1)]
        else:
            _, items = read_images(args.input)
            scores, names = _scores_of(run, items), [n for n, _ in items]
        where = anomaly.write_scores(names, scores, args.out)
        print(f"wrote {len(scores)} scores to {where}")
        return 0
    from gankit.translation import read_images
    from gankit.utils.io import atomic_write_bytes

    _, items = read_images(args.image)
    atomic_write_bytes(args.out, anomaly.heatmap_png(run, items[0][1]))
    print(f"wrote {args.out}")
    return 0


def _scores_of(run, items):
    """Scores of (name, image) items of any sizes: one image at a time."""
    import torch

    from gankit import anomaly

    return torch.cat([anomaly.score(run, img[None]) for _, img in items])


def cmd_synth(args) -> int:
    from gankit import api, synth

    run = api.load(args.run_dir)
    x, y = synth.synthesize(run, args.per_class, seed=args.seed, truncation=args.truncation,
                            ema=args.ema)
    manifest = {"run": str(Path(args.run_dir).resolve()), "step": run.step,
                "seed": args.seed, "truncation": args.truncation, "ema": args.ema,
                "per_class": args.per_class, "classes": run.info.num_classes}
    where = synth.write_dataset(x, y, args.out, manifest)
    print(f"wrote {len(y)} samples to {args.out} (manifest {where})")
    return 0


def cmd_translate(args) -> int:
    from gankit import api, translation

    run = api.load(args.run_dir)
    kind, items = translation.read_images(args.input)
    outs = [(name, translation.translate(run, img[None], args.direction, args.ema)[0])
            for name, img in items]
    print(f"wrote {len(outs)} images to {translation.write_like(kind, outs, args.out)}")
    return 0


def cmd_upscale(args) -> int:
    from gankit import api, translation

    run = api.load(args.run_dir)
    kind, items = translation.read_images(args.input)
    outs = [(name, translation.upscale(run, img, args.tile, args.overlap, args.ema))
            for name, img in items]
    print(f"wrote {len(outs)} images to {translation.write_like(kind, outs, args.out)}")
    return 0


def cmd_doctor(args) -> int:
    from gankit.doctor import diagnose, format_diagnosis

    print(format_diagnosis(diagnose(args.run_dir)))
    return 0


def cmd_report(args) -> int:
    from gankit import api

    out = api.report(args.run_dir, args.out, class_grid=args.class_grid, device=args.device,
                     max_grids=args.max_grids)
    print(f"wrote {out}")
    return 0


def cmd_bench(args) -> int:
    if args.benchmark == "combine":
        import importlib

        from gankit.benchmarks import _common
        from gankit.utils.io import atomic_write_json

        report = _common.combine(args.results)
        if args.out:  # a folder gets a results.json, as gankit bench --out does
            out = Path(args.out) / "results.json" if Path(args.out).is_dir() else args.out
            atomic_write_json(out, report)
        bench = importlib.import_module(f"gankit.benchmarks.{report['benchmark']}")
        print(bench.table(report))
        return 0
    if args.benchmark == "tabular":
        from gankit.benchmarks import tabular as bench

        tables = [t.strip() for t in args.tables.split(",") if t.strip()]
        report = bench.run(tables, args.seeds, args.epochs, first_seed=args.first_seed,
                           out=args.out, progress=not args.no_progress, log=_say)
        print(bench.table(report))
        return 0
    if args.benchmark == "anomaly":
        from gankit.benchmarks import anomaly as bench

        digits = [int(d) for d in args.digits.split(",")]
        report = bench.run(args.method, digits, args.seeds, args.steps,
                           first_seed=args.first_seed, out=args.out, overrides=args.overrides,
                           progress=not args.no_progress, data=args.data, log=_say)
        print(bench.table(report))
        return 0
    if args.benchmark == "augment":
        from gankit.benchmarks import augment as bench

        report = bench.run(args.data, args.seeds, args.steps, first_seed=args.first_seed,
                           preset=args.preset, out=args.out, overrides=args.overrides,
                           epochs=args.epochs, progress=not args.no_progress, log=_say)
        print(bench.table(report))
        return 0
    if args.benchmark == "domain-adaptation":
        from gankit.benchmarks import domain_adaptation as bench

        report = bench.run(args.seeds, args.steps, first_seed=args.first_seed, out=args.out,
                           overrides=args.overrides, epochs=args.epochs,
                           progress=not args.no_progress, log=_say)
        print(bench.table(report))
        return 0
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    if args.benchmark == "mixture":
        from gankit.benchmarks import mixture as bench

        report = bench.run(args.dataset, recipes, args.seeds, args.steps, out=args.out,
                           first_seed=args.first_seed, progress=not args.no_progress)
    else:
        from gankit.benchmarks import stacked_mnist as bench

        report = bench.run(recipes, args.seeds, args.steps, samples=args.samples,
                           out=args.out, first_seed=args.first_seed,
                           progress=not args.no_progress)
    print(bench.table(report))
    return 0


def cmd_data(args) -> int:
    from gankit import api

    info = api.cache_data(args.spec, resolution=args.resolution, channels=args.channels,
                          workers=args.workers)
    what = "built" if info["built"] else "up to date"
    print(f"{what}: {info['path']} ({info['images']} images at {info['resolution']}x"
          f"{info['resolution']}, {info['bytes'] / 2**20:.1f} MiB)")
    return 0


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "eval": cmd_eval,
            "extractor": cmd_extractor, "bench": cmd_bench, "show": cmd_show,
            "doctor": cmd_doctor, "report": cmd_report, "export": cmd_export,
            "data": cmd_data, "list": cmd_list, "translate": cmd_translate, "synth": cmd_synth,
            "anomaly": cmd_anomaly,
            "upscale": cmd_upscale}


def _check_set_pairs(argv: list[str]) -> None:
    """``--set KEY VALUE`` (a space for '=') as one clear error before argparse's own."""
    for flag, value in zip(argv, argv[1:]):
        if flag in ("--set", "--refine-set") and "=" not in value:
            raise ValueError(f"{flag} takes KEY=VALUE in one argument, got {value!r}; e.g. "
                             f"{flag} {value}=...")


def main(argv: list[str] | None = None) -> int:
    try:
        _check_set_pairs(sys.argv[1:] if argv is None else argv)
    except ValueError as exc:
        print(f"gankit: error: {exc}", file=sys.stderr)
        return 2
    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(args)
    except Exception as exc:
        _name_failed_rank(exc)
        raise


def _rank() -> int:
    import os

    return int(os.environ.get("RANK", "0"))


def _name_failed_rank(exc: Exception) -> None:
    """Under torchrun, say which process failed (torchrun then stops the others)."""
    import os

    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1 or getattr(exc, "echo", False):
        return
    from gankit.utils.distributed import lost_peer

    who = f"the process of rank {os.environ.get('RANK', '?')} of {size}"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if lost_peer(exc):
        print(f"gankit: error: {who} stopped: another process failed or was stopped (its "
              f"error is printed apart): {first}", file=sys.stderr)
    else:
        print(f"gankit: error: {who} failed: {type(exc).__name__}: {first}", file=sys.stderr)


def _dispatch(args) -> int:
    from gankit.training.faults import TrainingDiverged, TrainingInterrupted

    try:
        return COMMANDS[args.command](args)
    except USER_ERRORS as exc:
        if not getattr(exc, "echo", False):  # raised on rank 0 too, which printed it
            print(f"gankit: error: {exc}", file=sys.stderr)
        return 2
    except TrainingInterrupted as exc:
        if exc.checkpoint is None and _rank() != 0:  # rank 0 says where it saved
            return 128 + exc.signum
        # the run is the checkpoint's: a benchmark's --out holds several runs
        run = Path(exc.checkpoint).parent.parent if exc.checkpoint else None
        hint = f"; continue with: gankit train --resume {run}" if run else ""
        print(f"gankit: {exc}{hint}", file=sys.stderr)
        return 128 + exc.signum
    except TrainingDiverged as exc:
        print(f"gankit: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # outside training steps, or a second Ctrl-C
        print("gankit: interrupted (nothing was saved since the last checkpoint)",
              file=sys.stderr)
        return 130
    except OSError as exc:  # a full disk: the atomic writes left every older file intact
        if exc.errno != errno.ENOSPC:
            raise
        run = (args.resume or args.out) if args.command == "train" else None
        fix = f"resume with --resume {run}" if run else "run the command again"
        print(f"gankit: error: disk full writing {exc.filename}; free space and {fix}",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
