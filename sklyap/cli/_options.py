"""What the commands share: argument types that name what they expect, the
options of the commands that train populations, and the usage error."""

import argparse
import dataclasses

from .._validation import SPECTRUM_CONSTRAINTS, Interval, Options, check_device

__all__ = [
    "UsageError",
    "add_options",
    "add_population_options",
    "constrained",
    "device",
    "fraction",
    "int_at_least",
    "n_jobs",
    "option",
    "population_settings",
    "positive_int",
    "spectrum_cost",
    "task_with_overrides",
]


class UsageError(ValueError):
    """A command line that cannot be run as given: reported in one line with the
    command's usage, exit status 2. Every other error keeps its traceback."""


def constrained(*alternatives, then=None, hint=""):
    """An argparse type that reads a value against constraints of the library's kind.

    ``alternatives`` are :class:`~sklyap._validation.Interval` and
    :class:`~sklyap._validation.Options`, as in the library's parameter tables:
    a word one of the options names is taken as it is, any other text as a
    number (a float if an interval is of floats, else an int) that one of the
    intervals must hold; ``then`` converts what passed. A bad value is refused
    with what was expected, in the library's words, and ``hint`` (the unit, or
    what special values mean).
    """
    words = [
        v for c in alternatives if isinstance(c, Options) for v in c.values if isinstance(v, str)
    ]
    intervals = [c for c in alternatives if isinstance(c, Interval)]
    number = float if any(c.kind is float for c in intervals) else int
    expected = " or ".join([repr(w) for w in words] + [str(c) for c in intervals]) + hint

    def parse(text):
        if text in words:
            return text
        try:
            value = number(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not any(c.holds(value) for c in intervals):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value if then is None else then(value)

    parse.__name__ = expected
    return parse


def int_at_least(low):
    """An int >= ``low``."""
    return constrained(Interval(int, low, None))


positive_int = int_at_least(1)
spectrum_cost = constrained(Options("auto"), Interval(float, 0, None), hint=" (epochs)")
n_jobs = constrained(
    *SPECTRUM_CONSTRAINTS["n_jobs"], hint=" (1: one worker, -1: all cores, -2: all but one)"
)
fraction = constrained(Interval(float, 0, 1, closed="right"))


def device(text):
    """A device the machine has: auto, cpu, cuda or cuda:<index>."""
    try:
        check_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def option(flag, kind, default, help, *, shown=None, **kwargs):
    """One row of :func:`add_options`: ``flag`` read by ``kind`` (an argparse
    type), its help ending in "(default ...)", ``shown`` or the default itself."""
    if shown is None:
        shown = " ".join(map(str, default)) if isinstance(default, list) else default
    return flag, {"type": kind, "default": default, "help": f"{help} (default {shown})", **kwargs}


def add_options(parser, *rows):
    """Add the :func:`option` rows to ``parser``."""
    for flag, kwargs in rows:
        parser.add_argument(flag, **kwargs)


def task_with_overrides(task, args):
    """``task`` with the population's epochs and training set as the command line asks."""
    overrides = {"n_epochs": args.epochs, "max_train": args.max_train}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if overrides:
        task = dataclasses.replace(task, population={**task.population, **overrides})
    return task


def population_settings(args):
    """What the population options of :func:`add_population_options` ask of
    ``run_study`` and ``run_sweep``."""
    return {
        "device": args.device,
        "n_jobs": args.n_jobs,
        "cache_dir": False if args.no_cache else args.cache_dir,
        "verbose": int(not args.quiet),
    }


def add_population_options(d, output):
    """The options of the commands that train (or load) populations: study, demo, sweep."""
    add_options(
        d,
        option("--epochs", positive_int, None, "training epochs", shown="the task's"),
        option("--max-train", positive_int, None, "train on fewer sequences, for quick runs",
               shown="all"),
        option("--device", device, "auto", "auto, cpu or cuda"),
        option("--n-jobs", n_jobs, -1, "parallel workers", shown="-1: all cores; -2: all but one"),
    )  # fmt: skip
    d.add_argument("--output", default=output, help=f"folder for results and figures ({output})")
    d.add_argument("--cache-dir", default=None, help="cache of trained networks and spectra")
    d.add_argument("--no-cache", action="store_true", help="always retrain")
    d.add_argument("--quiet", action="store_true", help="no progress bars")
