"""Command line: parses arguments, calls the public API, prints. No training logic here.

User errors (bad names, values, paths) print one line ``gankit: error: ...`` and exit 2.
"""

from __future__ import annotations

import argparse
import sys

USER_ERRORS = (ValueError, TypeError, FileNotFoundError, NotADirectoryError, KeyError)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gankit", description="Train, sample and inspect GANs.")
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
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    s = sub.add_parser("sample", help="draw samples from a trained run")
    s.add_argument("run_dir")
    s.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    s.add_argument("--out", required=True, help="FILE.png (grid), FILE.npz (array) or DIR/")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--ema", dest="ema", action="store_true", default=True,
                   help="use the EMA generator when the run has one (default)")
    s.add_argument("--no-ema", dest="ema", action="store_false", help="use the raw generator")
    s.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")

    sub.add_parser("list", help="list presets and registered components")
    return p


def cmd_train(args) -> int:
    from gankit import api
    from gankit.config import dump_yaml

    if args.resume:
        if args.preset or args.data or args.out or args.seed is not None:
            raise ValueError("--resume RUN_DIR continues a run with its own preset, data, seed "
                             "and directory; only --steps, --set and --device may be given")
        if args.dry_run:
            raise ValueError("--dry-run cannot be combined with --resume")
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
    result = api.train(config=config, out=args.out, progress=not args.no_progress)
    api.print_summary(result)
    return 0


def cmd_sample(args) -> int:
    from gankit import api

    run = api.load(args.run_dir, device=args.device)
    if args.ema and run.G_ema is None:
        print("gankit: note: this run kept no EMA generator; sampling the raw G",
              file=sys.stderr)
    x = api.sample(run, args.n, seed=args.seed, ema=args.ema, device=args.device)
    out = api.write_samples(x, args.out, run.info.kind)
    print(f"wrote {args.n} samples to {out}")
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


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "list": cmd_list}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except USER_ERRORS as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"gankit: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gankit: interrupted; the last checkpoint is intact (resume with --resume)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
