"""``sklyap sweep``: early selection on recorded populations, every epoch counted."""

import sys
from pathlib import Path

from ._options import (
    add_options,
    add_population_options,
    fraction,
    int_at_least,
    option,
    population_settings,
    positive_int,
    spectrum_cost,
    task_with_overrides,
)


def register(commands):
    """Add the sweep command to ``commands`` (argparse subparsers)."""
    d = commands.add_parser(
        "sweep",
        help="early selection in a hyperparameter sweep: Optuna's pruners and LyapunovPruner "
        "compared on recorded populations, every epoch counted",
        description="Each population is swept in random orders by real Optuna studies whose "
        "trials replay its recorded learning curves and early spectra: no pruning, "
        "MedianPruner, SuccessiveHalvingPruner, HyperbandPruner and LyapunovPruner (on "
        "spectra, with the early score, around MedianPruner), with one and several workers; "
        "beside them the pilot-based selection (its pilot counted) and HalvingGridSearchCV. "
        "Reports the regret at fixed budgets of epochs, the recall of the true top 10%%, the "
        "epochs spent and the epochs until a near-best network finished, paired against the "
        "best of Optuna's pruners. Needs sklyap[optuna].",
    )
    d.add_argument(
        "--task",
        nargs="+",
        default=["digits", "digits_pixel", "char_text"],
        choices=["digits", "digits_pixel", "char_text"],
        help="tasks (default: all three)",
    )
    add_options(
        d,
        option("--seed", int_at_least(0), [0, 2], "random states of the populations", nargs="+",
               shown="0 2: two independent ones"),
        option("--n-orders", int_at_least(2), 10, "random orders per population"),
        option("--workers", positive_int, [1, 4], "trials in flight", nargs="+"),
        option("--n-pilot", int_at_least(4), 50, "pilot of the pilot-based selection"),
        option("--keep", fraction, 0.1,
               "fraction of the candidates the pilot-based selection keeps"),
        option("--factor", int_at_least(2), 3, "HalvingGridSearchCV's factor"),
        option("--n-models", int_at_least(8), None, "networks per population",
               shown="the task's, 200"),
        option("--spectrum-cost", spectrum_cost, "auto",
               "what a trial pays for its spectrum, in epochs: auto (measured per kind of "
               "network) or a number >= 0"),
    )  # fmt: skip
    add_population_options(d, "sklyap_sweep")
    d.set_defaults(func=sweep, command_parser=d)


def sweep(args):
    """Replayed Optuna studies on each task and population; see :func:`sklyap.study.run_sweep`."""
    from ..study import TASKS, run_sweep, transfer_study
    from ..study._sweep_result import plot_anytime, pooled_markdown

    try:
        import optuna  # noqa: F401
    except ImportError:
        print("sklyap sweep runs Optuna studies: pip install 'sklyap[optuna]'", file=sys.stderr)
        return 2
    names = list(dict.fromkeys(args.task))
    seeds = list(dict.fromkeys(args.seed))
    # A task's pruners start from a prior fitted on the other tasks, never on it.
    transfer = None
    if len(names) > 1:
        transfer = transfer_study(
            [task_with_overrides(TASKS[name], args) for name in names],
            seeds,
            n_models=args.n_models,
            device=args.device,
            n_jobs=args.n_jobs,
            cache_dir=False if args.no_cache else args.cache_dir,
        )
        print(transfer.table(), end="\n\n")
    else:
        print(
            "One task: LyapunovPruner runs with no startup prior (its default prior was "
            "fitted on the study's tasks, this one included).",
            flush=True,
        )
    results = []
    for name in names:
        task = task_with_overrides(TASKS[name], args)
        for seed in seeds:
            print(
                f"Sweeps of {task.title}, population random_state {seed}: {args.n_orders} "
                f"orders, {' and '.join(map(str, args.workers))} workers.",
                flush=True,
            )
            result = run_sweep(
                task,
                n_orders=args.n_orders,
                workers=args.workers,
                n_pilot=args.n_pilot,
                keep=args.keep,
                factor=args.factor,
                n_models=args.n_models,
                spectrum_cost=args.spectrum_cost,
                prior=None if transfer is None else transfer.priors[task.name],
                random_state=seed,
                **population_settings(args),
            )
            print()
            print(result.table(), end="\n\n")
            results.append(result)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    payload = "[" + ",\n".join(r.to_json() for r in results) + "]\n"
    (out / "results.json").write_text(payload)
    pooled = [
        f"Pooled over the populations, {w} worker{'s' if w > 1 else ''}:\n\n"
        + pooled_markdown(results, workers=w)
        for w in args.workers
    ]
    text = "\n\n".join([*pooled, *(r.markdown() for r in results)])
    written = [out / "results.json", out / "results.md"]
    if transfer is not None:
        text += "\n\n" + transfer.markdown()
        (out / "transfer.json").write_text(transfer.to_json() + "\n")
        written.append(out / "transfer.json")
    (out / "results.md").write_text(text + "\n")
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print("(matplotlib is not installed: no figure; pip install 'sklyap[plot]')")
    else:
        n_tasks = len(names)
        fig = Figure(figsize=(4.6 * n_tasks, 3.6 * len(args.workers)), layout="constrained")
        axes = fig.subplots(len(args.workers), n_tasks, squeeze=False)
        for row, workers in zip(axes, args.workers):
            plot_anytime(results, workers=workers, axes=row)
        fig.savefig(out / "anytime.png", dpi=110)
        written.append(out / "anytime.png")
    print("Wrote " + ", ".join(str(p) for p in written))
    return 0
