"""``sklyap demo`` and ``sklyap study``: the AeLLE study of trained populations."""

from pathlib import Path

from ._options import (
    UsageError,
    add_options,
    add_population_options,
    int_at_least,
    option,
    population_settings,
    positive_int,
    task_with_overrides,
)


def register(commands):
    """Add the demo and study commands to ``commands`` (argparse subparsers)."""

    def add_study_arguments(d, output, n_repeats):
        add_options(
            d,
            option("--n-models", int_at_least(2), None, "networks in the population",
                   shown="the task's, 200"),
            option("--n-repeats", positive_int, n_repeats, "repeats of the cross-validation"),
            option("--n-splits", int_at_least(2), 5, "cross-validation folds"),
            option("--seed", int_at_least(0), [0], "random seed of the population", nargs="+",
                   shown="0; several seeds study as many independent populations and pool "
                   "them"),
        )  # fmt: skip
        add_population_options(d, output)
        d.set_defaults(func=study, command_parser=d)

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
    d.add_argument(
        "--task",
        default="digits",
        choices=["digits", "digits_pixel", "char_text", "all"],
        help="the task (default digits)",
    )
    add_study_arguments(d, "sklyap_study", n_repeats=5)


def study(args):
    """The AeLLE study on one or all tasks; see :func:`sklyap.study.run_study`."""
    from ..study import TASKS, StudyResult, run_study

    names = list(TASKS) if args.task == "all" else [args.task]
    seeds = list(dict.fromkeys(args.seed))
    if len(seeds) != len(args.seed):
        raise UsageError(
            f"--seed {' '.join(map(str, args.seed))}: each population needs its own seed"
        )
    for name in names:
        task = task_with_overrides(TASKS[name], args)
        n_models = args.n_models or task.n_models
        populations = "a population of" if len(seeds) == 1 else f"{len(seeds)} populations of"
        print(
            f"AeLLE study on {task.title}: {populations} {n_models} trained networks; predicting "
            f"each network's final test accuracy from its Lyapunov spectrum (after epoch "
            f"{task.early_epoch} and after the last), against other predictors, with "
            f"{args.n_repeats} x {args.n_splits}-fold cross-validation.",
            flush=True,
        )
        out = Path(args.output) if len(names) == 1 else Path(args.output) / name
        results = []
        for seed in seeds:
            result = run_study(
                task,
                n_models=args.n_models,
                n_repeats=args.n_repeats,
                n_splits=args.n_splits,
                random_state=seed,
                **population_settings(args),
            )
            folder = out if len(seeds) == 1 else out / f"random_state_{seed}"
            _write_study(result, folder)
            results.append(result)
        if len(seeds) > 1:
            pooled = StudyResult.pool(results)
            print(f"\nPooled over the {len(seeds)} populations:\n")
            print(pooled.table())
            out.mkdir(parents=True, exist_ok=True)
            # A single population's figures beside the pooled results would
            # read as the pool's: they are from an earlier run into this folder.
            stale = [out / f for f in StudyResult.FIGURES if (out / f).exists()]
            for path in stale:
                path.unlink()
            if stale:
                print(
                    f"Removed {len(stale)} figures of an earlier single-population run from {out}"
                )
            (out / "results.json").write_text(pooled.to_json())
            (out / "results.md").write_text(pooled.markdown() + "\n")
            print(f"\nWrote {out / 'results.json'}, {out / 'results.md'}", end="\n\n")
    return 0


def _write_study(result, out):
    """Print one population's table; write its results.json and figures to ``out``."""
    print()
    print(result.table())
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(result.to_json())
    (out / "results.md").write_text(result.markdown() + "\n")
    try:
        paths = result.save_figures(out)
    except ImportError:
        paths = []
        print("\n(matplotlib is not installed: no figures; pip install 'sklyap[plot]')")
    t = result.timings
    print(
        f"\nPopulation and spectra {t['population_and_spectra_s']:.0f} s, cross-validation "
        f"{t['cross_validation_s']:.0f} s. Wrote {out / 'results.json'}, {out / 'results.md'}"
        + "".join(f", {p}" for p in paths),
        end="\n\n",
    )
