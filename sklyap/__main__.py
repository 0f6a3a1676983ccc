"""Command line: ``python -m sklyap demo``."""

import argparse
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


def demo(args):
    """The AeLLE study on sequential digits; see :func:`sklyap.study.run_aelle_study`."""
    from .study import run_aelle_study

    print(
        f"AeLLE study: {args.n_models} RNN/GRU/LSTM networks on sequential digits, "
        f"{args.epochs} epochs; predicting each network's final test accuracy from its "
        f"Lyapunov spectrum (final epoch, and epoch {args.early_epoch}).",
        flush=True,
    )
    result = run_aelle_study(
        n_models=args.n_models, n_epochs=args.epochs, early_epoch=args.early_epoch,
        n_splits=args.n_splits, learning_rate_range=tuple(args.learning_rate_range),
        max_train=args.max_train, device=args.device,
        random_state=args.seed, n_jobs=args.n_jobs,
        cache_dir=False if args.no_cache else args.cache_dir, verbose=int(not args.quiet),
    )  # fmt: skip
    print()
    print(result.table())
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(result.to_json())
    try:
        paths = result.save_figures(out)
    except ImportError:
        paths = []
        print("\n(matplotlib is not installed: no figures; pip install 'sklyap[plot]')")
    t = result.timings
    print(
        f"\nTraining or loading {t['train_or_load_s']:.0f} s, spectra {t['spectra_s']:.0f} s, "
        f"cross-validation {t['cross_validation_s']:.0f} s. Wrote {out / 'results.json'}"
        + "".join(f", {p}" for p in paths)
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
        prog="python -m sklyap",
        description="Lyapunov spectra of trained recurrent networks.",
    )
    parser.add_argument("--version", action="version", version=f"sklyap {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    d = commands.add_parser(
        "demo", help="the AeLLE study: predict trained RNNs' accuracy from their spectra"
    )
    d.add_argument("--n-models", type=int, default=60, help="networks to train (default 60)")
    d.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    d.add_argument("--early-epoch", type=int, default=1, help="early spectra after (default 1)")
    d.add_argument("--n-splits", type=int, default=5, help="cross-validation folds (default 5)")
    d.add_argument("--max-train", type=int, default=None, help="use fewer training sequences")
    d.add_argument("--learning-rate-range", type=float, nargs=2, default=[3e-3, 1e-2],
                   metavar=("LOW", "HIGH"), help="Adam learning rates (default 3e-3 1e-2)")  # fmt: skip
    d.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    d.add_argument("--n-jobs", type=int, default=None, help="parallel workers (default 1)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument("--output", default="sklyap_demo", help="folder for figures and JSON")
    d.add_argument("--cache-dir", default=None, help="cache of trained networks")
    d.add_argument("--no-cache", action="store_true", help="always retrain")
    d.add_argument("--quiet", action="store_true", help="no progress bars")
    d.set_defaults(func=demo)

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
