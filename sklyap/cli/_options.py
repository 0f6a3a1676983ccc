"""What the commands share: argument types that name what they expect, the
options of the commands that train populations, and the usage error."""

import argparse
import dataclasses

from .._validation import check_device

__all__ = [
    "UsageError",
    "add_population_options",
    "device",
    "fraction",
    "int_at_least",
    "n_jobs",
    "positive_int",
    "spectrum_cost",
    "task_with_overrides",
]


class UsageError(ValueError):
    """A command line that cannot be run as given: reported in one line with the
    command's usage, exit status 2. Every other error keeps its traceback."""


def int_at_least(low):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


positive_int = int_at_least(1)


def spectrum_cost(text):
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or a number of epochs >= 0, got {text!r}"
        ) from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number of epochs >= 0, got {text}")
    return value


def n_jobs(text):
    """joblib's n_jobs: a positive count, or -1 (all cores), -2 (all but one), ..."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-zero integer, got {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError(
            "expected a non-zero integer (1: one worker, -1: all cores), got 0"
        )
    return value


def fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {text}")
    return value


def device(text):
    """A device the machine has: auto, cpu, cuda or cuda:<index>."""
    try:
        check_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def task_with_overrides(task, args):
    """``task`` with the population's epochs and training set as the command line asks."""
    overrides = {"n_epochs": args.epochs, "max_train": args.max_train}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if overrides:
        task = dataclasses.replace(task, population={**task.population, **overrides})
    return task


def add_population_options(d, output):
    """The options of the commands that train (or load) populations: study, demo, sweep."""
    d.add_argument(
        "--epochs", type=positive_int, default=None, help="training epochs (default: the task's)"
    )
    d.add_argument(
        "--max-train",
        type=positive_int,
        default=None,
        help="train on fewer sequences, for quick runs",
    )
    d.add_argument("--device", type=device, default="auto", help="auto, cpu or cuda (default auto)")
    d.add_argument(
        "--n-jobs",
        type=n_jobs,
        default=-1,
        help="parallel workers (default -1: all cores; -2: all but one)",
    )
    d.add_argument("--output", default=output, help=f"folder for results and figures ({output})")
    d.add_argument("--cache-dir", default=None, help="cache of trained networks and spectra")
    d.add_argument("--no-cache", action="store_true", help="always retrain")
    d.add_argument("--quiet", action="store_true", help="no progress bars")
