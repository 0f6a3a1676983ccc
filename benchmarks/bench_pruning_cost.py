"""What LyapunovPruner costs a trial, in epochs: one spectrum and the pruner's decision.

The sweep study (``python -m sklyap sweep``) counts training epochs; a trial
pruned by its spectrum also pays for that spectrum, and the study for the
pruner's refits. For networks of each study task (each cell kind, hidden
sizes 16 and 64), this times one training epoch (the study's trainer) and
one spectrum with the study's driving inputs and settings, as the sweep
measures them (:func:`sklyap.study._sweep.measure_spectrum_cost`: the best
of 2 after a warm-up), and one decision of ``LyapunovPruner`` at its defaults on a study of 100 finished
trials (a refit of its regressor), and prints the spectrum's and the decision's
cost as a fraction of the epoch.

    python benchmarks/bench_pruning_cost.py [--quick] [--out PATH]
"""

import time
from types import SimpleNamespace

import numpy as np
import optuna
from _common import parse_args, write_report

from sklyap.selection import LyapunovPruner
from sklyap.study import TASKS
from sklyap.study._sweep import measure_spectrum_cost


def decision_seconds(n_finished=100, n_features=33, repeats=3):
    """Seconds of one decision that refits the regressor on ``n_finished`` trials."""
    rng = np.random.default_rng(0)
    best = np.inf
    for _ in range(repeats):
        pruner = LyapunovPruner()
        study = optuna.create_study(direction="maximize", pruner=pruner)
        for _ in range(n_finished):
            trial = study.ask()
            spectrum = rng.normal(size=n_features - 1).tolist()
            record = {"step": 1, "spectrum": spectrum, "architecture": None, "size": None}
            trial.set_user_attr("sklyap_spectrum", record)
            trial.report(float(rng.random()), 1)
            study.tell(trial, float(rng.random()))
        trial = study.ask()
        record = {"step": 1, "spectrum": [0.0] * (n_features - 1), "architecture": None}
        trial.set_user_attr("sklyap_spectrum", {**record, "size": None})
        trial.report(0.5, 1)
        start = time.perf_counter()
        trial.should_prune()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None):
    args = parse_args(__doc__, "digits only, one size", "bench_pruning_cost.json", argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    decision = decision_seconds()
    print(f"one decision with a refit on 100 finished trials: {decision:.3f} s")
    rows = []
    tasks = ["digits"] if args.quick else list(TASKS)
    for name in tasks:
        spec = TASKS[name]
        cells = spec.population.get("cells", ("RNN", "GRU", "LSTM"))
        sizes = (16,) if args.quick else (16, 64)
        kinds = [{"cell": c, "hidden_size": n} for c in cells for n in sizes]
        # What the sweep counts: measure_spectrum_cost over these kinds of network.
        _, by_kind = measure_spectrum_cost(spec, SimpleNamespace(hyperparameters=kinds))
        for kind in kinds:
            cost = by_kind[f"{kind['cell']} {kind['hidden_size']}"]
            epoch, spectrum = cost["epoch_s"], cost["spectrum_s"]
            rows.append(
                {
                    "task": name,
                    **kind,
                    "epoch_s": epoch,
                    "spectrum_s": spectrum,
                    "spectrum_per_epoch": cost["epochs"],
                    "decision_per_epoch": decision / epoch,
                }
            )
            print(
                f"{name:12s} {kind['cell']:4s} {kind['hidden_size']:3d}: epoch {epoch:6.2f} s, "
                f"spectrum {spectrum:6.2f} s ({cost['epochs']:5.2f} epochs), decision "
                f"{decision / epoch:5.3f} epochs"
            )
    write_report("bench_pruning_cost", args.out, rows, decision_s=decision)


if __name__ == "__main__":
    main()
