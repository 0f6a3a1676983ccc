"""What the replay benchmarks share: the tasks, the metrics they report, and the
recorded populations they replay (from the cache ``python -m sklyap sweep`` fills)."""

import numpy as np

from sklyap.study import population_features
from sklyap.study._replay import outcome, replay_study

TASKS = ("digits", "digits_pixel", "char_text")
METRICS = (
    "regret_at_20",
    "regret_at_35",
    "regret_at_50",
    "top10_recall_at_20",
    "top10_recall_at_35",
    "top10_recall_at_50",
    "epochs_fraction",
)


def recorded_populations(tasks, random_state=0):
    """For each task, what a replay reads of its population: the learning curves,
    the early spectra and weight statistics, the early epoch, the architectures
    and the hidden sizes."""
    populations = {}
    for task in tasks:
        spec, features, population = population_features(task, random_state=random_state, verbose=0)
        populations[task] = {
            "curves": population.val_accuracy,
            "spectra": features["early"],
            "weights": features["weights_early"],
            "early_epoch": spec.early_epoch,
            "architectures": [(hp["cell"],) for hp in population.hyperparameters],
            "sizes": [int(hp["hidden_size"]) for hp in population.hyperparameters],
        }
    return populations


def replay_order(pruner, data, k, spectra=None):
    """The METRICS of one Optuna study replayed by ``pruner`` over a population
    (``data``, from :func:`recorded_populations`) in its ``k``-th random order;
    ``spectra`` replaces what trials report as their spectrum."""
    order = np.random.default_rng([0, k]).permutation(len(data["curves"]))
    run = replay_study(
        pruner,
        order,
        data["curves"],
        spectra=data["spectra"] if spectra is None else spectra,
        early_epoch=data["early_epoch"],
        architectures=data["architectures"],
        sizes=data["sizes"],
        seed=k,
    )
    got = outcome(run, data["curves"][:, -1], data["curves"].shape[1])
    return {m: got[m] for m in METRICS}
