"""Command line: ``python -m sklyap demo``."""

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import __version__
from .transformer import LyapunovSpectrumTransformer


def _demo_models(hidden_size, input_size, gains, seed):
    """Freshly initialised networks, with the recurrent weights scaled by each gain."""
    torch.manual_seed(seed)
    models, labels = [], []
    for gain in gains:
        for name, cls in (("RNN", nn.RNN), ("GRU", nn.GRU), ("LSTM", nn.LSTM)):
            model = cls(input_size, hidden_size)
            with torch.no_grad():
                model.weight_hh_l0.mul_(gain)
            models.append(model)
            labels.append(f"{name} x{gain:g}")
    return models, labels


def study(args):
    """The AeLLE study on one or all tasks; see :func:`sklyap.study.run_study`."""
    from .study import TASKS, run_study

    names = list(TASKS) if args.task == "all" else [args.task]
    for name in names:
        task = TASKS[name]
        overrides = {"n_epochs": args.epochs, "max_train": args.max_train}
        overrides = {k: v for k, v in overrides.items() if v is not None}
        if overrides:
            task = dataclasses.replace(task, population={**task.population, **overrides})
        n_models = args.n_models or task.n_models
        print(
            f"AeLLE study on {task.title}: {n_models} trained networks; predicting each "
            f"network's final test accuracy from its Lyapunov spectrum (after epoch "
            f"{task.early_epoch} and after the last), against other predictors, with "
            f"{args.n_repeats} x {args.n_splits}-fold cross-validation.",
            flush=True,
        )
        result = run_study(
            task, n_models=args.n_models, n_repeats=args.n_repeats, n_splits=args.n_splits,
            device=args.device, random_state=args.seed, n_jobs=args.n_jobs,
            cache_dir=False if args.no_cache else args.cache_dir, verbose=int(not args.quiet),
        )  # fmt: skip
        print()
        print(result.table())
        out = Path(args.output) if len(names) == 1 else Path(args.output) / name
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(result.to_json())
        try:
            paths = result.save_figures(out)
        except ImportError:
            paths = []
            print("\n(matplotlib is not installed: no figures; pip install 'sklyap[plot]')")
        t = result.timings
        print(
            f"\nPopulation and spectra {t['population_and_spectra_s']:.0f} s, cross-validation "
            f"{t['cross_validation_s']:.0f} s. Wrote {out / 'results.json'}"
            + "".join(f", {p}" for p in paths),
            end="\n\n",
        )
    return 0


def spectra(args):
    """Spectra of freshly initialised RNN/GRU/LSTM networks at several weight scales."""
    models, labels = _demo_models(args.hidden_size, args.input_size, args.gains, args.seed)
    lst = LyapunovSpectrumTransformer(
        n_trajectories=args.n_trajectories,
        n_steps=args.n_steps,
        warmup=args.warmup,
        device=args.device,
        random_state=args.seed,
        verbose=int(not args.quiet),
    )
    start = time.perf_counter()
    lst.fit(models)
    results = lst.compute_spectra(models)
    elapsed = time.perf_counter() - start
    print(
        f"Lyapunov spectra of freshly initialised networks (hidden size {args.hidden_size}, "
        f"recurrent weights scaled by each gain), driven by Gaussian inputs:\n"
        f"{args.n_trajectories} trajectories, {args.warmup} warm-up + {args.n_steps} measured "
        f"steps; exponents in nats per step, +- standard error over trajectories.\n"
    )
    header = f"{'network':10} {'state':>5} {'lambda_1':>17} {'lambda_2':>9} {'lambda_n':>9} {'sum':>9} {'n > 0':>6}"
    print(header)
    print("-" * len(header))
    for label, r in zip(labels, results):
        ex = r.exponents
        print(
            f"{label:10} {r.state_size:>5} {ex[0]:>9.4f} +-{r.stderr[0]:6.4f} {ex[1]:>9.4f} "
            f"{ex[-1]:>9.4f} {ex.sum():>9.3f} {int(np.sum(ex > 0)):>6}"
        )
    print(
        f"\n{len(models)} spectra in {elapsed:.1f} s on {results[0].device}. Larger gains push "
        "the largest exponent up, towards and past 0 (the edge of chaos)."
    )
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m sklyap" if sys.argv[0].endswith("__main__.py") else "sklyap",
        description="Lyapunov spectra of trained recurrent networks.",
    )
    parser.add_argument("--version", action="version", version=f"sklyap {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    def add_study_arguments(d, output, n_repeats):
        d.add_argument("--n-models", type=int, default=None,
                       help="networks in the population (default: the task's, 200)")  # fmt: skip
        d.add_argument("--n-repeats", type=int, default=n_repeats,
                       help=f"repeats of the cross-validation (default {n_repeats})")  # fmt: skip
        d.add_argument("--n-splits", type=int, default=5, help="cross-validation folds (default 5)")
        d.add_argument("--epochs", type=int, default=None,
                       help="training epochs (default: the task's)")  # fmt: skip
        d.add_argument("--max-train", type=int, default=None,
                       help="train on fewer sequences, for quick runs")  # fmt: skip
        d.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
        d.add_argument("--n-jobs", type=int, default=-1,
                       help="parallel workers (default -1: all cores)")  # fmt: skip
        d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        d.add_argument("--output", default=output, help=f"folder for figures and JSON ({output})")
        d.add_argument("--cache-dir", default=None, help="cache of trained networks and spectra")
        d.add_argument("--no-cache", action="store_true", help="always retrain")
        d.add_argument("--quiet", action="store_true", help="no progress bars")
        d.set_defaults(func=study)

    d = commands.add_parser(
        "demo",
        help="the main job: the AeLLE study on sequential digits, 3 repeats "
        "(study --task digits --n-repeats 3)",
    )
    add_study_arguments(d, "sklyap_demo", n_repeats=3)
    d.set_defaults(task="digits")
    d = commands.add_parser(
        "study", help="the AeLLE study on one task, or all: predict trained RNNs' accuracy"
    )
    d.add_argument("--task", default="digits", choices=["digits", "digits_pixel", "char_text", "all"],
                   help="the task (default digits)")  # fmt: skip
    add_study_arguments(d, "sklyap_study", n_repeats=5)

    d = commands.add_parser("spectra", help="spectra of freshly initialised RNN/GRU/LSTM networks")
    d.add_argument("--hidden-size", type=int, default=16, help="hidden units (default 16)")
    d.add_argument("--input-size", type=int, default=4, help="input features (default 4)")
    d.add_argument("--gains", type=float, nargs="+", default=[1.0, 4.0],
                   help="scales of the recurrent weights (default 1 4)")  # fmt: skip
    d.add_argument("--n-trajectories", type=int, default=8, help="default 8")
    d.add_argument("--n-steps", type=int, default=300, help="measured steps (default 300)")
    d.add_argument("--warmup", type=int, default=100, help="warm-up steps (default 100)")
    d.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=spectra)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))


if __name__ == "__main__":
    sys.exit(main())
